package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// TestConfigPrintEvalKeys: 'qfleet config print' shows the evaluation's
// keys with their defaults (per env family), meaning and ranges; a bad
// value is refused with one line naming the key.
func TestConfigPrintEvalKeys(t *testing.T) {
	for env, every := range map[string]string{"CartPole-v1": "2500", "Acrobot-v1": "5000", "MinAtar/Breakout-v1": "100000"} {
		code, stdout, stderr := runQfleet(t, "config", "print", "--env", env)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"eval_every: " + every + " # run env steps between evaluations", "[0..1000000000000]",
			"eval_episodes: 20 # episodes per evaluation", "[1..10000]", "eval_epsilon: 0 # ε of the evaluation episodes",
			"stop_on: mean100 # what target_return applies to", "\n# Evaluation"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("config print --env %s lacks %q:\n%s", env, want, stdout)
			}
		}
	}
	dir := t.TempDir()
	for i, c := range []struct {
		yaml string
		want []string
	}{
		{"eval_episodes: 0\n", []string{"eval_episodes = 0", "allowed 1..10000"}},
		{"eval_every: -5\n", []string{"eval_every = -5", "allowed 0..1000000000000"}},
		{"eval_epsilon: 2\n", []string{"eval_epsilon = 2", "allowed 0..1"}},
		{"stop_on: foo\n", []string{"stop_on", "foo", "want mean100, eval or none"}},
		{"stop_on: none\nmax_steps: 0\n", []string{"stop_on = none needs max_steps or max_time"}},
		{"learning_rate_decay: 1000\nlearning_rate_end: 0\n", []string{"learning_rate_end = 0", "must be > 0 when learning_rate_decay is on"}},
		{"stop_on: eval\neval_every: 0\n", []string{"stop_on = eval needs eval_every > 0"}},
	} {
		path := testutil.WriteFile(t, dir, fmt.Sprintf("bad-%d.yaml", i), c.yaml)
		code, stdout, stderr := runQfleet(t, "config", "print", "--config", path)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d (want 2), printed %q", c.yaml, code, stdout)
		}
		oneLine(t, stderr, c.want...)
	}
	code, _, stderr := runQfleet(t, "dev", "--stop-on", "sometimes")
	if code != 2 {
		t.Errorf("--stop-on sometimes: exit %d, want 2", code)
	}
	oneLine(t, stderr, "stop_on", "sometimes")
}

// TestDevStopOnEval: a dev run of CartPole with an evaluation every 1000
// env steps and stop_on eval stops at the first evaluation whose mean
// reaches the target (100: seconds, not minutes), solved at that
// evaluation's env steps; its summary has the evaluation's fields, the
// scalars its rows, best.ckpt exists, and 'qfleet eval --best' plays it.
func TestDevStopOnEval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runQfleet(t, "dev", "--seed", "2", "--eval-every", "1000", "--eval-episodes", "5", "--stop-on", "eval",
		"--target-return", "100", "--max-steps", "100000", "--max-time", "25s", "--run-dir", dir, "--checkpoint-every", "1h", "--live", "never")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var s qfleet.Summary
	data, err := os.ReadFile(filepath.Join(dir, qfleet.RunSummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Solved || s.EvalMeanReturn == nil || s.BestEvalMeanReturn == nil || s.BestEvalEnvSteps == nil {
		t.Fatalf("summary without a solving evaluation:\n%s\nstdout %s\nstderr %s", data, stdout, stderr)
	}
	if *s.EvalMeanReturn < 100 || *s.BestEvalMeanReturn < *s.EvalMeanReturn {
		t.Errorf("last evaluation %g, best %g: want the last ≥ 100 and the best ≥ the last", *s.EvalMeanReturn, *s.BestEvalMeanReturn)
	}
	if s.SolvedAtEnvSteps%1000 > 999 || s.SolvedAtEnvSteps < 1000 || s.SolvedAtEnvSteps > s.EnvSteps {
		t.Errorf("solved at %d env steps of %d: want an evaluation's steps", s.SolvedAtEnvSteps, s.EnvSteps)
	}
	if s.MeanReturn100 >= 475 {
		t.Logf("mean100 %g reached the env's threshold too", s.MeanReturn100)
	}
	for _, key := range []string{`"eval_mean_return"`, `"best_eval_mean_return"`, `"best_eval_env_steps"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("summary lacks %s:\n%s", key, data)
		}
	}
	recs, err := qfleet.ReadScalars(filepath.Join(dir, qfleet.RunScalarsFile))
	if err != nil {
		t.Fatal(err)
	}
	var means, stds int
	for _, r := range recs {
		switch r.Name {
		case "eval_mean_return":
			means++
		case "eval_std_return":
			stds++
		}
	}
	if means == 0 || means != stds {
		t.Errorf("scalars: %d eval_mean_return and %d eval_std_return rows, want one of each per evaluation", means, stds)
	}
	best := filepath.Join(dir, qfleet.RunCheckpointsDir, qfleet.BestCheckpointFile)
	if _, err := os.Stat(best); err != nil {
		t.Fatalf("no best checkpoint: %v", err)
	}
	for _, args := range [][]string{{"eval", dir, "--best", "--episodes", "2"}, {"eval", "--checkpoint", best, "--episodes", "2"}} {
		code, stdout, stderr := runQfleet(t, args...)
		if code != 0 || !strings.Contains(stdout, "2 episodes: mean return") || !strings.Contains(stderr, "best checkpoint in") {
			t.Errorf("%s: exit %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestDevStopOnNone: with stop_on none a CartPole run that reaches its
// target (30: seconds, not minutes) goes on to max_steps, and its summary
// says where it solved and the lowest mean100 from then on, which is at
// most the last mean100 and, right after solving, at least near the
// target.
func TestDevStopOnNone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	// A short ε decay: 100 episodes at ε ≤ 0.05 well before max_steps.
	cfg := testutil.WriteFile(t, t.TempDir(), "fast.yaml", "epsilon_decay_steps: 1000\n")
	code, stdout, stderr := runQfleet(t, "dev", "--config", cfg, "--seed", "3", "--stop-on", "none", "--target-return", "30", "--max-steps", "40000",
		"--max-time", "40s", "--eval-every", "0", "--run-dir", dir, "--live", "never")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	s, data := readSummary(t, dir)
	if !s.Solved || s.Mean100MinAfterSolved == nil {
		t.Fatalf("summary without solving or its lowest mean100 after:\n%s\nstdout %s", data, stdout)
	}
	if s.EnvSteps < 40000 || s.SolvedAtEnvSteps >= s.EnvSteps {
		t.Errorf("solved at %d env steps, ended at %d: want the run to go on to max_steps 40000", s.SolvedAtEnvSteps, s.EnvSteps)
	}
	if m := *s.Mean100MinAfterSolved; m > s.MeanReturn100 || m <= 0 {
		t.Errorf("lowest mean100 after solving %g, last %g: want 0 < lowest ≤ last", m, s.MeanReturn100)
	}
}

func readSummary(t *testing.T, dir string) (qfleet.Summary, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, qfleet.RunSummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s qfleet.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s, data
}

// TestLayerNormRunEvaluates: a run with layer_norm writes checkpoints that
// say so, and 'qfleet eval' plays them with the LayerNorm network its
// config.yaml describes.
func TestLayerNormRunEvaluates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := testutil.WriteFile(t, t.TempDir(), "ln.yaml", "layer_norm: true\n")
	code, _, stderr := runQfleet(t, "dev", "--config", cfg, "--max-steps", "3000", "--eval-every", "1000",
		"--run-dir", dir, "--checkpoint-every", "1h", "--live", "never")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	ckpts := filepath.Join(dir, qfleet.RunCheckpointsDir)
	for name, read := range map[string]func(string) (*messages.Checkpoint, error){"learner": actors.ReadCheckpoint, "best": actors.ReadBestCheckpoint} {
		c, err := read(ckpts)
		if err != nil {
			t.Fatal(err)
		}
		if !c.GetLayerNorm() {
			t.Errorf("the %s checkpoint does not record layer_norm", name)
		}
	}
	code, stdout, stderr := runQfleet(t, "eval", dir, "--episodes", "2")
	if code != 0 || !strings.Contains(stdout, "2 episodes: mean return") {
		t.Errorf("eval: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}
