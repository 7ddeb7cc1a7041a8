package cli

// Tests of 'qfleet sweep' on one machine: the spec's parsing, validation and
// expansion, the random draws, the results files, resuming, and two short
// end-to-end sweeps of tiny CartPole trials (each a real 'qfleet dev'
// process of the built binary). The multi-host stories are in
// sweep_multihost_test.go.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

func parseSpecText(t *testing.T, text string) (*sweepSpec, error) {
	t.Helper()
	return parseSweepSpec([]byte(text), "spec.yaml", t.TempDir(), "spec")
}

func mustSpec(t *testing.T, text string) *sweepSpec {
	t.Helper()
	s, err := parseSpecText(t, text)
	if err != nil {
		t.Fatalf("spec: %v\n%s", err, text)
	}
	return s
}

func TestSweepSpecErrors(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"empty", "", "empty"},
		{"unknown spec key", "env: CartPole-v1\nmethod: grid\nparms: {}\n", "line 3: field parms not found"},
		{"no env", "method: grid\n", "env: missing"},
		{"unknown env", "env: Pong-v9\nmethod: grid\n", `env: unknown environment "Pong-v9"`},
		{"no method", "env: CartPole-v1\n", "method: missing"},
		{"bad method", "env: CartPole-v1\nmethod: bayes\n", `method = "bayes": want grid or random`},
		{"random without trials", "env: CartPole-v1\nmethod: random\n", "trials = 0: method random needs trials > 0"},
		{"trials on a grid", "env: CartPole-v1\nmethod: grid\ntrials: 3\n", "trials = 3: only for method: random"},
		{"unknown param", "env: CartPole-v1\nmethod: grid\nparams:\n  learnin_rate: [0.1]\n", "params.learnin_rate: unknown config key"},
		{"param out of range", "env: CartPole-v1\nmethod: grid\nparams:\n  gamma: [0.9, 1.5]\n", "params.gamma[1] = 1.5: invalid config: gamma = 1.5: allowed 0..1"},
		{"param wrong type", "env: CartPole-v1\nmethod: grid\nparams:\n  learning_rate: [abc]\n", "params.learning_rate[0] = abc: learning_rate: cannot unmarshal !!str `abc` into float64"},
		{"fraction for an int", "env: CartPole-v1\nmethod: grid\nparams:\n  batch_size: [32, 51.5]\n", "params.batch_size[1] = 51.5: batch_size takes whole numbers"},
		{"cross-field rule", "env: CartPole-v1\nmethod: grid\nparams:\n  min_replay_size: [10]\n", "params.min_replay_size[0] = 10: invalid config: min_replay_size = 10: must be >= batch_size (128)"},
		{"list key", "env: CartPole-v1\nmethod: grid\nparams:\n  hidden: [64, 64]\n", "a list-valued key takes a list of lists"},
		{"seed searched", "env: CartPole-v1\nmethod: grid\nparams:\n  seed: [1, 2]\n", "params.seed: cannot be searched (list run seeds in seeds: [...])"},
		{"distribution on a grid", "env: CartPole-v1\nmethod: grid\nparams:\n  gamma: {uniform: [0.9, 0.99]}\n", "params.gamma: uniform is for method: random"},
		{"uniform on an int", "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  batch_size: {uniform: [16, 64]}\n", "params.batch_size: uniform draws real numbers, but batch_size takes whole numbers: use int_uniform"},
		{"bound outside the rule", "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  gamma: {uniform: [0.9, 1.1]}\n", "params.gamma.uniform high bound: invalid config: gamma = 1.1"},
		{"log_uniform at 0", "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  learning_rate: {log_uniform: [0, 0.01]}\n", "params.learning_rate.log_uniform: low bound 0: log_uniform needs bounds > 0"},
		{"bounds reversed", "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  gamma: {uniform: [0.99, 0.9]}\n", "low bound 0.99 is above high bound 0.9"},
		{"unknown distribution", "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  gamma: {normal: [0.9, 0.01]}\n", `params.gamma: unknown distribution "normal"`},
		{"base http", "env: CartPole-v1\nmethod: grid\nbase:\n  http: 127.0.0.1:9090\n", "base: http = 127.0.0.1:9090: not allowed in a sweep"},
		{"base run_dir", "env: CartPole-v1\nmethod: grid\nbase:\n  run_dir: /tmp/x\n", "base: run_dir = /tmp/x: not allowed in a sweep (each trial runs in a directory of its own)"},
		{"node key searched", "env: CartPole-v1\nmethod: grid\nparams:\n  join: [a:1, b:2]\n", "params.join: cannot be searched (a 'qfleet node' setting"},
		{"base invalid", "env: CartPole-v1\nmethod: grid\nbase:\n  batch_size: 0\n", "base: invalid config: batch_size = 0: allowed 1..65536"},
		{"base unknown key", "env: CartPole-v1\nmethod: grid\nbase:\n  batchsize: 32\n", "base: batchsize: unknown config key"},
		{"base file missing", "env: CartPole-v1\nmethod: grid\nbase: nope.yaml\n", "base: open"},
		{"bad max_time", "env: CartPole-v1\nmethod: grid\nmax_time: soon\n", `max_time = "soon": want a positive duration`},
		{"seed twice", "env: CartPole-v1\nmethod: grid\nseeds: [1, 1]\n", "seeds: 1 listed twice"},
		{"env clash", "env: CartPole-v1\nmethod: grid\nbase:\n  env: Acrobot-v1\n", "base: env = Acrobot-v1, but the spec's env is CartPole-v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseSpecText(t, c.spec)
			if err == nil {
				t.Fatalf("spec accepted, want an error with %q:\n%s", c.want, c.spec)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nwant it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// trialConfig decodes a trial's config file as 'qfleet dev --config' would.
func trialConfig(t *testing.T, tr sweepTrial) qfleet.Config {
	t.Helper()
	var cf qfleet.Config
	if err := qfleet.ParseConfig(tr.Config, tr.ID, &cf); err != nil {
		t.Fatalf("trial %s config: %v\n%s", tr.ID, err, tr.Config)
	}
	return cf
}

func TestSweepGridExpansion(t *testing.T) {
	spec := `env: CartPole-v1
base:
  batch_size: 64
  min_replay_size: 500
method: grid
params:
  learning_rate: [0.0005, 0.001, 0.002]
  hidden: [[64, 64], [128]]
seeds: [3, 4]
max_steps: 20000
target_return: 200
`
	s := mustSpec(t, spec)
	trials, err := s.expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 3*2*2 {
		t.Fatalf("%d trials, want 3 learning rates × 2 nets × 2 seeds = 12", len(trials))
	}
	// The first param varies slowest, then the second, then the seed.
	type point struct {
		lr     float64
		hidden string
		seed   uint64
	}
	var want []point
	for _, lr := range []float64{0.0005, 0.001, 0.002} {
		for _, h := range []string{"[64 64]", "[128]"} {
			for _, seed := range []uint64{3, 4} {
				want = append(want, point{lr, h, seed})
			}
		}
	}
	ids := map[string]bool{}
	for i, tr := range trials {
		cf := trialConfig(t, tr)
		got := point{cf.LearningRate, fmt.Sprint(cf.Hidden), cf.Seed}
		if got != want[i] {
			t.Errorf("trial %d (%s): %+v, want %+v", i, tr.ID, got, want[i])
		}
		if tr.Seed != cf.Seed || tr.Index != i {
			t.Errorf("trial %d: index %d seed %d, config seed %d", i, tr.Index, tr.Seed, cf.Seed)
		}
		// base, stop rules and the env are in every trial's config.
		if cf.BatchSize != 64 || cf.MinReplaySize != 500 || cf.MaxSteps != 20000 || cf.TargetReturn == nil || *cf.TargetReturn != 200 || cf.Env != "CartPole-v1" {
			t.Errorf("trial %s: batch %d min_replay %d max_steps %d target %v env %s", tr.ID, cf.BatchSize, cf.MinReplaySize, cf.MaxSteps, cf.TargetReturn, cf.Env)
		}
		if cf.HTTP != "" || cf.Summary != "" || cf.CheckpointDir != "" {
			t.Errorf("trial %s sets http/summary/checkpoint_dir: %q %q %q", tr.ID, cf.HTTP, cf.Summary, cf.CheckpointDir)
		}
		if ids[tr.ID] || ids[tr.Key] {
			t.Errorf("trial %s: id or key %s not unique", tr.ID, tr.Key)
		}
		ids[tr.ID], ids[tr.Key] = true, true
		if !strings.HasPrefix(tr.ID, fmt.Sprintf("t%03d-", i)) || !strings.HasPrefix(tr.Key, strings.TrimPrefix(tr.ID, fmt.Sprintf("t%03d-", i))) {
			t.Errorf("trial %d: id %s key %s", i, tr.ID, tr.Key)
		}
	}
	// Deterministic: the same spec gives the same trials.
	again, err := mustSpec(t, spec).expand()
	if err != nil {
		t.Fatal(err)
	}
	for i := range trials {
		if again[i].ID != trials[i].ID || again[i].Key != trials[i].Key || string(again[i].Config) != string(trials[i].Config) {
			t.Fatalf("trial %d differs between two expansions: %s/%s vs %s/%s", i, trials[i].ID, trials[i].Key, again[i].ID, again[i].Key)
		}
	}
	// A changed base changes every key (the runs differ).
	other, err := mustSpec(t, strings.Replace(spec, "batch_size: 64", "batch_size: 32", 1)).expand()
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Key == trials[0].Key {
		t.Errorf("a changed base kept key %s", other[0].Key)
	}
	// No params: one trial per seed, the base config.
	plain, err := mustSpec(t, "env: Acrobot-v1\nmethod: grid\nseeds: [1, 2, 3]\n").expand()
	if err != nil || len(plain) != 3 {
		t.Fatalf("no params: %d trials (%v), want 3", len(plain), err)
	}
	if cf := trialConfig(t, plain[2]); cf.Env != "Acrobot-v1" || cf.Seed != 3 || cf.EpsilonDecaySteps != 20_000 {
		t.Errorf("no params, third trial: env %s seed %d epsilon_decay_steps %d (want Acrobot-v1's default 20000)", cf.Env, cf.Seed, cf.EpsilonDecaySteps)
	}
}

// oneTrialOverBase expands a spec whose base is a file holding base and
// whose one param is gamma: [gamma], and returns its one trial's config.
func oneTrialOverBase(t *testing.T, base string, gamma float64) qfleet.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("method: grid\nbase: base.yaml\nparams:\n  gamma: [%v]\n", gamma)
	s, err := parseSweepSpec([]byte(spec), "spec.yaml", dir, "spec")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := s.expand()
	if err != nil || len(trials) != 1 {
		t.Fatalf("%d trials, %v", len(trials), err)
	}
	return trialConfig(t, trials[0])
}

func TestSweepBaseFile(t *testing.T) {
	cf := oneTrialOverBase(t, "env: CartPole-v1\nseed: 9\nn_step: 5\nhttp: \"\"\nprogress: 2s\n", 0.9)
	if cf.Env != "CartPole-v1" || cf.Seed != 9 || cf.NStep != 5 || cf.Gamma != 0.9 {
		t.Errorf("env %s seed %d n_step %d gamma %v: want the base file's env, seed 9, n_step 5 and gamma 0.9", cf.Env, cf.Seed, cf.NStep, cf.Gamma)
	}
}

// A base file printed by 'qfleet config print' (every key, the node's
// cluster settings included) is a valid base.
func TestSweepBasePrinted(t *testing.T) {
	code, printed, stderr := runQfleet(t, "config", "print", "--env", "Acrobot-v1")
	if code != 0 {
		t.Fatalf("config print: exit %d: %s", code, stderr)
	}
	if cf := oneTrialOverBase(t, printed, 0.95); cf.Env != "Acrobot-v1" || cf.Gamma != 0.95 || cf.Join != "" {
		t.Errorf("env %s gamma %v join %q: want Acrobot-v1, 0.95 and no node settings", cf.Env, cf.Gamma, cf.Join)
	}
}

func TestSweepRandomDraws(t *testing.T) {
	spec := `env: CartPole-v1
method: random
trials: 200
seed: 7
params:
  learning_rate: {log_uniform: [0.0001, 0.01]}
  gamma: {uniform: [0.95, 0.999]}
  n_step: {int_uniform: [1, 4]}
  batch_size: [32, 64, 128]
  min_replay_size: {values: [1000, 2000]}
`
	s := mustSpec(t, spec)
	trials, err := s.expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 200 {
		t.Fatalf("%d trials, want 200", len(trials))
	}
	nsteps, batches := map[int]int{}, map[int]int{}
	var lrLow, lrHigh int
	for _, tr := range trials {
		cf := trialConfig(t, tr)
		if cf.LearningRate < 0.0001 || cf.LearningRate > 0.01 {
			t.Errorf("%s: learning_rate %v outside [0.0001, 0.01]", tr.ID, cf.LearningRate)
		}
		if cf.LearningRate < 0.001 {
			lrLow++
		} else {
			lrHigh++
		}
		if cf.Gamma < 0.95 || cf.Gamma > 0.999 {
			t.Errorf("%s: gamma %v outside [0.95, 0.999]", tr.ID, cf.Gamma)
		}
		nsteps[cf.NStep]++
		batches[cf.BatchSize]++
		if cf.MinReplaySize != 1000 && cf.MinReplaySize != 2000 {
			t.Errorf("%s: min_replay_size %d not one of the values", tr.ID, cf.MinReplaySize)
		}
		if tr.Params["gamma"] != cf.Gamma || tr.Params["learning_rate"] != cf.LearningRate {
			t.Errorf("%s: the table's params %v differ from the config's gamma %v learning_rate %v", tr.ID, tr.Params, cf.Gamma, cf.LearningRate)
		}
	}
	// int_uniform includes both bounds; every listed value is drawn.
	for n := 1; n <= 4; n++ {
		if nsteps[n] == 0 {
			t.Errorf("n_step %d never drawn in 200 trials: %v", n, nsteps)
		}
	}
	if len(nsteps) != 4 || len(batches) != 3 {
		t.Errorf("n_step values %v (want 1..4), batch sizes %v (want 32, 64, 128)", nsteps, batches)
	}
	// log-uniform: as many draws below 0.001 as above (within noise).
	if lrLow < 70 || lrHigh < 70 {
		t.Errorf("learning_rate below/above 0.001: %d/%d, want about 100/100 for log_uniform", lrLow, lrHigh)
	}
	// The same seed draws the same trials; another seed others.
	again, _ := mustSpec(t, spec).expand()
	for i := range trials {
		if again[i].Key != trials[i].Key {
			t.Fatalf("trial %d: key %s, then %s: the draws are not deterministic", i, trials[i].Key, again[i].Key)
		}
	}
	other, _ := mustSpec(t, strings.Replace(spec, "seed: 7", "seed: 8", 1)).expand()
	same := 0
	for i := range other {
		if other[i].Key == trials[i].Key {
			same++
		}
	}
	if same > 2 {
		t.Errorf("seed 8 drew %d of 200 trials like seed 7", same)
	}
	// Duplicate draws run once: 2 × 1 choices, 10 draws → 2 trials.
	few, err := mustSpec(t, "env: CartPole-v1\nmethod: random\ntrials: 10\nparams:\n  n_step: [1, 3]\n").expand()
	if err != nil || len(few) != 2 {
		t.Errorf("10 draws of 2 points: %d trials (%v), want 2", len(few), err)
	}
}

func TestSweepResultsTable(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	rows := []sweepRow{
		{Trial: "t000-a", Key: "a", Params: map[string]any{"gamma": 0.9}, Seed: 1, Node: "B", Status: trialOK, BestMean100: f(120), FinalMean100: f(100)},
		{Trial: "t001-b", Key: "b", Params: map[string]any{"gamma": 0.99}, Seed: 1, Node: "C", Status: trialOK, BestMean100: f(300), FinalMean100: f(250)},
		{Trial: "t002-c", Key: "c", Params: map[string]any{"gamma": 0.999}, Seed: 1, Node: "B", Status: trialFailed, Error: "exit status 2"},
		{Trial: "t003-d", Key: "d", Params: map[string]any{"gamma": 0.95}, Seed: 1, Node: "C", Status: trialOK},
	}
	md := markdownTable(rows)
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if len(lines) != 2+len(rows) {
		t.Fatalf("table has %d lines, want %d:\n%s", len(lines), 2+len(rows), md)
	}
	for i, want := range []string{"t001-b", "t000-a", "t002-c", "t003-d"} {
		if !strings.HasPrefix(lines[2+i], fmt.Sprintf("| %d | %s |", i+1, want)) {
			t.Errorf("row %d: %q, want trial %s (best mean100 first, failed and undefined last)", i+1, lines[2+i], want)
		}
	}
	if !strings.Contains(md, "| gamma |") || !strings.Contains(md, "failed: exit status 2") {
		t.Errorf("table lacks the param column or the failure:\n%s", md)
	}
	path := filepath.Join(t.TempDir(), "results.tsv")
	if err := writeSweepTable(path, rows); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	tsv := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(tsv) != 5 || !strings.HasPrefix(tsv[0], "trial\tnode\tstatus\tseed\tgamma\tbest_mean100\tfinal_mean100") {
		t.Errorf("results.tsv:\n%s", data)
	}
	if cols := strings.Split(tsv[2], "\t"); cols[0] != "t001-b" || cols[1] != "C" || cols[4] != "0.99" || cols[5] != "300.0" {
		t.Errorf("results.tsv row 2: %q", cols)
	}
}

func TestSweepResultsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), sweepResultsFile)
	if rows, err := readSweepResults(path); err != nil || rows != nil {
		t.Fatalf("missing file: %v %v, want no rows, no error", rows, err)
	}
	for _, r := range []sweepRow{{Trial: "t0", Key: "k0", Status: trialFailed}, {Trial: "t1", Key: "k1", Status: trialOK}, {Trial: "t0", Key: "k0", Status: trialOK}} {
		if err := appendSweepResult(path, r); err != nil {
			t.Fatal(err)
		}
	}
	// A line cut short by a crash is left out.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"trial":"t2","key":"k2","sta`)
	f.Close()
	rows, err := readSweepResults(path)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows (%v), want 3", len(rows), err)
	}
	if by := latestByKey(rows); by["k0"].Status != trialOK || len(by) != 2 {
		t.Errorf("latest by key: %v, want k0 ok (its newer row) and k1", by)
	}
}

// TestSweepResume: a trial recorded ok is skipped, a failed one runs again;
// --dry-run shows which is which.
func TestSweepResume(t *testing.T) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "res.yaml")
	os.WriteFile(specPath, []byte("env: CartPole-v1\nmethod: grid\nparams:\n  n_step: [1, 2, 3]\n"), 0o644)
	s, err := loadSweepSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	trials, _ := s.expand()
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	appendSweepResult(filepath.Join(out, sweepResultsFile), sweepRow{Trial: trials[0].ID, Key: trials[0].Key, Status: trialOK, Node: "X"})
	appendSweepResult(filepath.Join(out, sweepResultsFile), sweepRow{Trial: trials[1].ID, Key: trials[1].Key, Status: trialFailed, Node: "X"})
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

func readRows(t *testing.T, out string) []sweepRow {
	t.Helper()
	rows, err := readSweepResults(filepath.Join(out, sweepResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestSweepLocal: a two-point grid on this machine, two trials at a time,
// each a real 'qfleet dev' process; then the same command again runs
// nothing (resumed).
func TestSweepLocal(t *testing.T) {
	sweepExecutable = func() (string, error) { return qfleetBinary(t), nil }
	defer func() { sweepExecutable = os.Executable }()
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
		if r.Status != trialOK || r.Node != "here" || r.Attempt != 1 {
			t.Errorf("%s: status %s node %s attempt %d, want ok on here, attempt 1 (%s)", r.Trial, r.Status, r.Node, r.Attempt, r.Error)
		}
		if r.EnvSteps < 4000 || r.FinalMean100 == nil || r.BestMean100 == nil || *r.BestMean100 < *r.FinalMean100 || *r.FinalMean100 <= 0 {
			t.Errorf("%s: env_steps %d final %v best %v: want >= 4000 steps and a defined mean100, best >= final", r.Trial, r.EnvSteps, r.FinalMean100, r.BestMean100)
		}
		// The run directory is the trial's, under the sweep's directory.
		if r.RunDir != filepath.Join(out, sweepTrialsDir, r.Trial) || r.LocalDir != r.RunDir {
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
	tsv, _ := os.ReadFile(filepath.Join(out, sweepTableFile))
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
	sweepExecutable = func() (string, error) { return fail, nil }
	defer func() { sweepExecutable = os.Executable }()
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
		if r.Status != trialFailed || !strings.Contains(r.Error, "exit status 3: boom: the trial crashed") {
			t.Errorf("%s: status %s error %q", r.Trial, r.Status, r.Error)
		}
	}
	if !strings.Contains(stdout, "failed: exit status 3") {
		t.Errorf("table:\n%s", stdout)
	}
	sweepExecutable = func() (string, error) { return qfleetBinary(t), nil }
	code, _, stderr = runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || strings.Contains(stderr, "skipped") {
		t.Fatalf("rerun: exit %d (want 0, nothing skipped):\n%s", code, stderr)
	}
	rows = readRows(t, out)
	if len(rows) != 4 {
		t.Fatalf("%d rows after the rerun, want 2 failed + 2 ok", len(rows))
	}
	for k, r := range latestByKey(rows) {
		if r.Status != trialOK {
			t.Errorf("trial %s (%s) after the rerun: %s %s", r.Trial, k, r.Status, r.Error)
		}
	}
}

// TestSweepMaxTime: max_time stops a trial as Ctrl-C would; its summary is
// kept and it counts as finished (ok, timed out).
func TestSweepMaxTime(t *testing.T) {
	sweepExecutable = func() (string, error) { return qfleetBinary(t), nil }
	defer func() { sweepExecutable = os.Executable }()
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
	if r.Status != trialOK || !r.TimedOut || r.WallSeconds < 2.5 || r.WallSeconds > 30 || r.EnvSteps == 0 {
		t.Errorf("row %+v: want ok, timed out, about 3 s of wall, some env steps", r)
	}
	if !strings.Contains(stdout, "ok (max_time)") || !strings.Contains(stderr, "(stopped at max_time)") {
		t.Errorf("table or log lacks max_time:\n%s\n%s", stdout, stderr)
	}
}
