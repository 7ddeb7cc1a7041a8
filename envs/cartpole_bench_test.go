package envs

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkCartPoleStep measures raw dynamics throughput: one Step per
// iteration, resetting whenever an episode ends (random policy, so episodes
// are short and Reset's cost shows up proportionally).
func BenchmarkCartPoleStep(b *testing.B) {
	c := NewCartPole()
	c.Reset(0)
	rng := rand.New(rand.NewPCG(1, 2))
	seed := int64(0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_, _, term, trunc := c.Step(int(rng.Uint32() & 1))
		if term || trunc {
			seed++
			c.Reset(seed)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkCartPoleStepNoReset isolates Step: the state is pinned upright so
// no episode ends (SetState is a 4-value copy).
func BenchmarkCartPoleStepNoReset(b *testing.B) {
	c := NewCartPole()
	c.Reset(0)
	upright := []float64{0, 0, 0, 0}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n%256 == 0 {
			_ = c.SetState(upright)
		}
		c.Step(n & 1)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkCartPoleStepCopy is what a caller pays to keep every observation
// (one 16-byte allocation and copy per step), for comparison with the
// zero-allocation Step.
func BenchmarkCartPoleStepCopy(b *testing.B) {
	c := NewCartPole()
	c.Reset(0)
	rng := rand.New(rand.NewPCG(1, 2))
	seed := int64(0)
	var keep []float32
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		obs, _, term, trunc := c.Step(int(rng.Uint32() & 1))
		keep = append([]float32(nil), obs...)
		if term || trunc {
			seed++
			c.Reset(seed)
		}
		n++
	}
	_ = keep
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkCartPoleReset measures seeding (SeedSequence + PCG64) per episode.
func BenchmarkCartPoleReset(b *testing.B) {
	c := NewCartPole()
	b.ReportAllocs()
	seed := int64(0)
	for b.Loop() {
		c.Reset(seed)
		seed++
	}
}

// BenchmarkCartPoleEpisode plays whole random-policy episodes through the Env
// interface, as a runner would (about 22 steps each).
func BenchmarkCartPoleEpisode(b *testing.B) {
	env, err := Make(CartPoleID)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b.ReportAllocs()
	steps, seed := 0, int64(0)
	for b.Loop() {
		env.Reset(seed)
		seed++
		for {
			_, _, term, trunc := env.Step(int(rng.Uint32() & 1))
			steps++
			if term || trunc {
				break
			}
		}
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(float64(steps)/float64(b.N), "steps/episode")
}
