package cli

// Tests of 'qfleet sweep' as a command on one machine: flags, the dry run
// of a resumed sweep, and short end-to-end sweeps of tiny CartPole trials
// (each a real 'qfleet dev' process of the built binary). The spec, the
// results files, the worker and the coordinator are tested in cluster/sweep;
// the multi-host stories are in sweep_multihost_test.go.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/sweep"
	"github.com/qfleet/qfleet/internal/testutil"
)

// A base file printed by 'qfleet config print' (every key, the node's
// cluster settings included) is a valid base.
func TestSweepBasePrinted(t *testing.T) {
	code, printed, stderr := runQfleet(t, "config", "print", "--env", "Acrobot-v1")
	if code != 0 {
		t.Fatalf("config print: exit %d: %s", code, stderr)
	}
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "base.yaml", printed)
	s, err := sweep.ParseSpec([]byte("method: grid\nbase: base.yaml\nparams:\n  gamma: [0.95]\n"), "spec.yaml", dir, "spec")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := s.Expand()
	if err != nil || len(trials) != 1 {
		t.Fatalf("%d trials, %v", len(trials), err)
	}
	var cf qfleet.Config
	if err := qfleet.ParseConfig(trials[0].Config, trials[0].ID, &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Env != "Acrobot-v1" || cf.Gamma != 0.95 || cf.Join != "" {
		t.Errorf("env %s gamma %v join %q: want Acrobot-v1, 0.95 and no node settings", cf.Env, cf.Gamma, cf.Join)
	}
}

// TestSweepResume: a trial recorded ok is skipped, a failed one runs again;
// --dry-run shows which is which.
func TestSweepResume(t *testing.T) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "res.yaml")
	os.WriteFile(specPath, []byte("env: CartPole-v1\nmethod: grid\nparams:\n  n_step: [1, 2, 3]\n"), 0o644)
	s, err := sweep.LoadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	trials, _ := s.Expand()
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	var results []byte
	for _, r := range []sweep.Row{{Trial: trials[0].ID, Key: trials[0].Key, Status: sweep.StatusOK, Node: "X"},
		{Trial: trials[1].ID, Key: trials[1].Key, Status: sweep.StatusFailed, Node: "X"}} {
		b, _ := json.Marshal(r)
		results = append(append(results, b...), '\n')
	}
	os.WriteFile(filepath.Join(out, sweep.ResultsFile), results, 0o644)
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for i, want := range []string{"(finished)", "(to run)", "(to run)"} {
		if !strings.Contains(stdout, trials[i].ID) || !strings.Contains(stdout, trials[i].ID+"  seed 1  n_step="+fmt.Sprint(i+1)+"  "+want) {
			t.Errorf("dry run lacks %s %s:\n%s", trials[i].ID, want, stdout)
		}
	}
	if !strings.Contains(stdout, "3 trial(s), 1 finished") {
		t.Errorf("dry run: %s", stdout)
	}
}

func TestSweepBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("env: CartPole-v1\nmethod: grid\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("env: CartPole-v1\nmethod: grid\nparams:\n  gamma: [2]\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"sweep"}, "want one SPEC.yaml, got 0"},
		{[]string{"sweep", good, good}, "want one SPEC.yaml, got 2"},
		{[]string{"sweep", filepath.Join(dir, "none.yaml")}, "no such file"},
		{[]string{"sweep", bad}, "params.gamma[0] = 2: invalid config: gamma = 2: allowed 0..1"},
		{[]string{"sweep", good, "--parallel", "0"}, "--parallel 0: must be >= 1"},
		{[]string{"sweep", "--slots", "0", good}, "--slots 0: must be >= 1"},
		{[]string{"sweep", good, "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"sweep", good, "--join", "10.1.2.3:7946", "--gossip-addr", "10.1.2.4:7948", "--remote-addr", "10.1.2.4:7949"}, "running across hosts needs --cluster-key-file"},
		{[]string{"sweep", good, "--join", "127.0.0.1:7946", "--remote-addr", "0.0.0.0:7949", "--gossip-addr", "127.0.0.1:0"}, "binds every interface"},
	}
	for _, c := range cases {
		code, _, stderr := runQfleet(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("qfleet %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	code, stdout, _ := runQfleet(t, "sweep", "--help")
	if code != 0 || !strings.Contains(stdout, "log_uniform") || !strings.Contains(stdout, "--heartbeat-timeout") || !strings.Contains(stdout, "results.jsonl") {
		t.Errorf("sweep --help: exit %d:\n%s", code, stdout)
	}
}

// tinySweepSpec is a CartPole grid of short trials (a second or two each):
// ε decays over 1000 steps, so mean100 is defined well before max_steps.
const tinySweepSpec = `name: tiny
env: CartPole-v1
base:
  epsilon_decay_steps: 1000
  min_replay_size: 500
  batch_size: 64
method: grid
params:
  learning_rate: [0.0005, 0.001]
max_steps: 4000
`

func readRows(t *testing.T, out string) []sweep.Row {
	t.Helper()
	rows, err := sweep.ReadResults(filepath.Join(out, sweep.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestSweepLocal: a two-point grid on this machine, two trials at a time,
// each a real 'qfleet dev' process; then the same command again runs
// nothing (resumed).
func TestSweepLocal(t *testing.T) {
	trialExecutable = qfleetBinary(t)
	defer func() { trialExecutable = "" }()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(specPath, []byte(tinySweepSpec), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--parallel", "2", "--name", "here")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 2 {
		t.Fatalf("%d result rows, want 2:\n%s", len(rows), stderr)
	}
	lrs := []float64{}
	for _, r := range rows {
		if r.Status != sweep.StatusOK || r.Node != "here" || r.Attempt != 1 {
			t.Errorf("%s: status %s node %s attempt %d, want ok on here, attempt 1 (%s)", r.Trial, r.Status, r.Node, r.Attempt, r.Error)
		}
		if r.EnvSteps < 4000 || r.FinalMean100 == nil || r.BestMean100 == nil || *r.BestMean100 < *r.FinalMean100 || *r.FinalMean100 <= 0 {
			t.Errorf("%s: env_steps %d final %v best %v: want >= 4000 steps and a defined mean100, best >= final", r.Trial, r.EnvSteps, r.FinalMean100, r.BestMean100)
		}
		// The run directory is the trial's, under the sweep's directory.
		if r.RunDir != filepath.Join(out, sweep.TrialsDir, r.Trial) || r.LocalDir != r.RunDir {
			t.Errorf("%s: run_dir %s local_dir %s", r.Trial, r.RunDir, r.LocalDir)
		}
		var sum qfleet.Summary
		data, err := os.ReadFile(filepath.Join(r.RunDir, qfleet.RunSummaryFile))
		if err != nil || json.Unmarshal(data, &sum) != nil || sum.EnvSteps != r.EnvSteps {
			t.Errorf("%s: summary.json %s (%v): env_steps want %d", r.Trial, data, err, r.EnvSteps)
		}
		var cf qfleet.Config
		if err := qfleet.LoadConfig(filepath.Join(r.RunDir, qfleet.RunConfigFile), &cf); err != nil {
			t.Errorf("%s: config.yaml: %v", r.Trial, err)
		} else if lr, _ := r.Params["learning_rate"].(float64); cf.LearningRate != lr || cf.MaxSteps != 4000 || cf.BatchSize != 64 {
			t.Errorf("%s: the run's config has learning_rate %v max_steps %d batch %d, want %v, 4000, 64", r.Trial, cf.LearningRate, cf.MaxSteps, cf.BatchSize, lr)
		}
		lrs = append(lrs, r.Params["learning_rate"].(float64))
	}
	slices.Sort(lrs)
	if !slices.Equal(lrs, []float64{0.0005, 0.001}) {
		t.Errorf("learning rates run: %v", lrs)
	}
	// The Markdown table and results.tsv have both trials.
	if strings.Count(stdout, "| here |") != 2 || !strings.Contains(stdout, "best mean100") {
		t.Errorf("stdout table:\n%s", stdout)
	}
	tsv, _ := os.ReadFile(filepath.Join(out, sweep.TableFile))
	if n := len(strings.Split(strings.TrimSpace(string(tsv)), "\n")); n != 3 {
		t.Errorf("results.tsv has %d lines, want 3:\n%s", n, tsv)
	}
	for _, want := range []string{"[1/2]", "[2/2]", "started on here", "finished on here"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// Again: both finished, nothing runs, the table is printed again.
	code, stdout, stderr = runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || !strings.Contains(stderr, "resuming: 2 of 2 trial(s) finished already, skipped") || strings.Contains(stderr, "started on") {
		t.Errorf("second run: exit %d\n%s", code, stderr)
	}
	if rows := readRows(t, out); len(rows) != 2 {
		t.Errorf("second run: %d result rows, want still 2", len(rows))
	}
	if strings.Count(stdout, "| here |") != 2 {
		t.Errorf("second run's table:\n%s", stdout)
	}
}

// TestSweepFailedTrialRerun: trials whose process fails are recorded as
// failed (exit 1); the next run runs them again and records them ok.
func TestSweepFailedTrialRerun(t *testing.T) {
	dir := t.TempDir()
	fail := filepath.Join(dir, "fail.sh")
	os.WriteFile(fail, []byte("#!/bin/sh\necho 'boom: the trial crashed' >&2\nexit 3\n"), 0o755)
	trialExecutable = fail
	defer func() { trialExecutable = "" }()
	specPath := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(specPath, []byte(tinySweepSpec), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out)
	if code != 1 || !strings.Contains(stderr, "2 trial(s) failed") {
		t.Fatalf("exit %d, want 1 and '2 trial(s) failed':\n%s", code, stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.Status != sweep.StatusFailed || !strings.Contains(r.Error, "exit status 3: boom: the trial crashed") {
			t.Errorf("%s: status %s error %q", r.Trial, r.Status, r.Error)
		}
	}
	if !strings.Contains(stdout, "failed: exit status 3") {
		t.Errorf("table:\n%s", stdout)
	}
	trialExecutable = qfleetBinary(t)
	code, _, stderr = runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || strings.Contains(stderr, "skipped") {
		t.Fatalf("rerun: exit %d (want 0, nothing skipped):\n%s", code, stderr)
	}
	rows = readRows(t, out)
	if len(rows) != 4 {
		t.Fatalf("%d rows after the rerun, want 2 failed + 2 ok", len(rows))
	}
	for k, r := range sweep.LatestByKey(rows) {
		if r.Status != sweep.StatusOK {
			t.Errorf("trial %s (%s) after the rerun: %s %s", r.Trial, k, r.Status, r.Error)
		}
	}
}

// TestSweepMaxTime: max_time stops a trial as Ctrl-C would; its summary is
// kept and it counts as finished (ok, timed out).
func TestSweepMaxTime(t *testing.T) {
	trialExecutable = qfleetBinary(t)
	defer func() { trialExecutable = "" }()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "long.yaml")
	os.WriteFile(specPath, []byte("env: CartPole-v1\nmethod: grid\nmax_steps: 100000000\ntarget_return: 100000\nmax_time: 3s\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--name", "here")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.Status != sweep.StatusOK || !r.TimedOut || r.WallSeconds < 2.5 || r.WallSeconds > 30 || r.EnvSteps == 0 {
		t.Errorf("row %+v: want ok, timed out, about 3 s of wall, some env steps", r)
	}
	if !strings.Contains(stdout, "ok (max_time)") || !strings.Contains(stderr, "(stopped at max_time)") {
		t.Errorf("table or log lacks max_time:\n%s\n%s", stdout, stderr)
	}
}

// TestSweepExternalEnv: a sweep of an env of the user's own (the Python
// CartPole over the env protocol, env_command in the base): the spec's env
// names it, its spec is learned once to check the trials, and every trial
// starts its own env processes and is recorded ok.
func TestSweepExternalEnv(t *testing.T) {
	trialExecutable = qfleetBinary(t)
	defer func() { trialExecutable = "" }()
	script, err := filepath.Abs("../../../python/examples/cartpole.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := fmt.Sprintf(`name: py
env: PyCartPole-v1
base:
  env_command: "%s %s"
  envs_per_runner: 2
  min_replay_size: 500
method: grid
params:
  learning_rate: [0.0005, 0.001]
max_steps: 3000
`, testutil.Python(t), script)
	specPath := testutil.WriteFile(t, dir, "py.yaml", spec)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runQfleet(t, "sweep", specPath, "--out", out, "--parallel", "2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 2 {
		t.Fatalf("%d result rows, want 2:\n%s", len(rows), stderr)
	}
	for _, r := range rows {
		var sum qfleet.Summary
		data, err := os.ReadFile(filepath.Join(r.RunDir, qfleet.RunSummaryFile))
		if r.Status != sweep.StatusOK || r.EnvSteps < 3000 || err != nil || json.Unmarshal(data, &sum) != nil || sum.Env != "PyCartPole-v1" {
			t.Errorf("%s: status %s (%s), env steps %d, summary env %q (%v)", r.Trial, r.Status, r.Error, r.EnvSteps, sum.Env, err)
		}
	}
}
