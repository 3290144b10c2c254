//go:build !linux

package bench

import "syscall"

// childProcAttr has nothing to set where there is no parent-death signal; the edge scenarios need Linux's
// /proc anyway.
func childProcAttr() *syscall.SysProcAttr { return nil }
