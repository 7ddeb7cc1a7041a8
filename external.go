package qfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/external"
)

// externalEnvs remembers the external envs this process registered, by
// what serves them, so that a second run of the same env in one process (a
// program's own loop, the tests) reuses the registration.
var externalEnvs = struct {
	sync.Mutex
	ids map[string]string
}{ids: map[string]string{}}

// envOutput is where the lines external env processes print go: the
// stderr of the run in progress (Dev and Node set it), os.Stderr before one.
var envOutput = &switchWriter{w: os.Stderr}

// switchWriter is an io.Writer whose destination can change while envs
// started earlier keep writing to it.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// probeTimeout bounds the handshake that learns an external env's spec.
const probeTimeout = 60 * time.Second

// UseExternalEnv registers the env cf.EnvCommand or cf.EnvAddress names
// (see NewRun, which calls it) and points cf.Env at its id, for a program
// that needs the env's spec before a run: a sweep checking its trials.
// Nothing happens when cf names no external env.
func UseExternalEnv(cf *Config) error { return useExternalEnv(cf) }

// useExternalEnv makes the env that cf.EnvCommand or cf.EnvAddress serves
// the run's env: one handshake (a vector of one env, closed again) gives
// its spec, which is registered (envs.RegisterVec) under the id the env
// gives, or under cf.Env when that names another env than the default;
// cf.Env then holds that id. Every vector made of it afterwards (each
// runner's, an evaluation's) starts processes, or opens a connection, of
// its own.
func useExternalEnv(cf *Config) error {
	if cf.EnvCommand == "" && cf.EnvAddress == "" {
		return nil
	}
	if cf.EnvCommand != "" && cf.EnvAddress != "" {
		return errors.New("env_command and env_address both given: an env comes from one of them")
	}
	if cf.EnvWorkers < 0 {
		return fmt.Errorf("env_workers = %d: want 1 or more (0: 1)", cf.EnvWorkers)
	}
	o := external.Options{Command: cf.EnvCommand, Stderr: envOutput}
	if cf.Env != DefaultEnv {
		o.ID = cf.Env
	}
	if cf.EnvAddress != "" && cf.TLSCert != "" {
		// An env server on another host is reached as the node reaches its
		// peers: with its certificate, trusting the cluster's CA.
		creds, err := cluster.LoadTLS(cf.TLSCert, cf.TLSKey, cf.TLSCA)
		if err != nil {
			return fmt.Errorf("env_address: %w", err)
		}
		o.TLS = creds.Client.Clone()
	}
	key := fmt.Sprintf("%q %q %q %d %q", cf.EnvCommand, cf.EnvAddress, o.ID, cf.EnvWorkers, cf.TLSCert)
	externalEnvs.Lock()
	defer externalEnvs.Unlock()
	if id, ok := externalEnvs.ids[key]; ok {
		cf.Env = id
		return nil
	}
	workers := max(cf.EnvWorkers, 1)
	start := func(ctx context.Context, n int) (envs.VecEnv, error) {
		o := o
		o.Envs = n
		if cf.EnvAddress != "" {
			return external.Dial(ctx, cf.EnvAddress, o)
		}
		o.Workers = min(workers, n)
		return external.Start(ctx, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	probe, err := start(ctx, 1)
	if err != nil {
		return err
	}
	spec := probe.Spec()
	if err := probe.Close(); err != nil {
		return fmt.Errorf("external env %s: closing the probe: %w", spec.ID, err)
	}
	if _, err := envs.Make(spec.ID); err == nil {
		return fmt.Errorf("the external env calls itself %s, the id of a built-in env: name it with --env (env in a config)", spec.ID)
	}
	err = envs.RegisterVec(spec, func(n int) (envs.VecEnv, error) {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		return start(ctx, n)
	})
	if err != nil {
		return fmt.Errorf("external env: %w", err)
	}
	externalEnvs.ids[key] = spec.ID
	cf.Env = spec.ID
	return nil
}
