package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// cartPole is the benchmark network: CartPole's 4 observations, two hidden layers of 64, 2 actions.
var cartPole = Spec{Inputs: 4, Hidden: []int{64, 64}, Outputs: 2}

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
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			cfg := DefaultTrainConfig()
			cfg.BatchSize = n
			tr, err := NewTrainer(cartPole, cfg, InitParams(cartPole, rng))
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			batches := make([]*Batch, 8)
			for i := range batches {
				batches[i] = randomBatch(cartPole, n, rng)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				st, err := tr.Update(batches[i%len(batches)])
				if err != nil {
					b.Fatal(err)
				}
				sinkStats = st
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkForward measures the runner's single-observation greedy action.
func BenchmarkForward(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := NewForward(cartPole)
	if err := f.SetParams(InitParams(cartPole, rng)); err != nil {
		b.Fatal(err)
	}
	obs := make([]float32, 64*cartPole.Inputs)
	for i := range obs {
		obs[i] = float32(rng.NormFloat64())
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % 64
		sinkInt = f.Greedy(obs[j*cartPole.Inputs : (j+1)*cartPole.Inputs])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}
