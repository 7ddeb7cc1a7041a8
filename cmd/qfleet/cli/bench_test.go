//go:build !race

// Left out of -race builds: each benchmark starts a protoactor remote in this
// process, and two remotes in one process trip the race detector inside
// protoactor (grpclog.SetLoggerV2; see NOTES-deps.md).

package cli

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/internal/bench"
	"github.com/qfleet/qfleet/internal/testutil"
)

// TestBenchSmoke runs both benchmarks briefly, in-process; the other sides
// are processes of a qfleet binary built for the test (this test binary
// cannot stand in for it).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qfleet and starts processes")
	}
	bin := filepath.Join(t.TempDir(), "qfleet")
	// go test puts GOROOT/bin first on PATH, so this is the same toolchain.
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/qfleet/qfleet/cmd/qfleet").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	saved := bench.Executable
	bench.Executable = func() (string, error) { return bin, nil }
	t.Cleanup(func() { bench.Executable = saved })

	for _, c := range []struct {
		args     []string
		positive []string
	}{
		{[]string{"bench", "wire", "--seconds", "1"},
			[]string{"transitions_per_s", "bytes_per_transition", "transitions", "sender_cpu_cores"}},
		{[]string{"bench", "weights", "--runners", "2", "--params", "4866", "--rounds", "3"},
			[]string{"median_ms", "p90_ms", "first_full_ms", "bytes_per_runner_median"}},
	} {
		var stdout, stderr testutil.SyncBuffer
		if code := run(c.args, &stdout, &stderr); code != 0 {
			t.Fatalf("qfleet %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), code, stdout.String(), stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
			t.Fatalf("qfleet %s: last line is not JSON: %v\n%s", strings.Join(c.args, " "), err, stdout.String())
		}
		for _, k := range c.positive {
			if v, ok := got[k].(float64); !ok || !(v > 0) {
				t.Errorf("qfleet %s: %s = %v, want a positive number\n%s", strings.Join(c.args, " "), k, got[k], stdout.String())
			}
		}
		if len(lines) < 2 {
			t.Errorf("qfleet %s: no human summary before the JSON line", strings.Join(c.args, " "))
		}
		t.Logf("%s", stdout.String())
	}
}

func TestBenchUsage(t *testing.T) {
	var stdout, stderr testutil.SyncBuffer
	if code := run([]string{"bench", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "qfleet bench weights") {
		t.Errorf("bench --help: exit %d, stdout %q", code, stdout.String())
	}
	for _, args := range [][]string{{"bench", "nope"}, {"bench", "wire", "--seconds", "0"}, {"bench", "weights", "--runners", "0"}} {
		var stdout, stderr testutil.SyncBuffer
		code := run(args, &stdout, &stderr)
		if msg := strings.TrimSpace(stderr.String()); code != 2 || strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "qfleet bench: ") {
			t.Errorf("qfleet %s: exit %d, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, msg)
		}
	}
}
