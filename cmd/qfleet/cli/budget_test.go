package cli

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// A config the machine cannot hold, or a setting outside its range, is
// refused before anything is allocated: one line naming the setting, exit 2,
// within a second, and the process stays under 200 MB while refusing.
func TestMemoryBudgetRefusesBigConfigs(t *testing.T) {
	bin := qfleetBinary(t)
	dir := t.TempDir()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"dev", "--max-memory", "8GiB", "--config", testutil.WriteFile(t, dir, "big.yaml", "replay_capacity: 900000000\n")},
			[]string{"replay_capacity = 900000000 × 52 B each", "44 GiB", "over its limit of 8.0 GiB", "--max-memory"}},
		{[]string{"dev", "--max-memory", "40MiB"}, []string{"Go runtime and libraries alone take 64 MiB", "over its limit of 40 MiB"}},
		{[]string{"node", "--roles", "runner", "--runners", "1024", "--max-memory", "100MB", "--name", "r",
			"--remote-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"},
			[]string{"runners = 1024", "over its limit"}},
		{[]string{"dev", "--max-memory", "lots"}, []string{"--max-memory \"lots\""}},
		// Settings outside their range (before: out of memory, or taken).
		{[]string{"dev", "--config", testutil.WriteFile(t, dir, "cap.yaml", "replay_capacity: 1000000000000\n")}, []string{"replay_capacity = 1000000000000", "allowed 1..1000000000"}},
		{[]string{"dev", "--config", testutil.WriteFile(t, dir, "hidden.yaml", "hidden: [100000, 100000]\n")}, []string{"hidden = [100000 100000]"}},
		{[]string{"dev", "--config", testutil.WriteFile(t, dir, "runners.yaml", "runners: 100000\n")}, []string{"runners = 100000", "allowed 1..1024"}},
		{[]string{"dev", "--config", testutil.WriteFile(t, dir, "nstep.yaml", "n_step: 100000\n")}, []string{"n_step = 100000", "allowed 1..1000"}},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, c.args...)
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2\n%s", c.args, err, out)
			continue
		}
		oneLine(t, string(out), c.want...)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
		t.Logf("%v: exit 2 in %v, max RSS %d MB: %s", c.args, took.Round(time.Millisecond), rss>>20, strings.TrimSpace(string(out)))
		if took > time.Second || rss > 200<<20 {
			t.Errorf("%v: took %v with max RSS %d MB, want under 1 s and 200 MB", c.args, took, rss>>20)
		}
	}
}
