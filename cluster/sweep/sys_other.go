//go:build !linux

package sweep

import "syscall"

// trialSysProcAttr: only Linux can tie a child's life to its parent's.
func trialSysProcAttr() *syscall.SysProcAttr { return nil }

// lockSweepDir: no lock outside Linux.
func lockSweepDir(dir string) (unlock func(), err error) { return func() {}, nil }
