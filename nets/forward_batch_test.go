package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// batchSpecs are GreedyBatch's test shapes: the CartPole MLP, a dueling MLP and every conv
// shape of the forward-pass tests (MinAtar with and without the dueling head among them).
var batchSpecs = append([]Spec{cartPole, withDueling(cartPole)}, convSpecs...)

// TestGreedyBatchMatchesGreedy: row i of QBatch is Q of observation i to float32 rounding,
// and GreedyBatch picks Greedy's action for every row whose best two Q-values are further
// apart than that rounding, for vectors of 1 to 67 observations (full 4-row blocks of the
// kernel and a tail), dense and sparse observations, on the kernel and on its fallback.
func TestGreedyBatchMatchesGreedy(t *testing.T) {
	for _, kernel := range []bool{true, false} {
		saved := useKernel
		useKernel = kernel && haveKernel && !useOpenBLAS
		t.Run(fmt.Sprintf("kernel=%v", useKernel), testGreedyBatch)
		useKernel = saved
	}
}

func testGreedyBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, s := range batchSpecs {
		for _, sparse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/sparse=%v", s, sparse), func(t *testing.T) {
				f := NewForward(s)
				if err := f.SetParams(InitParams(s, rng)); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 2, 5, 8, 67} {
					obs := testObs(rng, s, n, sparse)
					q := slices.Clone(f.QBatch(obs, n))
					acts := make([]int32, n)
					f.GreedyBatch(obs, n, acts)
					checkRows(t, f, obs, n, q, acts)
				}
			})
		}
	}
}

// checkRows compares QBatch's q and GreedyBatch's acts with Q and Greedy row by row.
func checkRows(t *testing.T, f *Forward, obs []float32, n int, q []float32, acts []int32) {
	t.Helper()
	k, in := f.spec.Outputs, f.spec.Inputs
	for i := range n {
		o := obs[i*in : (i+1)*in]
		want := slices.Clone(f.Q(o))
		scale := 1.0
		for _, v := range want {
			scale = max(scale, math.Abs(float64(v)))
		}
		tol := 1e-5 * scale
		for j := range k {
			if d := math.Abs(float64(q[i*k+j] - want[j])); d > tol {
				t.Fatalf("n=%d row %d: QBatch %v, Q %v", n, i, q[i*k:(i+1)*k], want)
			}
		}
		g := f.Greedy(o)
		if int(acts[i]) == g {
			continue
		}
		if margin := float64(want[g] - want[acts[i]]); margin > 2*tol {
			t.Fatalf("n=%d row %d: GreedyBatch %d, Greedy %d, Q %v", n, i, acts[i], g, want)
		}
	}
}

func testObs(rng *rand.Rand, s Spec, n int, sparse bool) []float32 {
	obs := make([]float32, n*s.Inputs)
	for i := range obs {
		switch {
		case !sparse:
			obs[i] = float32(2 * rng.NormFloat64())
		case rng.IntN(8) == 0:
			obs[i] = 1
		}
	}
	return obs
}

// New parameters reach the batched pass (it keeps them in its own layout), and exact ties
// (all-zero parameters) break to the lowest action, as Greedy's do.
func TestGreedyBatchFollowsSetParams(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range []Spec{cartPole, withDueling(minAtar)} {
		f := NewForward(s)
		obs := testObs(rng, s, 9, false)
		acts := make([]int32, 9)
		f.GreedyBatch(obs, 9, acts)
		for i, a := range acts {
			if a != 0 {
				t.Fatalf("%v, zero params: row %d acts %d, want 0 (the lowest on ties)", s, i, a)
			}
		}
		if err := f.SetParams(InitParams(s, rng)); err != nil {
			t.Fatal(err)
		}
		q := slices.Clone(f.QBatch(obs, 9))
		f.GreedyBatch(obs, 9, acts)
		checkRows(t, f, obs, 9, q, acts)
	}
}

// After the first call of a size, GreedyBatch allocates nothing, for that size and smaller.
func TestGreedyBatchZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []Spec{cartPole, withDueling(minAtar)} {
		f := NewForward(s)
		if err := f.SetParams(InitParams(s, rng)); err != nil {
			t.Fatal(err)
		}
		obs := testObs(rng, s, 64, true)
		acts := make([]int32, 64)
		f.GreedyBatch(obs, 64, acts)
		for _, n := range []int{64, 8, 3, 1} {
			if a := testing.AllocsPerRun(50, func() { f.GreedyBatch(obs, n, acts) }); a != 0 {
				t.Errorf("%v: GreedyBatch of %d allocates %v times per call, want 0", s, n, a)
			}
		}
	}
}

// BenchmarkGreedyBatch measures a runner's greedy actions for a vector of envs: one
// GreedyBatch against a Greedy per observation, in steps (observations) per second.
func BenchmarkGreedyBatch(b *testing.B) {
	for _, s := range []Spec{cartPole, minAtar} {
		for _, n := range []int{1, 8, 64} {
			for _, batched := range []bool{false, true} {
				name := fmt.Sprintf("net=%s/n=%d/batched=%v", map[bool]string{true: "minatar", false: "cartpole"}[s.Conv != nil], n, batched)
				b.Run(name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(3, 4))
					f := NewForward(s)
					if err := f.SetParams(InitParams(s, rng)); err != nil {
						b.Fatal(err)
					}
					obs := testObs(rng, s, n, s.Conv != nil)
					acts := make([]int32, n)
					b.ReportAllocs()
					for b.Loop() {
						if batched {
							f.GreedyBatch(obs, n, acts)
							continue
						}
						for i := range n {
							acts[i] = int32(f.Greedy(obs[i*s.Inputs : (i+1)*s.Inputs]))
						}
					}
					b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "steps/s")
				})
			}
		}
	}
}
