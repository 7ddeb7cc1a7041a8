package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/internal/testutil/testckpt"
	"github.com/qfleet/qfleet/messages"
)

// runBinary runs the qfleet binary in dir and returns its exit code, its
// stdout and stderr together, and how long it took.
func runBinary(t *testing.T, dir string, args ...string) (code int, out string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(qfleetBinary(t), args...)
	cmd.Dir = dir
	start := time.Now()
	b, err := cmd.CombinedOutput()
	took = time.Since(start)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(b), took
	} else if err != nil {
		t.Fatalf("qfleet %v: %v", args, err)
	}
	return 0, string(b), took
}

// refusedAtStart checks a startup refusal: exit 2 within 2 s, one line
// naming every want, and no sign of a run (no start line, no result).
func refusedAtStart(t *testing.T, code int, out string, took time.Duration, want ...string) {
	t.Helper()
	t.Logf("exit %d in %v: %s", code, took.Round(time.Millisecond), strings.TrimSpace(out))
	if code != 2 || took > 2*time.Second {
		t.Errorf("exit %d after %v, want exit 2 within 2 s", code, took)
	}
	oneLine(t, out, want...)
	if strings.Contains(out, "solved=") || strings.Contains(out, "run directory") {
		t.Errorf("a run started:\n%s", out)
	}
}

// A --resume from another env's checkpoint (Acrobot's in a CartPole run) or
// replay snapshot is refused before anything starts or is written: one line
// naming the file and both envs and networks, exit 2 at once (it took 33 s
// with --max-time 3s, the learner failing on every restart). With the cause
// removed, the same command runs.
func TestResumeMisfitRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run", qfleet.RunCheckpointsDir)
	testckpt.WriteRandom(t, ckpt, "Acrobot-v1", actors.DefaultConfigFor("Acrobot-v1"))
	args := []string{"dev", "--env", "CartPole-v1", "--run-dir", "run", "--resume", "--max-steps", "300", "--max-time", "3s", "--progress", "0", "--live", "never"}

	code, out, took := runBinary(t, dir, args...)
	refusedAtStart(t, code, out, took, "checkpoint "+filepath.Join("run", qfleet.RunCheckpointsDir, actors.CheckpointFile),
		"is for Acrobot-v1 (6 → 64 → 64 → 3, no layer_norm), this run is CartPole-v1 (4 → 64 → 64 → 2, layer_norm)")
	for _, f := range []string{qfleet.RunConfigFile, qfleet.RunScalarsFile, qfleet.RunSummaryFile} {
		if _, err := os.Stat(filepath.Join(dir, "run", f)); err == nil {
			t.Errorf("the refused start wrote %s", f)
		}
	}
	// A cluster node with the learner role checks the same, before it joins.
	code, out, took = runBinary(t, dir, append([]string{"node", "--name", "a", "--remote-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, args[1:]...)...)
	refusedAtStart(t, code, out, took, "qfleet node: checkpoint ", "is for Acrobot-v1", "this run is CartPole-v1")

	// The replay snapshot too: the replay would silently start empty.
	if err := os.Remove(filepath.Join(ckpt, actors.CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	if err := actors.WriteSnapshot(ckpt, &messages.ReplaySnapshot{Env: "Acrobot-v1", ObsSize: 6}); err != nil {
		t.Fatal(err)
	}
	code, out, took = runBinary(t, dir, args...)
	refusedAtStart(t, code, out, took, "replay snapshot "+filepath.Join("run", qfleet.RunCheckpointsDir, actors.SnapshotFile),
		"is for Acrobot-v1 (observations of 6 values), this run is CartPole-v1 (4 values)")

	if err := os.Remove(filepath.Join(ckpt, actors.SnapshotFile)); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runBinary(t, dir, args...)
	if code != 0 || !strings.Contains(out, "CartPole-v1 seed=1:") {
		t.Fatalf("with the other env's files gone: exit %d, want 0 and a result\n%s", code, out)
	}
}

// A run or checkpoint directory that cannot be written is refused before
// any actor starts, in one line naming it, exit 2; before, the run started
// and the first checkpoint (10 s in) or the run directory failed. Once the
// cause is gone, the same command runs.
func TestUnwritableDirsRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	blocker := testutil.WriteFile(t, dir, "blocker", "a regular file where a directory should be\n")
	quick := []string{"--max-steps", "300", "--progress", "0", "--live", "never"}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"run dir under a file", []string{"--run-dir", "blocker/run"}, []string{"--run-dir blocker/run", "blocker is not a directory"}},
		{"run dir is a file", []string{"--run-dir", "blocker"}, []string{"--run-dir blocker", "blocker is not a directory"}},
		{"checkpoint dir under a file", []string{"--run-dir", "r1", "--checkpoint-dir", "blocker/ckpt"}, []string{"--checkpoint-dir blocker/ckpt", "blocker is not a directory"}},
		{"run dir's checkpoints is a file", []string{"--run-dir", "r2", "--checkpoint-every", "1s"}, []string{"checkpoint directory r2/checkpoints", "r2/checkpoints is not a directory"}},
	}
	testutil.WriteFile(t, mkdir(t, filepath.Join(dir, "r2")), qfleet.RunCheckpointsDir, "not a directory\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, took := runBinary(t, dir, append(append([]string{"dev"}, c.args...), quick...)...)
			refusedAtStart(t, code, out, took, c.want...)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "r1")); err == nil {
		t.Errorf("the refused start made the run directory r1")
	}
	// A read-only file system (root writes through permissions, not there).
	ro := mkdir(t, filepath.Join(dir, "ro"))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Logf("read-only case left out: cannot mount a tmpfs (needs root): %v %s", err, strings.TrimSpace(string(out)))
	} else {
		defer exec.Command("umount", ro).Run() //nolint:errcheck // the test's temp dir goes anyway
		code, out, took := runBinary(t, dir, append([]string{"dev", "--run-dir", "ro/run"}, quick...)...)
		refusedAtStart(t, code, out, took, "--run-dir ro/run", "cannot write in ro: read-only file system")
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runBinary(t, dir, append([]string{"dev", "--run-dir", "blocker/run"}, quick...)...)
	if code != 0 || !strings.Contains(out, "CartPole-v1 seed=1:") {
		t.Fatalf("with the file gone: exit %d, want 0 and a result\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "blocker", "run", qfleet.RunSummaryFile)); err != nil {
		t.Errorf("the run that started wrote no summary: %v", err)
	}
}
