package cli

import (
	"strings"
	"testing"

	"github.com/qfleet/qfleet/internal/testutil"
)

// The benchmarks themselves are tested in internal/bench; here, the
// command's flags and help.
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
