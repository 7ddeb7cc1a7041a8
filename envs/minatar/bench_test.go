package minatar

import (
	"maps"
	"slices"
	"testing"
)

// BenchmarkEnvStep measures env steps per second for every registered game
// (-v0), with uniform random actions over the full set, sticky actions and
// ramping on, resetting at termination (resets are part of the cost, as in
// a runner). Keep runs short on shared machines:
//
//	go test ./envs/minatar/ -run '^$' -bench EnvStep -count 3 -benchtime 200ms
func BenchmarkEnvStep(b *testing.B) {
	for _, name := range slices.Sorted(maps.Keys(games)) {
		b.Run(name, func(b *testing.B) { benchEnvStep(b, "MinAtar/"+name+"-v0") })
	}
}

// benchEnvStep measures Env.Step of env id (observation included) with
// pseudo-random actions over the full set, sticky actions and ramping on,
// resetting at termination.
func benchEnvStep(b *testing.B, id string) {
	env, err := New(id)
	if err != nil {
		b.Fatal(err)
	}
	env.Reset(1)
	a := uint64(12345)
	episodes := int64(1)
	b.ReportAllocs()
	for b.Loop() {
		a = a*6364136223846793005 + 1442695040888963407
		if _, _, term, _ := env.Step(int((a >> 33) % 6)); term {
			episodes++
			env.Reset(episodes)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}
