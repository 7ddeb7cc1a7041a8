package qfleet_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster"
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
	const cartPoleSpec = "obs=4 dtype=float32 actions=2 max_steps=500 threshold=475"
	if saved.Env != "PyCartPole-v1" || !strings.Contains(saved.EnvCommand, "cartpole.py") || saved.EnvSpec != cartPoleSpec {
		t.Errorf("the run's config.yaml says env %q, env_command %q, env_spec %q", saved.Env, saved.EnvCommand, saved.EnvSpec)
	}
	// A node that does not run the env (a learner's, the env living on the
	// runner hosts) takes that config without the command: env_spec is
	// enough to check it and build its network; it refuses runners.
	learner := saved
	learner.Env, learner.EnvCommand, learner.RunDir = "PyCartPoleElsewhere-v1", "", filepath.Join(t.TempDir(), "learner")
	learner.TargetReturn = nil // the env's threshold, from its env_spec
	lr, err := qfleet.NewRun(learner, qfleet.Options{})
	if err != nil {
		t.Fatalf("a node with env_spec only: %v", err)
	}
	if got := lr.Effective(); got.EnvSpec != cartPoleSpec || got.TargetReturn == nil || *got.TargetReturn != 475 {
		t.Errorf("a node with env_spec only: env_spec %q, target %v", got.EnvSpec, got.TargetReturn)
	}
	if _, err := lr.Dev(io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "env_spec only") {
		t.Errorf("a dev run (runners) of an env known by its env_spec only: %v", err)
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

// TestExternalEnvAddressTLS: an env server already running (the Python
// CartPole with --listen and the node's certificate) is reached at
// env_address over TLS with the node's credentials (tls_cert, tls_key,
// tls_ca), and a short run trains on it.
func TestExternalEnvAddressTLS(t *testing.T) {
	py := testutil.Python(t)
	dir := t.TempDir()
	if _, err := cluster.GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	node, err := cluster.GenerateNodeCert(dir, "envhost", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("python/examples/cartpole.py")
	addr := testutil.FreeAddr(t)
	server := exec.Command(py, script, "--listen", addr, "--envs", "2", "--tls-cert", node.Cert, "--tls-key", node.Key)
	var serverOut testutil.SyncBuffer
	server.Stdout, server.Stderr = &serverOut, &serverOut
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("the env server is not listening yet: %v\n%s", err, serverOut.String())
		}
		return c.Close()
	})
	cf := qfleet.DefaultConfig(qfleet.DefaultEnv)
	cf.Env, cf.EnvAddress = "TLSCartPole-v1", addr
	cf.TLSCert, cf.TLSKey, cf.TLSCA = node.Cert, node.Key, filepath.Join(dir, cluster.CACertFile)
	cf.MaxSteps, cf.RunDir, cf.Live = 1_500, filepath.Join(dir, "run"), "never"
	cf.EnvsPerRunner = 2
	run, err := qfleet.NewRun(cf, qfleet.Options{})
	if err != nil {
		t.Fatalf("%v\nserver:\n%s", err, serverOut.String())
	}
	var stderr bytes.Buffer
	sum, err := run.Dev(io.Discard, &stderr)
	if err != nil || sum.EnvSteps < 1_500 || sum.Env != "TLSCartPole-v1" {
		t.Fatalf("run over TLS: %v, %+v\n%s\nserver:\n%s", err, sum, stderr.String(), serverOut.String())
	}
	// Without the credentials the same server is not reached.
	cf.Env, cf.TLSCert, cf.TLSKey, cf.TLSCA = "PlainCartPole-v1", "", "", ""
	if _, err := qfleet.NewRun(cf, qfleet.Options{}); err == nil {
		t.Error("a plaintext client was served by the TLS env server")
	}
}

// TestExternalEnvResume: a run of an external env continues from its
// checkpoint when started again with its own config.yaml and --resume: the
// env is started again from the config, and the env steps go on from where
// the first run ended.
func TestExternalEnvResume(t *testing.T) {
	py := testutil.Python(t)
	script, _ := filepath.Abs("python/examples/cartpole.py")
	cf := qfleet.DefaultConfig(qfleet.DefaultEnv)
	cf.Env, cf.EnvCommand = "ResumeCartPole-v1", py+" "+script
	cf.MaxSteps, cf.RunDir, cf.Live = 2_000, filepath.Join(t.TempDir(), "run"), "never"
	run, err := qfleet.NewRun(cf, qfleet.Options{Checkpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := run.Dev(io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var again qfleet.Config
	if err := qfleet.LoadConfig(filepath.Join(cf.RunDir, qfleet.RunConfigFile), &again); err != nil {
		t.Fatal(err)
	}
	again.MaxSteps = first.EnvSteps + 2_000
	resumed, err := qfleet.NewRun(again, qfleet.Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	second, err := resumed.Dev(io.Discard, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if second.Env != "ResumeCartPole-v1" || second.EnvSteps < first.EnvSteps+2_000 || second.LearnerUpdates <= first.LearnerUpdates {
		t.Errorf("resumed run: env %q, %d env steps and %d updates after %d and %d\n%s",
			second.Env, second.EnvSteps, second.LearnerUpdates, first.EnvSteps, first.LearnerUpdates, stderr.String())
	}
}
