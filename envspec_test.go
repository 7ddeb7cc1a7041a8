package qfleet

import (
	"math"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/envs"
)

func TestEnvSpecLine(t *testing.T) {
	for _, spec := range []envs.Spec{
		envs.NewCartPole().Spec(),
		{ID: "x", ObsShape: []int{10, 10, 4}, ObsDType: envs.Binary, NumActions: 6, RewardThreshold: math.Inf(1)},
		{ID: "x", ObsShape: []int{84, 84, 4}, ObsDType: envs.Uint8, NumActions: 18, MaxEpisodeSteps: 27000, RewardThreshold: -12.5},
	} {
		line := formatEnvSpec(spec)
		got, err := parseEnvSpec(spec.ID, line)
		if err != nil || !sameEnvSpec(got, spec) || got.ObsSize() != spec.ObsSize() {
			t.Errorf("%q: read back as %+v, %v; want %+v", line, got, err, spec)
		}
	}
	if got := formatEnvSpec(envs.NewCartPole().Spec()); got != "obs=4 dtype=float32 actions=2 max_steps=500 threshold=475" {
		t.Errorf("CartPole's line: %q", got)
	}
	for line, want := range map[string]string{
		"obs=4":                         "obs and actions are needed",
		"obs=4 actions=2 color=red":     "unknown key",
		"obs=4x0 actions=2":             "dimension",
		"obs=4 actions=0":               "0 actions",
		"obs=4 actions=2 dtype=int8":    "int8",
		"obs=4 actions=2 threshold=NaN": "threshold",
		"obs=4 obs=5 actions=2":         "each key once",
		"obs=4096x4096x4096 actions=2":  "values an observation",
	} {
		if _, err := parseEnvSpec("x", line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", line, err, want)
		}
	}
}
