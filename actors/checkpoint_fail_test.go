package actors

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/qfleet/qfleet/internal/testutil"
)

// fullableDir is a directory on a small file system of its own (a tmpfs,
// which needs root to mount), with fill, which takes every free byte so that
// the next write fails with ENOSPC as on a full disk, and free, which gives
// them back. Where mounting is not allowed the test is skipped: a read-only
// directory is no stand-in for root, whom permissions do not stop.
func fullableDir(t *testing.T) (dir string, fill, free func()) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	filler := filepath.Join(dir, "filler")
	fill = func() {
		t.Helper()
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		chunk := make([]byte, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v", dir, err)
				}
				return
			}
		}
	}
	free = func() {
		t.Helper()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
	return dir, fill, free
}

// tempFiles lists what a failed write may have left in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

// A checkpoint write that fails half-way (the disk is full) leaves the
// previous checkpoint whole and readable, and no temporary file behind.
func TestCheckpointWriteOnAFullDisk(t *testing.T) {
	dir, fill, free := fullableDir(t)
	net := netFor(t, "CartPole-v1", DefaultConfig())
	first := checkpointOf("CartPole-v1", net)
	if err := WriteCheckpoint(dir, first); err != nil {
		t.Fatal(err)
	}
	fill()
	second := checkpointOf("CartPole-v1", net)
	second.LearnerUpdates = 8
	err := WriteCheckpoint(dir, second)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: err %v, want ENOSPC", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
	c, skipped, err := ReadLatestCheckpoint(dir)
	if err != nil || len(skipped) != 0 || c.GetLearnerUpdates() != 7 {
		t.Fatalf("after the failed write: %v (skipped %v), updates %d; want the first checkpoint (7), whole", err, skipped, c.GetLearnerUpdates())
	}
	if err := CheckResume(dir, "CartPole-v1", net, AllRoles); err != nil {
		t.Fatalf("the previous checkpoint no longer fits: %v", err)
	}
	free()
	if err := WriteCheckpoint(dir, second); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	if c, err := ReadCheckpoint(dir); err != nil || c.GetLearnerUpdates() != 8 {
		t.Fatalf("after space came back: %v, updates %d, want 8", err, c.GetLearnerUpdates())
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// When periodic checkpoints cannot be written (the disk is full), training
// goes on; each failure is counted and logged once per checkpoint interval,
// not on every learner tick; the previous checkpoint stays good; and once
// there is room again the next checkpoint is written.
func TestLearnerGoesOnWhenCheckpointsFail(t *testing.T) {
	dir, fill, free := fullableDir(t)
	const every = 2 * time.Second
	var logs testutil.SyncBuffer
	cfg := DefaultConfig()
	cfg.EvalEvery = 0 // no best.ckpt writes: on the full disk they would fail and count too
	d, err := StartDev(NodeOptions{EnvID: "CartPole-v1", Seed: 5, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 1e9},
		CheckpointDir: dir, CheckpointEvery: every, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		testutil.CheckFor(t, timeout, 50*time.Millisecond, func() error {
			if !ok() {
				return fmt.Errorf("no %s yet; status %+v", what, d.Metrics.Status())
			}
			return nil
		})
	}
	waitFor("first checkpoint", 15*time.Second, func() bool {
		c, err := ReadCheckpoint(dir)
		return err == nil && c.GetLearnerUpdates() > 0
	})
	fill()
	waitFor("failed checkpoint", 2*every+2*time.Second, func() bool { return counterValue(t, d.Metrics.CheckpointFailures) >= 1 })
	before, err := ReadCheckpoint(dir) // the newest before the disk filled
	if err != nil {
		t.Fatal(err)
	}
	updates := d.Metrics.Status().LearnerUpdates
	failures0, logged0 := counterValue(t, d.Metrics.CheckpointFailures), strings.Count(logs.String(), "periodic checkpoint failed")
	const window = 7 * time.Second
	time.Sleep(window)

	failures := counterValue(t, d.Metrics.CheckpointFailures) - failures0
	logged := strings.Count(logs.String(), "periodic checkpoint failed") - logged0
	after := d.Metrics.Status()
	t.Logf("in %v with a full disk: %v failures counted, %d logged; learner updates %d → %d", window, failures, logged, updates, after.LearnerUpdates)
	// One try per interval: 3 in 7 s (a tick-paced retry would make 7).
	if failures < 2 || failures > float64(window/every)+1 || int(failures) != logged {
		t.Errorf("%v failures counted and %d logged in %v at one checkpoint per %v: want 2..%d, one line each",
			failures, logged, window, every, window/every+1)
	}
	if after.LearnerUpdates <= updates {
		t.Errorf("training stopped with the disk full: learner updates %d → %d", updates, after.LearnerUpdates)
	}
	if len(after.StoppedRoles) != 0 || after.Restarts[LearnerName] != 0 {
		t.Errorf("a failed checkpoint stopped or restarted a role: stopped %v, restarts %v", after.StoppedRoles, after.Restarts)
	}
	if _, err := d.SaveCheckpoint(5 * time.Second); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("checkpoint asked for on a full disk: err %v, want ENOSPC", err)
	}
	if c, err := ReadCheckpoint(dir); err != nil || c.GetLearnerUpdates() != before.GetLearnerUpdates() {
		t.Fatalf("the previous checkpoint after the failures: %v, updates %d, want %d", err, c.GetLearnerUpdates(), before.GetLearnerUpdates())
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}

	free()
	waitFor("checkpoint once the disk has room", 2*every+time.Second, func() bool {
		c, err := ReadCheckpoint(dir)
		return err == nil && c.GetLearnerUpdates() > before.GetLearnerUpdates()
	})
}
