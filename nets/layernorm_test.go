package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func withLN(s Spec) Spec {
	s = s.clone()
	s.LayerNorm = true
	return s
}

// lnSpecs are the LayerNorm shapes of the forward tests: the CartPole MLP, a dueling MLP, every
// conv shape of the conv/dueling tests (MinAtar with and without the dueling head, a conv
// whose features feed the head directly: LN only on the conv), and a net whose hidden layer
// is narrower than the kernel's 4-wide unrolling.
var lnSpecs = []Spec{
	withLN(cartPole),
	withLN(withDueling(cartPole)),
	withLN(minAtar),
	withLN(withDueling(minAtar)),
	withLN(convSpecs[2]),
	withLN(convSpecs[3]),
	withLN(convSpecs[4]),
	withLN(Spec{Inputs: 5, Hidden: []int{3, 6}, Outputs: 2}),
}

// TestLayerNormOpGradient checks the op pair on its own: gorgonia's gradient of
// L = Σ c ⊙ lnReLU(a) through lnReLUOp's SymDiff against central differences of the float64
// LN+ReLU, on a matrix with a constant column (a dense hidden layer's product) and on one
// without (the conv's), rows of width 1 to 17.
//
// Tolerance: the op runs in float32 (ε ≈ 1.2e-7) and LN multiplies errors in a by
// r = 1/std(a) ≤ 3 here, so its gradient is good to ~1e-5 relative; the float64 central
// difference with h = 1e-6 to ~1e-10. A ReLU kink within h of some x̂ would show as an O(1)
// error; x̂ is of unit scale, so that is a 1e-6 chance per entry.
func TestLayerNormOpGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	for _, c := range []struct{ rows, units, cols int }{
		{6, 5, 6}, {4, 16, 17}, {9, 3, 3}, {3, 2, 3}, {5, 17, 17}, {2, 64, 65},
	} {
		t.Run(fmt.Sprintf("%dx%d/units=%d", c.rows, c.cols, c.units), func(t *testing.T) {
			a := make([]float32, c.rows*c.cols)
			w := make([]float32, c.rows*c.cols)
			for i := range a {
				a[i] = float32(0.5*rng.NormFloat64() + 0.2)
				w[i] = float32(rng.NormFloat64())
			}
			grad := lnOpGradient(t, a, w, c.rows, c.cols, c.units)
			loss := func(a []float64) float64 {
				var l float64
				for r := range c.rows {
					row := slices.Clone(a[r*c.cols : (r+1)*c.cols])
					refLN(row[:c.units])
					for j, v := range row {
						if j < c.units { // the columns after units pass unchanged
							v = math.Max(v, 0)
						}
						l += float64(w[r*c.cols+j]) * v
					}
				}
				return l
			}
			const h = 1e-6
			ad := f64(a)
			for i := range ad {
				orig := ad[i]
				ad[i] = orig + h
				lp := loss(ad)
				ad[i] = orig - h
				lm := loss(ad)
				ad[i] = orig
				fd := (lp - lm) / (2 * h)
				if d := math.Abs(float64(grad[i]) - fd); d > 1e-4*math.Max(1, math.Abs(fd)) {
					t.Errorf("a[%d]: op gradient %.7g, finite difference %.7g", i, grad[i], fd)
				}
			}
		})
	}
}

// lnOpGradient returns ∂/∂a of Σ w ⊙ lnReLUOp(a) as gorgonia computes it.
func lnOpGradient(t *testing.T, a, w []float32, rows, cols, units int) []float32 {
	t.Helper()
	g := G.NewGraph()
	an := G.NewMatrix(g, tensor.Float32, G.WithShape(rows, cols), G.WithName("a"),
		G.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(slices.Clone(a)))))
	wn := inputMatrix(g, "w", slices.Clone(w), rows, cols)
	y, err := lnReLUFn(an, units)
	if err != nil {
		t.Fatal(err)
	}
	l := G.Must(G.Sum(G.Must(G.HadamardProd(y, wn))))
	if _, err := G.Grad(l, an); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(an))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := an.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(gv.Data().([]float32))
}

// TestLayerNormGradientFiniteDifference is TestGradientFiniteDifference (the whole DQN loss
// against the float64 reference, every case) on the LayerNorm versions of its shapes.
func TestLayerNormGradientFiniteDifference(t *testing.T) {
	cases := []gradCase{
		{"plain", false, false, true, 1},
		{"weights-terminal-linear-branch", true, true, false, 5},
		{"no-double", false, false, false, 0.5},
	}
	for si, sc := range gradSpecs {
		for ci, c := range cases {
			t.Run(sc.name+"+ln/"+c.name, func(t *testing.T) {
				testGradient(t, withLN(sc.spec), c, rand.New(rand.NewPCG(uint64(300+ci), uint64(3+si))))
			})
		}
	}
}

// TestLayerNormForwardAgree: with LayerNorm, Forward, the learner's graph, its target pass
// (batchForward) and QBatch agree with the float64 reference to 1e-5, on dense and sparse
// observations, with the AVX2 kernel and with its fallback.
func TestLayerNormForwardAgree(t *testing.T) {
	for _, kernel := range []bool{true, false} {
		saved := useKernel
		useKernel = kernel && haveKernel && !useOpenBLAS
		t.Run(fmt.Sprintf("kernel=%v", useKernel), testLNForwardAgree)
		useKernel = saved
	}
}

func testLNForwardAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	const batch = 12
	for _, s := range lnSpecs {
		for _, sparse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/sparse=%v", s, sparse), func(t *testing.T) {
				p := InitParams(s, rng)
				obs := testObs(rng, s, batch, sparse)
				graph, err := gorgoniaForward(s, p, obs, batch)
				if err != nil {
					t.Fatal(err)
				}
				targetPass := batchForwardFlat(s, p, obs, batch)
				f := NewForward(s)
				if err := f.SetParams(p); err != nil {
					t.Fatal(err)
				}
				qb := slices.Clone(f.QBatch(obs, batch))
				pd, n := f64(p), s.Outputs
				for r := range batch {
					o := obs[r*s.Inputs : (r+1)*s.Inputs]
					ref := refQ(s, pd, f64(o))
					for name, got := range map[string][]float32{
						"Forward":       slices.Clone(f.Q(o)),
						"learner graph": graph[r*n : (r+1)*n],
						"batchForward":  targetPass[r*n : (r+1)*n],
						"QBatch":        qb[r*n : (r+1)*n],
					} {
						for j := range n {
							if d := math.Abs(float64(got[j]) - ref[j]); d > 1e-5 {
								t.Fatalf("row %d: %s Q = %v, float64 reference %v", r, name, got, ref)
							}
						}
					}
				}
			})
		}
	}
}

// LayerNorm changes the outputs: the option is not silently ignored by any path.
func TestLayerNormChangesOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	for _, s := range []Spec{cartPole, minAtar} {
		p := InitParams(s, rng)
		obs := testObs(rng, s, 4, s.Conv != nil)
		plain, ln := NewForward(s), NewForward(withLN(s))
		for _, f := range []*Forward{plain, ln} {
			if err := f.SetParams(p); err != nil {
				t.Fatal(err)
			}
		}
		if slices.Equal(plain.Q(obs), ln.Q(obs)) {
			t.Errorf("%v: Q is the same with and without LayerNorm", s)
		}
		if slices.Equal(slices.Clone(plain.QBatch(obs, 4)), ln.QBatch(obs, 4)) {
			t.Errorf("%v: QBatch is the same with and without LayerNorm", s)
		}
	}
}

func TestLayerNormZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(77, 78))
	for _, s := range []Spec{withLN(cartPole), withLN(withDueling(minAtar))} {
		f := NewForward(s)
		if err := f.SetParams(InitParams(s, rng)); err != nil {
			t.Fatal(err)
		}
		obs := testObs(rng, s, 8, s.Conv != nil)
		if n := testing.AllocsPerRun(200, func() { sinkInt = f.Greedy(obs[:s.Inputs]) }); n != 0 {
			t.Errorf("%v: Forward.Greedy allocates %v times per call, want 0", s, n)
		}
		acts := make([]int32, 8)
		f.GreedyBatch(obs, 8, acts)
		if n := testing.AllocsPerRun(50, func() { f.GreedyBatch(obs, 8, acts) }); n != 0 {
			t.Errorf("%v: GreedyBatch allocates %v times per call, want 0", s, n)
		}
	}
}

// The replayed tape (tape.go) computes with the LayerNorm ops exactly what Reset+RunAll on
// the whole graph computes, and one Update lowers the loss on its batch.
func TestLayerNormTrainer(t *testing.T) {
	for _, s := range []Spec{withLN(Spec{Inputs: 4, Hidden: []int{32, 32}, Outputs: 3}), withLN(withDueling(minAtar))} {
		t.Run(fmt.Sprint(s), func(t *testing.T) { testFastTape(t, s) })
	}
	s := withLN(gradSpecs[3].spec)
	rng := rand.New(rand.NewPCG(79, 80))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 16
	cfg.DoubleDQN = false
	cfg.LearningRate = 1e-4
	tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
	b := randomBatch(s, 16, rng)
	before, err := tr.Update(b)
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := tr.lossAndGrad(b)
	if err != nil {
		t.Fatal(err)
	}
	if !(after.Loss < before.Loss) {
		t.Errorf("loss rose after one update: %v → %v", before.Loss, after.Loss)
	}
}

// TestLearnsRegressionLayerNorm: with Discounts = 0 DQN regresses Q(s,a) on r(s,a); a
// LayerNorm MLP must fit it as the plain one does (TestLearnsRegression).
func TestLearnsRegressionLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	s := withLN(Spec{Inputs: 3, Hidden: []int{32, 32}, Outputs: 2})
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 32
	cfg.LearningRate = 3e-3
	tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
	batch := func() *Batch {
		b := randomBatch(s, 32, rng)
		for i := range b.Size {
			o := b.Obs[i*3 : i*3+3]
			if b.Actions[i] == 0 {
				b.Rewards[i] = o[0] - 0.5*o[1]
			} else {
				b.Rewards[i] = o[2] * o[0]
			}
			b.Discounts[i] = 0
		}
		return b
	}
	checkLossFalls(t, tr, batch, 600)
}
