package cluster_test

import "syscall"

// childProcAttr makes the kernel kill a node should the test binary die without cleaning up (a panic, or
// go test's -timeout), so no postern process outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
