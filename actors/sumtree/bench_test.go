package sumtree

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

const benchCapacity = 1 << 20

// benchTree is a full tree of benchCapacity slots with log-uniform
// priorities over two decades, built once and shared by the benchmarks.
var benchTree = sync.OnceValue(func() *Tree {
	rng := rand.New(rand.NewPCG(42, 42))
	tr := New(benchCapacity)
	for i := range benchCapacity {
		tr.Set(i, math.Pow(10, -1+2*rng.Float64()))
	}
	return tr
})

// benchPriorities is a table of priorities to Set, so that the benchmark
// measures the tree rather than the generator.
func benchPriorities() []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	ps := make([]float64, 4096)
	for i := range ps {
		ps[i] = math.Pow(10, -1+2*rng.Float64())
	}
	return ps
}

// BenchmarkSet measures inserts: "ring" overwrites slots in ring order as
// the replay does for new transitions; "random" writes random slots as the
// learner's priority updates do.
func BenchmarkSet(b *testing.B) {
	tr := benchTree()
	ps := benchPriorities()
	b.Run("ring", func(b *testing.B) {
		slot := 0
		for i := 0; b.Loop(); i++ {
			tr.Set(slot, ps[i&4095])
			slot++
			if slot == benchCapacity {
				slot = 0
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("random", func(b *testing.B) {
		// Fresh random slots (a PCG draw costs a few ns): a small table of
		// slots would keep their paths in cache and flatter the tree.
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; b.Loop(); i++ {
			tr.Set(int(rng.Uint64()&(benchCapacity-1)), ps[i&4095])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
}

// BenchmarkSampleStratified measures a batch; samples/s counts slots drawn.
func BenchmarkSampleStratified(b *testing.B) {
	tr := benchTree()
	for _, batch := range []int{128, 32} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, 6))
			out := make([]int, 0, batch)
			for b.Loop() {
				out = tr.SampleStratified(batch, rng, out)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkFind measures one descent for a uniform u in [0, Total).
func BenchmarkFind(b *testing.B) {
	tr := benchTree()
	rng := rand.New(rand.NewPCG(7, 8))
	total := tr.Total()
	sink := 0
	// Fresh u each call, as in sampling: a small table of u would keep
	// their paths in cache.
	for b.Loop() {
		sink += tr.Find(rng.Float64() * total)
	}
	if sink < 0 {
		b.Fatal(sink)
	}
}
