package qfleet_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/qfleet/qfleet"
)

// A run is its Config: every default for the env, then what this run
// changes.
func ExampleDefaultConfig() {
	cfg := qfleet.DefaultConfig("Acrobot-v1")
	cfg.Seed = 7
	cfg.Hidden = []int{128, 128}
	fmt.Println(cfg.Env, cfg.Seed, cfg.MaxSteps, cfg.Hidden, cfg.EpsilonDecaySteps)
	// Output: Acrobot-v1 7 500000 [128 128] 20000
}

// A config file is read strictly: a key that is not a setting, a value of
// the wrong kind or a fraction for a whole number is an error naming it.
func ExampleParseConfig() {
	cfg := qfleet.DefaultConfig("CartPole-v1")
	err := qfleet.ParseConfig([]byte("seed: 3\nbatch_sise: 64\n"), "run.yaml", &cfg)
	fmt.Println(err)
	err = qfleet.ParseConfig([]byte("seed: 3\nbatch_size: 64\n"), "run.yaml", &cfg)
	fmt.Println(err, cfg.Seed, cfg.BatchSize)
	// Output:
	// config run.yaml: line 2: batch_sise: field batch_sise not found
	// <nil> 3 64
}

// NewRun refuses a config that cannot run before anything starts, with a
// UsageError that names the setting.
func ExampleNewRun() {
	cfg := qfleet.DefaultConfig("CartPole-v1")
	cfg.BatchSize = 0
	_, err := qfleet.NewRun(cfg, qfleet.Options{})
	var ue qfleet.UsageError
	fmt.Println(errors.As(err, &ue), err)
	// Output: true invalid config: batch_size = 0: allowed 1..65536
}

// Dev trains with every role in this process and returns the run's
// summary; the run directory holds its config, curves and summary.
func ExampleRun_Dev() {
	dir, _ := os.MkdirTemp("", "qfleet-example-")
	defer os.RemoveAll(dir)
	cfg := qfleet.DefaultConfig("CartPole-v1")
	cfg.MaxSteps = 2_000
	cfg.RunDir = filepath.Join(dir, "run")
	cfg.Live = "never"
	run, err := qfleet.NewRun(cfg, qfleet.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := run.Dev(io.Discard, io.Discard) // the result line and progress
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, _ := qfleet.ReadScalars(filepath.Join(run.RunDir(), qfleet.RunScalarsFile))
	fmt.Println(sum.Env, sum.EnvSteps >= 2_000, len(recs) > 0)
	// Output: CartPole-v1 true true
}
