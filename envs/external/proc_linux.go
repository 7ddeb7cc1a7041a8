package external

import (
	"os"
	"syscall"
)

// sysProcAttr puts a worker in a process group of its own, so that killing
// it ends whatever it started too, and has the kernel kill it if the Go
// process dies without Close.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills a worker's process group (ESRCH once it is gone).
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
