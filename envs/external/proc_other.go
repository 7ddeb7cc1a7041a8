//go:build !linux

package external

import (
	"os"
	"syscall"
)

// sysProcAttr: process groups and the parent-death signal are Linux's
// here; elsewhere a worker is killed on its own.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) { _ = p.Kill() }
