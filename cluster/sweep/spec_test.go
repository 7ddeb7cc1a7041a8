package sweep

// The spec's parsing, validation and expansion, and the random draws.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

func parseSpecText(t *testing.T, text string) (*Spec, error) {
	t.Helper()
	return ParseSpec([]byte(text), "spec.yaml", t.TempDir(), "spec")
}

func mustSpec(t *testing.T, text string) *Spec {
	t.Helper()
	s, err := parseSpecText(t, text)
	if err != nil {
		t.Fatalf("spec: %v\n%s", err, text)
	}
	return s
}

func TestSpecErrors(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"empty", "", "empty"},
		{"unknown spec key", "env: CartPole-v1\nmethod: grid\nparms: {}\n", "line 3: unknown key parms (spec keys: name, env, base,"},
		{"not a map", "- 1\n- 2\n", "line 1: cannot unmarshal !!seq into the spec (want key: value settings)"},
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
		{"unknown scheduler", "env: CartPole-v1\nmethod: grid\nscheduler: {name: hyperband}\n", `scheduler: name = "hyperband": want asha`},
		{"asha without rungs", "env: CartPole-v1\nmethod: grid\nscheduler: {name: asha}\n", "scheduler: min_steps = 0"},
		{"asha eta 1", "env: CartPole-v1\nmethod: grid\nscheduler: {name: asha, min_steps: 1000, eta: 1}\n", "scheduler: eta = 1: want 2..100"},
		{"asha unknown key", "env: CartPole-v1\nmethod: grid\nscheduler: {name: asha, min_step: 1000}\n", "unknown key min_step"},
		{"asha unknown mode", "env: CartPole-v1\nmethod: grid\nscheduler: {name: asha, min_steps: 1000, mode: halve}\n", `scheduler: mode = "halve": want promote`},
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
func trialConfig(t *testing.T, tr Trial) qfleet.Config {
	t.Helper()
	var cf qfleet.Config
	if err := qfleet.ParseConfig(tr.Config, tr.ID, &cf); err != nil {
		t.Fatalf("trial %s config: %v\n%s", tr.ID, err, tr.Config)
	}
	return cf
}

func TestGridExpansion(t *testing.T) {
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
	trials, err := s.Expand()
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
	again, err := mustSpec(t, spec).Expand()
	if err != nil {
		t.Fatal(err)
	}
	for i := range trials {
		if again[i].ID != trials[i].ID || again[i].Key != trials[i].Key || string(again[i].Config) != string(trials[i].Config) {
			t.Fatalf("trial %d differs between two expansions: %s/%s vs %s/%s", i, trials[i].ID, trials[i].Key, again[i].ID, again[i].Key)
		}
	}
	// A changed base changes every key (the runs differ).
	other, err := mustSpec(t, strings.Replace(spec, "batch_size: 64", "batch_size: 32", 1)).Expand()
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Key == trials[0].Key {
		t.Errorf("a changed base kept key %s", other[0].Key)
	}
	// No params: one trial per seed, the base config.
	plain, err := mustSpec(t, "env: Acrobot-v1\nmethod: grid\nseeds: [1, 2, 3]\n").Expand()
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
	s, err := ParseSpec([]byte(spec), "spec.yaml", dir, "spec")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := s.Expand()
	if err != nil || len(trials) != 1 {
		t.Fatalf("%d trials, %v", len(trials), err)
	}
	return trialConfig(t, trials[0])
}

func TestBaseFile(t *testing.T) {
	cf := oneTrialOverBase(t, "env: CartPole-v1\nseed: 9\nn_step: 5\nhttp: \"\"\nprogress: 2s\n", 0.9)
	if cf.Env != "CartPole-v1" || cf.Seed != 9 || cf.NStep != 5 || cf.Gamma != 0.9 {
		t.Errorf("env %s seed %d n_step %d gamma %v: want the base file's env, seed 9, n_step 5 and gamma 0.9", cf.Env, cf.Seed, cf.NStep, cf.Gamma)
	}
}

func TestRandomDraws(t *testing.T) {
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
	trials, err := s.Expand()
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
	again, _ := mustSpec(t, spec).Expand()
	for i := range trials {
		if again[i].Key != trials[i].Key {
			t.Fatalf("trial %d: key %s, then %s: the draws are not deterministic", i, trials[i].Key, again[i].Key)
		}
	}
	other, _ := mustSpec(t, strings.Replace(spec, "seed: 7", "seed: 8", 1)).Expand()
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
	few, err := mustSpec(t, "env: CartPole-v1\nmethod: random\ntrials: 10\nparams:\n  n_step: [1, 3]\n").Expand()
	if err != nil || len(few) != 2 {
		t.Errorf("10 draws of 2 points: %d trials (%v), want 2", len(few), err)
	}
}

// TestTrialKeysStable: a trial's id and key are a hash of its config; a
// change to the config a trial runs with (a default, a key added) changes
// them, and a sweep run again would rerun every finished trial. These are
// the keys of the sweeps of earlier versions.
func TestTrialKeysStable(t *testing.T) {
	for _, c := range []struct {
		spec string
		ids  []string
	}{
		{"env: CartPole-v1\nmethod: grid\nparams:\n  n_step: [1, 3]\nseeds: [1, 2]\n",
			[]string{"t000-5f8f83 5f8f8335812cab20", "t001-5e8f02 5e8f02babe9474eb", "t002-6bdc73 6bdc7352ed5868d3", "t003-26cb9d 26cb9d4ad8634dac"}},
		{"env: Acrobot-v1\nmethod: random\ntrials: 2\nseed: 3\nparams:\n  gamma: {uniform: [0.9, 0.99]}\nmax_time: 90s\nmax_steps: 20000\n",
			[]string{"t000-d5b2ce d5b2ce0a59b711dd", "t001-671e13 671e13447d080dc7"}},
	} {
		trials, err := mustSpec(t, c.spec).Expand()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range trials {
			got = append(got, tr.ID+" "+tr.Key)
		}
		if strings.Join(got, ", ") != strings.Join(c.ids, ", ") {
			t.Errorf("trials %v\nwant %v (the keys of earlier versions: a sweep would not resume)\n%s", got, c.ids, c.spec)
		}
	}
}
