package qfleet_test

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/internal/testutil"
)

// TestExternalEnvTrains: a run of the Python CartPole (python/examples,
// Gymnasium's API without Gymnasium) through env_command learns as a run
// of the built-in one does: mean100 ≥ 150 within 80,000 env steps, the env
// named by the run (the Python env calls itself CartPole-v1, a built-in
// id), four envs per runner in one worker process.
func TestExternalEnvTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("a learning run")
	}
	py := testutil.Python(t)
	script, err := filepath.Abs("python/examples/cartpole.py")
	if err != nil {
		t.Fatal(err)
	}
	cf := qfleet.DefaultConfig(qfleet.DefaultEnv)
	cf.Env, cf.EnvCommand = "PyCartPole-v1", py+" "+script
	cf.EnvsPerRunner = 4
	target := 150.0
	cf.TargetReturn, cf.MaxSteps = &target, 80_000
	cf.RunDir, cf.Live = filepath.Join(t.TempDir(), "run"), "never"
	run, err := qfleet.NewRun(cf, qfleet.Options{Checkpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	sum, err := run.Dev(io.Discard, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Logf("%+v", sum)
	if !sum.Solved || sum.Env != "PyCartPole-v1" {
		t.Fatalf("external CartPole: solved %v (mean100 %v at %d env steps), env %q; want mean100 >= %v within %d steps\n%s",
			sum.Solved, sum.MeanReturn100, sum.EnvSteps, sum.Env, target, cf.MaxSteps, stderr.String())
	}
	// Its config names the env and the command, so that the run can be
	// resumed or evaluated from its directory alone.
	var saved qfleet.Config
	if err := qfleet.LoadConfig(filepath.Join(cf.RunDir, qfleet.RunConfigFile), &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Env != "PyCartPole-v1" || !strings.Contains(saved.EnvCommand, "cartpole.py") {
		t.Errorf("the run's config.yaml says env %q, env_command %q", saved.Env, saved.EnvCommand)
	}
	// qfleet eval of the run directory starts the env again and plays it.
	pol, err := qfleet.LoadPolicy(cf.RunDir, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	res := pol.Evaluate(qfleet.EvalOptions{Episodes: 3, Seed: 7})
	if res.Error != "" || len(res.Episodes) != 3 || res.Env != "PyCartPole-v1" || !(res.MeanReturn > 20) {
		t.Errorf("evaluation of the external env: %d episodes, mean return %v, env %q, error %q", len(res.Episodes), res.MeanReturn, res.Env, res.Error)
	}
}

// TestExternalEnvRefused: a Python env that calls itself by a built-in id
// must be named, and a command that is not there says so.
func TestExternalEnvRefused(t *testing.T) {
	py := testutil.Python(t)
	script, _ := filepath.Abs("python/examples/cartpole.py")
	cf := qfleet.DefaultConfig(qfleet.DefaultEnv)
	cf.EnvCommand = py + " " + script
	if _, err := qfleet.NewRun(cf, qfleet.Options{}); err == nil || !strings.Contains(err.Error(), "name it with --env") {
		t.Errorf("an external env called CartPole-v1: %v", err)
	}
	cf.EnvCommand = "/nonexistent/env-server"
	if _, err := qfleet.NewRun(cf, qfleet.Options{}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("a missing env command: %v", err)
	}
	cf.EnvCommand, cf.EnvAddress = py+" "+script, "127.0.0.1:1"
	if _, err := qfleet.NewRun(cf, qfleet.Options{}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("env_command and env_address: %v", err)
	}
}

// TestExternalEnvFailingEndsRun: an env that fails on every start uses up
// its runner's restart budget; the run then ends by itself, non-zero, with
// the env's own error, instead of waiting for experience that cannot come.
func TestExternalEnvFailingEndsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the restart budget's back-off (~30 s)")
	}
	py := testutil.Python(t)
	script, _ := filepath.Abs("actors/testdata/flaky_env.py")
	cf := qfleet.DefaultConfig(qfleet.DefaultEnv)
	cf.EnvCommand = py + " " + script + " 0" // raises at its first step
	cf.RunDir, cf.Live, cf.MaxTime = filepath.Join(t.TempDir(), "run"), "never", "2m"
	run, err := qfleet.NewRun(cf, qfleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	_, err = run.Dev(io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "every runner of this node stopped for good") || !strings.Contains(err.Error(), "boom after 0 steps") {
		t.Fatalf("run of an env failing at every start: %v\n%s", err, stderr.String())
	}
	// The env process's own lines (its traceback) went to the run's stderr.
	if !strings.Contains(stderr.String(), "env worker 0: ValueError: flaky env: boom after 0 steps") {
		t.Errorf("the env's traceback is not in the run's stderr:\n%s", stderr.String())
	}
}
