package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// cartPole is the benchmark network: CartPole's 4 observations, two hidden layers of 64, 2 actions.
var cartPole = Spec{Inputs: 4, Hidden: []int{64, 64}, Outputs: 2}

// reportRate reports the benchmark's rate per wall-clock second as "<unit>/s" and per second
// of the process's CPU time (GC included) as "<unit>/cpu-s", cpu0 being processCPU() before
// the loop. On a machine shared with other work the CPU-time rate is the steadier of the two:
// time slices lost to other processes do not count.
func reportRate(b *testing.B, cpu0 time.Duration, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
	}
}

// Package-level sinks keep the compiler from discarding benchmarked results.
var (
	sinkStats UpdateStats
	sinkInt   int
)

// randomBatch fills a batch with uniform observations, random actions and rewards, and 10%
// terminals.
func randomBatch(s Spec, n int, rng *rand.Rand) *Batch {
	b := &Batch{
		Size:      n,
		Obs:       make([]float32, n*s.Inputs),
		Actions:   make([]int32, n),
		Rewards:   make([]float32, n),
		Discounts: make([]float32, n),
		NextObs:   make([]float32, n*s.Inputs),
	}
	for i := range b.Obs {
		b.Obs[i] = float32(rng.NormFloat64())
		b.NextObs[i] = float32(rng.NormFloat64())
	}
	for i := range n {
		b.Actions[i] = int32(rng.IntN(s.Outputs))
		b.Rewards[i] = float32(rng.NormFloat64())
		b.Discounts[i] = 0.99
		if rng.IntN(10) == 0 {
			b.Discounts[i] = 0
		}
	}
	return b
}

// BenchmarkLearnerUpdate measures whole DQN updates (targets, forward, backward, clip, Adam)
// on the CartPole net with double DQN.
func BenchmarkLearnerUpdate(b *testing.B) {
	for _, n := range []int{32, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchUpdate(b, cartPole, n, false) })
	}
}

// BenchmarkLearnerUpdateLayerNorm is BenchmarkLearnerUpdate with Spec.LayerNorm: the cost of
// normalizing both hidden layers in the forward, the backward and the two target passes.
func BenchmarkLearnerUpdateLayerNorm(b *testing.B) {
	for _, n := range []int{32, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchUpdate(b, withLN(cartPole), n, false) })
	}
}

// BenchmarkLearnerUpdateMinAtar is BenchmarkLearnerUpdate for the MinAtar paper's network
// (10×10×4 → conv 16@3×3 → 128 → 6) on sparse 0/1 observations, double DQN.
func BenchmarkLearnerUpdateMinAtar(b *testing.B) {
	for _, n := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchUpdate(b, minAtar, n, true) })
	}
}

// BenchmarkLearnerUpdateMinAtarLayerNorm is BenchmarkLearnerUpdateMinAtar with Spec.LayerNorm
// (on the conv per position over its 16 filters, and on the 128-wide layer).
func BenchmarkLearnerUpdateMinAtarLayerNorm(b *testing.B) {
	for _, n := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchUpdate(b, withLN(minAtar), n, true) })
	}
}

// BenchmarkLearnerUpdateMinAtarDueling is BenchmarkLearnerUpdateMinAtar with the dueling head.
func BenchmarkLearnerUpdateMinAtarDueling(b *testing.B) {
	for _, n := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchUpdate(b, withDueling(minAtar), n, true) })
	}
}

// BenchmarkLearnerUpdateNature is BenchmarkLearnerUpdate for the Nature DQN network
// (84×84×4 → 32@8×8/4 → 64@4×4/2 → 64@3×3 → 512 → A, input/255) on 0..255 pixels, double
// DQN, batch 32, with 2 and 6 actions.
func BenchmarkLearnerUpdateNature(b *testing.B) {
	for _, a := range []int{2, 6} {
		b.Run(fmt.Sprintf("actions=%d/batch=32", a), func(b *testing.B) {
			benchUpdate(b, NatureSpec(84, 84, 4, a), 32, false)
		})
	}
}

func benchUpdate(b *testing.B, s Spec, n int, sparse bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = n
	tr, err := NewTrainer(s, cfg, InitParams(s, rng))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	batches := make([]*Batch, 8)
	for i := range batches {
		batches[i] = randomBatch(s, n, rng)
		if s.InputScale != 0 { // pixels
			copy(batches[i].Obs, natureObs(rng, s, n))
			copy(batches[i].NextObs, natureObs(rng, s, n))
		}
		if sparse {
			copy(batches[i].Obs, minAtarObs(rng, s, n))
			copy(batches[i].NextObs, minAtarObs(rng, s, n))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		st, err := tr.Update(batches[i%len(batches)])
		if err != nil {
			b.Fatal(err)
		}
		sinkStats = st
	}
	reportRate(b, cpu0, "updates")
}

// BenchmarkForward measures the runner's single-observation greedy action.
func BenchmarkForward(b *testing.B) { benchForward(b, cartPole) }

// BenchmarkForwardLayerNorm is BenchmarkForward with Spec.LayerNorm.
func BenchmarkForwardLayerNorm(b *testing.B) { benchForward(b, withLN(cartPole)) }

func benchForward(b *testing.B, s Spec) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := NewForward(s)
	if err := f.SetParams(InitParams(s, rng)); err != nil {
		b.Fatal(err)
	}
	obs := make([]float32, 64*s.Inputs)
	for i := range obs {
		obs[i] = float32(rng.NormFloat64())
	}
	benchGreedy(b, f, obs, s.Inputs)
}

// BenchmarkForwardMinAtar measures the runner's greedy action for the MinAtar network, on
// sparse 0/1 observations (one cell in eight set, like MinAtar's object channels) and on dense
// Gaussian ones (the cost when nothing can be skipped), with and without the dueling head.
func BenchmarkForwardMinAtar(b *testing.B) {
	for _, dueling := range []bool{false, true} {
		for _, sparse := range []bool{true, false} {
			name := fmt.Sprintf("dueling=%v/obs=dense", dueling)
			if sparse {
				name = fmt.Sprintf("dueling=%v/obs=sparse", dueling)
			}
			b.Run(name, func(b *testing.B) {
				s := minAtar
				if dueling {
					s = withDueling(s)
				}
				rng := rand.New(rand.NewPCG(3, 4))
				f := NewForward(s)
				if err := f.SetParams(InitParams(s, rng)); err != nil {
					b.Fatal(err)
				}
				obs := minAtarObs(rng, s, 64)
				if !sparse {
					for i := range obs {
						obs[i] = float32(rng.NormFloat64())
					}
				}
				benchGreedy(b, f, obs, s.Inputs)
			})
		}
	}
}

// BenchmarkForwardNature measures the runner's greedy action for the Nature network on one
// observation of 0..255 pixels (Greedy), and for a vector of n envs at once (GreedyBatch), in
// observations per second.
func BenchmarkForwardNature(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			f := NewForward(nature)
			if err := f.SetParams(InitParams(nature, rng)); err != nil {
				b.Fatal(err)
			}
			obs := natureObs(rng, nature, n)
			acts := make([]int32, n)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				f.GreedyBatch(obs, n, acts) // n = 1: Greedy
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "steps/s")
			if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
				b.ReportMetric(float64(b.N*n)/cpu.Seconds(), "steps/cpu-s")
			}
		})
	}
}

// benchGreedy measures f.Greedy over the 64 observations in obs (inputs
// floats each), in turn: the runner's forward pass per env step.
func benchGreedy(b *testing.B, f *Forward, obs []float32, inputs int) {
	b.ReportAllocs()
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		j := i % 64
		sinkInt = f.Greedy(obs[j*inputs : (j+1)*inputs])
	}
	reportRate(b, cpu0, "steps")
}
