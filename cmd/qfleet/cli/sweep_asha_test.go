package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/cluster/sweep"
)

// ashaSweepSpec: ASHA's stopping form on two CartPole trials, one that
// learns (learning rate 1e-3) and one that cannot (1e-9), run one after the
// other (the order this sweep shuffles them in, from its name, starts the
// learning one first); ASHA's rungs at 20,000, 40,000, 80,000 env steps
// keep the top half.
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
  mode: stop
  min_steps: 20000
  eta: 2
`

// TestSweepASHA: the trial that learns nothing is pruned at the first rung
// where the other did better: it stops there as at a time limit, its row
// says pruned and at which rung, and it used far fewer env steps; the other
// runs to max_steps. A second run resumes with nothing to do.
func TestSweepASHA(t *testing.T) {
	specPath, out, stdout, stderr := runSweepHere(t, "asha", ashaSweepSpec)
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
	code, _, stderr := runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || !strings.Contains(stderr, "resuming: 2 of 2 trial(s) finished already") {
		t.Errorf("second run: exit %d\n%s", code, stderr)
	}
}

// promoteSweepSpec: ASHA's promotion form on three CartPole trials, two
// that cannot learn (learning rates 1e-9 and 1e-8) around one that learns;
// each runs to the rung at 10,000 env steps and pauses there with its
// checkpoint, and the top ⌊3/3⌋ = 1 goes on to max_steps.
const promoteSweepSpec = `name: promote
env: CartPole-v1
base:
  epsilon_decay_steps: 2000
  min_replay_size: 500
method: grid
params:
  learning_rate: [0.000000001, 0.001, 0.00000001]
max_steps: 30000
target_return: 100000
scheduler:
  name: asha
  min_steps: 10000
`

// TestSweepASHAPromotion: every trial pauses at 10,000 env steps; only the
// one that learns is continued, from its checkpoint, in a new process, to
// 30,000; the other two are pruned there without running a step more. The
// continued trial's curve under the sweep's directory holds both segments.
func TestSweepASHAPromotion(t *testing.T) {
	specPath, out, stdout, stderr := runSweepHere(t, "promote", promoteSweepSpec)
	all := readRows(t, out)
	latest := sweep.LatestByKey(all)
	if len(latest) != 3 || len(all) != 6 {
		t.Fatalf("%d rows of %d trials, want 6 of 3 (each paused once, then pruned or ok):\n%s", len(all), len(latest), stderr)
	}
	var total uint64
	for _, r := range latest {
		lr := r.Params["learning_rate"].(float64)
		t.Logf("lr %g: %s, %d env steps, %d segments, rungs %s", lr, r.Status, r.EnvSteps, r.Segments, rungString(r))
		total += r.EnvSteps
		if lr == 0.001 {
			if r.Status != sweep.StatusOK || r.EnvSteps < 30000 || r.Segments != 2 {
				t.Errorf("the learning trial: %s, %d env steps, %d segments: want ok, 30000, 2", r.Status, r.EnvSteps, r.Segments)
			}
			// The second segment ran in a run directory of its own, and
			// went on from the first's learner and replay.
			log, _ := os.ReadFile(filepath.Join(out, "trials", r.Trial+"-2", "trial.log"))
			if !strings.Contains(string(log), "learner resumed from checkpoint") || !strings.Contains(string(log), "replay restored from snapshot") {
				t.Errorf("the second segment did not resume the first:\n%s", log)
			}
			data, err := os.ReadFile(filepath.Join(r.LocalDir, "scalars.jsonl"))
			if err != nil || !strings.Contains(string(data), `"step":2`) || strings.Count(string(data), "\n") < 10 {
				t.Errorf("its scalars under the sweep: %v, %d lines", err, strings.Count(string(data), "\n"))
			}
			continue
		}
		if r.Status != sweep.StatusPruned || r.PrunedAt != 10000 || r.EnvSteps < 10000 || r.EnvSteps > 12000 {
			t.Errorf("lr %g: %s at %d after %d env steps: want pruned at 10000, right there", lr, r.Status, r.PrunedAt, r.EnvSteps)
		}
	}
	if strings.Count(stdout, "| pruned |") != 2 || strings.Count(stdout, "| ok |") != 1 {
		t.Errorf("the table does not show two trials pruned and one ok:\n%s", stdout)
	}
	if !strings.Contains(stderr, "promoted to rung 1, from its checkpoint") || !strings.Contains(stderr, "pruned: mean100") {
		t.Errorf("the log does not tell the promotion and the pruning:\n%s", stderr)
	}
	t.Logf("%d env steps in all, against 90000 with every trial to the end", total)
	code, _, stderr := runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || !strings.Contains(stderr, "resuming: 3 of 3 trial(s) finished already") {
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

// runSweepHere runs the sweep spec (written to a file named name.yaml) on
// this machine, one trial at a time, each a real 'qfleet dev' process; it
// fails the test unless the sweep exits 0.
func runSweepHere(t *testing.T, name, spec string) (specPath, out, stdout, stderr string) {
	t.Helper()
	trialExecutable = qfleetBinary(t)
	t.Cleanup(func() { trialExecutable = "" })
	dir := t.TempDir()
	specPath = filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--parallel", "1", "--name", "here")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	return specPath, out, stdout, stderr
}
