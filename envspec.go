package qfleet

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet/envs"
)

// An env of the user's own is known to nodes that do not run it (the
// learner's host, when the env lives on the runner hosts) by its env_spec:
// one line that the handshake of a node that does run it writes into its
// run's config.yaml, e.g.
//
//	obs=4 dtype=float32 actions=2 max_steps=500 threshold=475
//
// obs is the observation's shape (4, or 10x10x4), threshold "none" for an
// env without one.

// formatEnvSpec is spec's env_spec line.
func formatEnvSpec(spec envs.Spec) string {
	shape := make([]string, len(spec.ObsShape))
	for i, d := range spec.ObsShape {
		shape[i] = strconv.Itoa(d)
	}
	threshold := "none"
	if !math.IsInf(spec.RewardThreshold, 0) && !math.IsNaN(spec.RewardThreshold) {
		threshold = strconv.FormatFloat(spec.RewardThreshold, 'g', -1, 64)
	}
	return fmt.Sprintf("obs=%s dtype=%s actions=%d max_steps=%d threshold=%s",
		strings.Join(shape, "x"), spec.ObsDType, spec.NumActions, spec.MaxEpisodeSteps, threshold)
}

// parseEnvSpec reads an env_spec line for env id.
func parseEnvSpec(id, line string) (envs.Spec, error) {
	spec := envs.Spec{ID: id, RewardThreshold: math.Inf(1)}
	seen := map[string]bool{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return spec, fmt.Errorf("env_spec %q: %q: want key=value, each key once", line, f)
		}
		seen[k] = true
		var err error
		switch k {
		case "obs":
			for _, d := range strings.Split(v, "x") {
				n, e := strconv.Atoi(d)
				if e != nil || n < 1 || n > 1<<20 {
					err = fmt.Errorf("a dimension of %q", v)
					break
				}
				spec.ObsShape = append(spec.ObsShape, n)
			}
		case "dtype":
			spec.ObsDType, err = envs.ParseObsDType(v)
		case "actions":
			spec.NumActions, err = strconv.Atoi(v)
			if err == nil && (spec.NumActions < 1 || spec.NumActions > 1<<16) {
				err = fmt.Errorf("%d actions", spec.NumActions)
			}
		case "max_steps":
			spec.MaxEpisodeSteps, err = strconv.Atoi(v)
			if err == nil && spec.MaxEpisodeSteps < 0 {
				err = fmt.Errorf("max_steps %d", spec.MaxEpisodeSteps)
			}
		case "threshold":
			if v != "none" {
				spec.RewardThreshold, err = strconv.ParseFloat(v, 64)
				if err == nil && math.IsNaN(spec.RewardThreshold) {
					err = fmt.Errorf("threshold %s", v)
				}
			}
		default:
			err = fmt.Errorf("unknown key %q (obs, dtype, actions, max_steps, threshold)", k)
		}
		if err != nil {
			return spec, fmt.Errorf("env_spec %q: %v", line, err)
		}
	}
	if !seen["obs"] || !seen["actions"] {
		return spec, fmt.Errorf("env_spec %q: obs and actions are needed", line)
	}
	if n := spec.ObsSize(); n > 1<<24 {
		return spec, fmt.Errorf("env_spec %q: %d values an observation", line, n)
	}
	return spec, nil
}

// sameEnvSpec compares what the network and the replay depend on.
func sameEnvSpec(a, b envs.Spec) bool {
	return formatEnvSpec(a) == formatEnvSpec(b)
}
