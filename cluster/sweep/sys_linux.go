package sweep

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/qfleet/qfleet"
)

// trialSysProcAttr makes a trial's process die with the node that started
// it: a node killed mid-trial leaves no orphan training behind (its trial is
// rerun elsewhere).
func trialSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockSweepDir keeps two sweeps from writing one output directory (an
// advisory lock on DIR/.lock, released by unlock or the process's end).
func lockSweepDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, qfleet.UsageError{Err: fmt.Errorf("--out %s: another 'qfleet sweep' is using it", dir)}
		}
		return nil, fmt.Errorf("--out: lock: %w", err)
	}
	return func() { f.Close() }, nil
}
