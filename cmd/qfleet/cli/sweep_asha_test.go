package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/cluster/sweep"
)

// ashaSweepSpec: two CartPole trials, one that learns (learning rate 1e-3)
// and one that cannot (1e-9), run one after the other; ASHA's rungs at
// 20,000, 40,000, 80,000 env steps keep the top half. Heartbeats bring a
// trial's progress every 2 s, so rungs are far apart in time.
const ashaSweepSpec = `name: asha
env: CartPole-v1
base:
  epsilon_decay_steps: 2000
  min_replay_size: 500
method: grid
params:
  learning_rate: [0.001, 0.000000001]
max_steps: 100000
target_return: 100000
scheduler:
  name: asha
  min_steps: 20000
  eta: 2
`

// TestSweepASHA: the trial that learns nothing is pruned at the first rung
// where the other did better: it stops there as at a time limit, its row
// says pruned and at which rung, and it used far fewer env steps; the other
// runs to max_steps. A second run resumes with nothing to do.
func TestSweepASHA(t *testing.T) {
	trialExecutable = qfleetBinary(t)
	defer func() { trialExecutable = "" }()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "asha.yaml")
	os.WriteFile(specPath, []byte(ashaSweepSpec), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--parallel", "1", "--name", "here")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2:\n%s", len(rows), stderr)
	}
	byLR := map[float64]sweep.Row{}
	for _, r := range rows {
		byLR[r.Params["learning_rate"].(float64)] = r
	}
	good, bad := byLR[0.001], byLR[1e-9]
	t.Logf("learning: %s, %d env steps, rungs %v; not learning: %s at %d, %d env steps, rungs %v",
		good.Status, good.EnvSteps, rungString(good), bad.Status, bad.PrunedAt, bad.EnvSteps, rungString(bad))
	if good.Status != sweep.StatusOK || good.EnvSteps < 100000 || len(good.Rungs) < 2 {
		t.Errorf("the learning trial: %s, %d env steps, %d rungs: want ok, run to 100000, rungs 20000 and 40000 at least (80000 too unless the run ended before the heartbeat)", good.Status, good.EnvSteps, len(good.Rungs))
	}
	if bad.Status != sweep.StatusPruned || bad.PrunedAt != 20000 || bad.EnvSteps >= 60000 || bad.EnvSteps < 20000 {
		t.Errorf("the trial that cannot learn: %s at %d after %d env steps: want pruned at 20000, well before 100000", bad.Status, bad.PrunedAt, bad.EnvSteps)
	}
	if !strings.Contains(stderr, "pruned at 20000 env steps") || !strings.Contains(stdout, "pruned") {
		t.Errorf("the log or the table does not say pruned:\n%s\n%s", stderr, stdout)
	}
	code, _, stderr = runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || !strings.Contains(stderr, "resuming: 2 of 2 trial(s) finished already") {
		t.Errorf("second run: exit %d\n%s", code, stderr)
	}
}

func rungString(r sweep.Row) string {
	var b strings.Builder
	for k, v := range r.Rungs {
		b.WriteString(k + ":")
		if v == nil {
			b.WriteString("none ")
		} else {
			b.WriteString(strconv.FormatFloat(*v, 'f', 1, 64) + " ")
		}
	}
	return b.String()
}
