package bench

import "syscall"

// childProcAttr makes the kernel kill a child postern process should the bench die without stopping it (a
// panic, or go test's -timeout).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
