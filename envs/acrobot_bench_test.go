package envs

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAcrobotStep measures raw dynamics throughput: one Step (an RK4
// step: four _dsdt evaluations, ~30 sin/cos) per iteration, random policy,
// resetting whenever an episode ends (rarely: random episodes mostly run to
// the 500-step limit).
func BenchmarkAcrobotStep(b *testing.B) {
	a := NewAcrobot()
	a.Reset(0)
	rng := rand.New(rand.NewPCG(1, 2))
	seed := int64(0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_, _, term, trunc := a.Step(int(rng.Uint32N(3)))
		if term || trunc {
			seed++
			a.Reset(seed)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkAcrobotReset measures seeding (SeedSequence + PCG64) plus the
// float32 sin/cos of the first observation.
func BenchmarkAcrobotReset(b *testing.B) {
	a := NewAcrobot()
	b.ReportAllocs()
	seed := int64(0)
	for b.Loop() {
		a.Reset(seed)
		seed++
	}
}
