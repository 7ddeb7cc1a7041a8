package envs

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMountainCarStep measures raw dynamics throughput: one Step per
// iteration, random policy, resetting whenever an episode ends (every 200
// steps: a random policy never reaches the goal).
func BenchmarkMountainCarStep(b *testing.B) {
	c := NewMountainCar()
	c.Reset(0)
	rng := rand.New(rand.NewPCG(1, 2))
	seed := int64(0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_, _, term, trunc := c.Step(int(rng.Uint32N(3)))
		if term || trunc {
			seed++
			c.Reset(seed)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}
