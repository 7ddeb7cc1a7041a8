package qfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/external"
)

// externalEnvs remembers the external envs this process registered: by
// what serves them, so that a second run of the same env in one process (a
// program's own loop, the tests) reuses the registration; and which ids are
// known here by their env_spec only (this node cannot step them).
var externalEnvs = struct {
	sync.Mutex
	specs    map[string]envs.Spec
	specOnly map[string]bool
}{specs: map[string]envs.Spec{}, specOnly: map[string]bool{}}

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
// cf.Env then holds that id and cf.EnvSpec its spec line. Every vector made
// of it afterwards (each runner's, an evaluation's) starts processes, or
// opens a connection, of its own. With only cf.EnvSpec, the env is known
// here by that spec and cannot be stepped (a learner's node).
func useExternalEnv(cf *Config) error {
	if cf.EnvCommand == "" && cf.EnvAddress == "" {
		if cf.EnvSpec == "" {
			return nil
		}
		return useEnvSpecOnly(cf)
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
	spec, ok := externalEnvs.specs[key]
	if !ok {
		var err error
		if spec, err = registerExternal(o, cf.EnvAddress, max(cf.EnvWorkers, 1)); err != nil {
			return err
		}
		externalEnvs.specs[key] = spec
	}
	if cf.EnvSpec != "" {
		declared, err := parseEnvSpec(spec.ID, cf.EnvSpec)
		if err != nil {
			return err
		}
		if !sameEnvSpec(declared, spec) {
			return fmt.Errorf("env %s: its handshake says %q, env_spec says %q", spec.ID, formatEnvSpec(spec), cf.EnvSpec)
		}
	}
	cf.Env, cf.EnvSpec = spec.ID, formatEnvSpec(spec)
	return nil
}

// registerExternal learns the spec of the env o and address serve (one
// handshake) and registers it; each vector made of it later starts its own
// processes (workers of them at most) or opens its own connection.
func registerExternal(o external.Options, address string, workers int) (envs.Spec, error) {
	start := func(ctx context.Context, n int) (envs.VecEnv, error) {
		o := o
		o.Envs = n
		if address != "" {
			return external.Dial(ctx, address, o)
		}
		o.Workers = min(workers, n)
		return external.Start(ctx, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	probe, err := start(ctx, 1)
	if err != nil {
		return envs.Spec{}, err
	}
	spec := probe.Spec()
	if err := probe.Close(); err != nil {
		return envs.Spec{}, fmt.Errorf("external env %s: closing the probe: %w", spec.ID, err)
	}
	// SpecOf, not Make: making an env registered as a vector would start
	// its process only to learn the id is taken.
	if _, err := envs.SpecOf(spec.ID); err == nil {
		return envs.Spec{}, fmt.Errorf("the external env calls itself %s, an id taken already (a built-in env's, or another env's): name it with --env (env in a config)", spec.ID)
	}
	err = envs.RegisterVec(spec, func(n int) (envs.VecEnv, error) {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		return start(ctx, n)
	})
	if err != nil {
		return envs.Spec{}, fmt.Errorf("external env: %w", err)
	}
	return spec, nil
}

// useEnvSpecOnly registers cf.Env by its env_spec alone: a node that needs
// the env's spec but does not step it (the learner's, the env living on
// the runner hosts). Making a vector of it says so.
func useEnvSpecOnly(cf *Config) error {
	if cf.Env == DefaultEnv {
		return fmt.Errorf("env_spec without env_command or env_address: name the env with --env (the id its runner hosts give it)")
	}
	spec, err := parseEnvSpec(cf.Env, cf.EnvSpec)
	if err != nil {
		return err
	}
	externalEnvs.Lock()
	defer externalEnvs.Unlock()
	if have, err := envs.SpecOf(cf.Env); err == nil {
		if !sameEnvSpec(have, spec) {
			return fmt.Errorf("env %s is known here as %q, env_spec says %q", cf.Env, formatEnvSpec(have), cf.EnvSpec)
		}
		cf.EnvSpec = formatEnvSpec(spec)
		return nil
	}
	id := cf.Env
	err = envs.RegisterVec(spec, func(int) (envs.VecEnv, error) {
		return nil, fmt.Errorf("env %s is known on this node by its env_spec only: a node that steps it needs env_command or env_address", id)
	})
	if err != nil {
		return err
	}
	externalEnvs.specOnly[id] = true
	cf.EnvSpec = formatEnvSpec(spec)
	return nil
}

// checkEnvSteppable refuses, before anything starts, a node with runners
// whose env is known here by its env_spec only.
func checkEnvSteppable(id string, roles []string) error {
	externalEnvs.Lock()
	only := externalEnvs.specOnly[id]
	externalEnvs.Unlock()
	if only && slices.Contains(roles, actors.RoleRunner) {
		return fmt.Errorf("this node has runners, but env %s is known here by its env_spec only: give it env_command or env_address", id)
	}
	return nil
}
