package sweep

import (
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/hostile"
)

// fuzzSpecBase is a base config file next to the fuzzed specs
// ("base: base.yaml").
const fuzzSpecBase = "batch_size: 32\nmin_replay_size: 100\nhidden: [16]\n"

// fuzzSpecExpandMax bounds the trials a fuzzed spec is expanded into: each
// trial resolves and validates a whole config (about 0.3 ms).
const fuzzSpecExpandMax = 8

// FuzzParseSweepSpec: any bytes as SPEC.yaml give a spec or a one-line error
// naming the spec, never a panic. A spec that parses has an env, a method
// and distinct seeds; it expands into at most maxTrials trials or says
// it is too large (before building any), and its trials have distinct ids
// and keys, and configs that 'qfleet dev --config' reads back to the same
// key (what a resumed sweep and a trial run alone rely on).
func FuzzParseSweepSpec(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(fuzzSpecBase), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fuzzSpecReadsOutside(data) {
			t.Skip("base names a file outside the fuzz directory")
		}
		s, err := ParseSpec(data, "fuzz.yaml", dir, "fuzz")
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "spec fuzz.yaml: ") {
				t.Fatalf("error not one line naming the spec: %q", msg)
			}
			return
		}
		if s.Env == "" || (s.Method != "grid" && s.Method != "random") || len(s.Seeds) == 0 {
			t.Fatalf("parsed spec without env, method or seeds: %+v", s)
		}
		for i, a := range s.Seeds {
			for _, b := range s.Seeds[:i] {
				if a == b {
					t.Fatalf("seed %d twice", a)
				}
			}
		}
		// The number of trials before duplicates, without overflow.
		n := big.NewInt(int64(len(s.Seeds)))
		if s.Method == "grid" {
			for _, p := range s.Params {
				n.Mul(n, big.NewInt(int64(len(p.Values))))
			}
		} else {
			n.Mul(n, big.NewInt(int64(s.Trials)))
		}
		switch {
		case n.Cmp(big.NewInt(maxTrials)) > 0:
			if trials, err := s.Expand(); err == nil {
				t.Fatalf("%v trials (more than %d) expanded into %d", n, maxTrials, len(trials))
			}
			return
		case n.Cmp(big.NewInt(fuzzSpecExpandMax)) > 0:
			return
		}
		trials, err := s.Expand()
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("expand: error spans lines: %q", err)
			}
			return
		}
		if len(trials) == 0 || int64(len(trials)) > n.Int64() {
			t.Fatalf("%d trials from %v points × seeds", len(trials), n)
		}
		ids, keys := map[string]bool{}, map[string]bool{}
		for i, tr := range trials {
			if tr.Index != i || ids[tr.ID] || keys[tr.Key] {
				t.Fatalf("trial %d: index %d, id %s, key %s (repeated?)", i, tr.Index, tr.ID, tr.Key)
			}
			ids[tr.ID], keys[tr.Key] = true, true
			cf := qfleet.Config{Config: actors.DefaultConfigFor(s.Env)}
			if err := qfleet.ParseConfig(tr.Config, tr.ID, &cf); err != nil {
				t.Fatalf("trial %s: its config does not parse: %v\n%s", tr.ID, err, tr.Config)
			}
			if err := cf.Config.Validate(); err != nil {
				t.Fatalf("trial %s: its config does not validate: %v\n%s", tr.ID, err, tr.Config)
			}
			if key, err := trialKey(cf, s.MaxTime); err != nil || key != tr.Key {
				t.Fatalf("trial %s: its config file reads back with key %s (%v), want %s\n%s", tr.ID, key, err, tr.Key, tr.Config)
			}
		}
	})
}

// fuzzSpecReadsOutside reports whether a spec's base is a file name with a
// directory in it: the parser would read that file (an absolute path, or
// one relative to the fuzz directory such as ../../dev/zero, which never
// ends), which is the user's to choose, not the fuzzer's.
func fuzzSpecReadsOutside(data []byte) bool {
	var sf struct {
		Base yaml.Node `yaml:"base"`
	}
	if yaml.Unmarshal(data, &sf) != nil {
		return false
	}
	return sf.Base.Kind == yaml.ScalarNode && strings.ContainsAny(sf.Base.Value, `/\`)
}

// fuzzSpecSeeds are the committed corpus of FuzzParseSweepSpec: the specs
// of the docs and tests, each method and distribution, and limits.
func fuzzSpecSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	for name, spec := range map[string]string{
		"grid": "name: lr\nenv: CartPole-v1\nbase:\n  batch_size: 64\n  min_replay_size: 500\nmethod: grid\n" +
			"params:\n  learning_rate: [0.0005, 0.001]\n  hidden: [[64, 64], [128]]\nseeds: [1, 2]\nmax_steps: 20000\nmax_time: 90s\n",
		"random": "env: CartPole-v1\nmethod: random\ntrials: 3\nseed: 7\nparams:\n  learning_rate: {log_uniform: [0.0001, 0.01]}\n" +
			"  gamma: {uniform: [0.9, 0.999]}\n  batch_size: {int_uniform: [32, 128]}\n  n_step: {values: [1, 3]}\ntarget_return: 150\n",
		"base-file":        "env: CartPole-v1\nmethod: grid\nbase: base.yaml\nparams:\n  gamma: [0.9, 0.99]\n",
		"base-env":         "method: grid\nbase:\n  env: Acrobot-v1\n  seed: 4\n",
		"minatar":          "env: MinAtar/Breakout-v1\nmethod: grid\nparams:\n  conv_filters: [8, 16]\n",
		"one-value":        "env: CartPole-v1\nmethod: grid\nparams:\n  gamma: 0.95\n  prioritized: true\n",
		"grid-too-large":   "env: CartPole-v1\nmethod: grid\nparams:\n  batch_size: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22]\n  n_step: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22]\n  runners: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22]\n",
		"random-too-many":  "env: CartPole-v1\nmethod: random\ntrials: 4611686018427387904\nseeds: [1, 2, 3, 4]\n",
		"int-uniform-wide": "env: CartPole-v1\nmethod: random\ntrials: 2\nparams:\n  epsilon_decay_steps: {int_uniform: [0, 1000000000000]}\n",
		"aliases":          "env: CartPole-v1\nmethod: grid\nx: &a [0.9]\nparams:\n  gamma: *a\n",
		"empty":            "",
		"not-a-map":        "- 1\n- 2\n",
	} {
		seeds[name] = hostile.CorpusEntry([]byte(spec))
	}
	return seeds
}

func TestFuzzParseSweepSpecCorpus(t *testing.T) {
	hostile.CheckCorpus(t, "FuzzParseSweepSpec", fuzzSpecSeeds())
}
