//go:build !linux

package cluster_test

import "syscall"

// childProcAttr: only Linux can tie a child's life to its parent's; elsewhere TestMain and t.Cleanup
// kill the nodes.
func childProcAttr() *syscall.SysProcAttr { return nil }
