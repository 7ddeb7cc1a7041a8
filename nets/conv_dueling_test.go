package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// minAtar is the benchmark network: MinAtar's 10×10×4 observation (Breakout's channels),
// conv 16@3×3, dense 128, 6 actions.
var minAtar = MinAtarSpec(4, 6)

func withDueling(s Spec) Spec {
	s = s.clone()
	s.Dueling = true
	return s
}

func TestSpecConvDueling(t *testing.T) {
	conv := (3*3*4 + 1) * 16
	dense := (8*8*16 + 1) * 128
	if got, want := minAtar.NumParams(), conv+dense+(128+1)*6; got != want {
		t.Errorf("MinAtar NumParams = %d, want %d", got, want)
	}
	if got, want := withDueling(minAtar).NumParams(), conv+dense+(128+1)*7; got != want {
		t.Errorf("MinAtar dueling NumParams = %d, want %d", got, want)
	}
	if got, want := withDueling(cartPole).NumParams(), cartPole.NumParams()+65; got != want {
		t.Errorf("CartPole dueling NumParams = %d, want %d (one more head column)", got, want)
	}
	if err := minAtar.Validate(); err != nil {
		t.Errorf("MinAtarSpec invalid: %v", err)
	}
	bad := func(mut func(*Spec)) Spec {
		s := minAtar.clone()
		mut(&s)
		return s
	}
	for want, s := range map[string]Spec{
		"Inputs must equal":  bad(func(s *Spec) { s.Inputs = 399 }),
		"Conv.Kernel 11":     bad(func(s *Spec) { s.Conv.Kernel = 11 }),
		"Conv.Kernel must":   bad(func(s *Spec) { s.Conv.Kernel = 0 }),
		"Conv.Filters":       bad(func(s *Spec) { s.Conv.Filters = 0 }),
		"Conv.Channels":      bad(func(s *Spec) { s.Conv.Channels = -1 }),
		"Conv.Height":        bad(func(s *Spec) { s.Conv.Height = 0 }),
		"Hidden[0] must be":  bad(func(s *Spec) { s.Hidden = []int{0} }),
		"Outputs must be > ": bad(func(s *Spec) { s.Outputs = 0 }),
	} {
		err := s.Validate()
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%v) = %v, want ErrSpec mentioning %q", s, err, want)
		}
	}
	// A Spec handed to a Trainer or Forward is copied, Conv included.
	s := minAtar.clone()
	f := NewForward(s)
	s.Conv.Filters = 1
	if f.Spec().Conv.Filters != 16 {
		t.Error("NewForward shares the caller's ConvSpec")
	}
	if got := fmt.Sprint(minAtar); !strings.Contains(got, "10×10×4 → 16@3×3") {
		t.Errorf("Spec prints as %q, want the conv readable", got)
	}
}

// convSpecs are the forward-pass test shapes: MinAtar with and without the dueling head, a
// non-square conv, a conv whose kernel fills the observation's height (OH = 1), a conv
// feeding the head directly, a dueling MLP, a strided conv, conv chains (one dueling, one
// with InputScale) and a small Nature-geometry chain.
var convSpecs = []Spec{
	minAtar,
	withDueling(minAtar),
	{Inputs: 7 * 5 * 3, Conv: &ConvSpec{Height: 7, Width: 5, Channels: 3, Filters: 5, Kernel: 2}, Hidden: []int{9, 6}, Outputs: 4},
	{Inputs: 3 * 6 * 2, Conv: &ConvSpec{Height: 3, Width: 6, Channels: 2, Filters: 17, Kernel: 3}, Hidden: []int{20}, Outputs: 3, Dueling: true},
	{Inputs: 4 * 4 * 1, Conv: &ConvSpec{Height: 4, Width: 4, Channels: 1, Filters: 4, Kernel: 1}, Outputs: 2},
	withDueling(Spec{Inputs: 5, Hidden: []int{7, 3}, Outputs: 4}),
	gradSpec("conv-stride"),
	gradSpec("convs3"),
	gradSpec("convs2+dueling"),
	// Nature's geometry on a 36×36 frame (36 → 8 → 3 → 1) with fewer filters.
	{Inputs: 36 * 36 * 2, Convs: []ConvSpec{
		{Height: 36, Width: 36, Channels: 2, Filters: 8, Kernel: 8, Stride: 4},
		{Height: 8, Width: 8, Channels: 8, Filters: 16, Kernel: 4, Stride: 2},
		{Height: 3, Width: 3, Channels: 16, Filters: 16, Kernel: 3, Stride: 1}},
		Hidden: []int{32}, Outputs: 4, InputScale: 1.0 / 255},
}

// TestConvDuelingForwardAgree: the runner's Forward, the learner's gorgonia graph, its
// batched target pass (batchForward), a graph of gorgonia's stock ops (Conv2d on BCHW with
// PyTorch's layouts, BroadcastAdd, Rectify, Mean) and the float64 reference all compute the
// same Q-values, to 1e-5, on dense Gaussian and on sparse 0/1 (MinAtar-like) observations.
func TestConvDuelingForwardAgree(t *testing.T) {
	for _, kernel := range []bool{true, false} {
		saved := useKernel
		useKernel = kernel && haveKernel && !useOpenBLAS // false: gemm on gonum (or OpenBLAS)
		t.Run(fmt.Sprintf("kernel=%v", useKernel), testForwardAgree)
		useKernel = saved
	}
}

func testForwardAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const batch = 12
	for _, s := range convSpecs {
		for _, sparse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/sparse=%v", s, sparse), func(t *testing.T) {
				p := InitParams(s, rng)
				obs := make([]float32, batch*s.Inputs)
				for i := range obs {
					if sparse {
						if rng.IntN(8) == 0 {
							obs[i] = 1
						}
					} else {
						obs[i] = float32(2 * rng.NormFloat64())
					}
				}
				graph, err := gorgoniaForward(s, p, obs, batch)
				if err != nil {
					t.Fatal(err)
				}
				stock := stockForward(t, s, p, obs, batch)
				targetPass := batchForwardFlat(s, p, obs, batch)
				f := NewForward(s)
				if err := f.SetParams(p); err != nil {
					t.Fatal(err)
				}
				pd := f64(p)
				n := s.Outputs
				for r := range batch {
					o := obs[r*s.Inputs : (r+1)*s.Inputs]
					ref := refQ(s, pd, f64(o))
					q := slices.Clone(f.Q(o))
					for name, got := range map[string][]float32{
						"Forward":        q,
						"learner graph":  graph[r*n : (r+1)*n],
						"stock-op graph": stock[r*n : (r+1)*n],
						"batchForward":   targetPass[r*n : (r+1)*n],
					} {
						for j := range n {
							if d := math.Abs(float64(got[j]) - ref[j]); d > 1e-5 {
								t.Fatalf("row %d: %s Q = %v, float64 reference %v", r, name, got, ref)
							}
						}
					}
					if g := f.Greedy(o); g != argmax(graph[r*n:(r+1)*n]) {
						t.Errorf("row %d: Greedy %d, gorgonia argmax %d", r, g, argmax(graph[r*n:(r+1)*n]))
					}
				}
			})
		}
	}
}

// batchForwardFlat runs the Trainer's target pass (batchForward) on flat parameters.
func batchForwardFlat(s Spec, p, obs []float32, batch int) []float32 {
	net := newAugNet(s)
	aug := make([]float32, net.n)
	toAug(aug, net.layers, p)
	var mm gemm
	return slices.Clone(batchForward(&mm, net, aug, obs, batch, newFwdBufs(net, batch)))
}

func TestForwardZeroAllocsConvDueling(t *testing.T) {
	s := withDueling(minAtar)
	f := NewForward(s)
	if err := f.SetParams(InitParams(s, rand.New(rand.NewPCG(1, 1)))); err != nil {
		t.Fatal(err)
	}
	obs := minAtarObs(rand.New(rand.NewPCG(2, 2)), s, 1)
	if n := testing.AllocsPerRun(200, func() { sinkInt = f.Greedy(obs) }); n != 0 {
		t.Errorf("Forward.Greedy allocates %v times per call, want 0", n)
	}
}

// TestUpdateLowersLoss: one Update (one Adam step on the clipped gradient) must lower the loss
// on its own batch. Plain DQN targets depend only on the target network, which Update does not
// touch, so the loss before and after is over the same targets. A step along a wrong gradient
// (a sign or index error in the conv or dueling backward) raises it.
func TestUpdateLowersLoss(t *testing.T) {
	for _, s := range []Spec{gradSpecs[3].spec, minAtar, withDueling(minAtar)} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(51, 52))
			cfg := DefaultTrainConfig()
			cfg.BatchSize = 16
			cfg.DoubleDQN = false
			cfg.LearningRate = 1e-4
			tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
			b := randomBatch(s, 16, rng)
			copy(b.Obs, minAtarObs(rng, s, 16))
			before, err := tr.Update(b)
			if err != nil {
				t.Fatal(err)
			}
			after, _, err := tr.lossAndGrad(b)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loss %.6f → %.6f", before.Loss, after.Loss)
			if !(after.Loss < before.Loss) {
				t.Errorf("loss rose after one update: %v → %v", before.Loss, after.Loss)
			}
		})
	}
}

// TestLearnsConvRegression: with Discounts = 0 DQN regresses Q(s,a) on r(s,a); a small
// conv+dueling net must fit rewards that depend on where the 1s of a sparse grid are.
func TestLearnsConvRegression(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	s := Spec{Inputs: 6 * 6 * 2, Conv: &ConvSpec{Height: 6, Width: 6, Channels: 2, Filters: 8, Kernel: 3},
		Hidden: []int{32}, Outputs: 3, Dueling: true}
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 32
	cfg.LearningRate = 3e-3
	tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
	// r(s, a): a=0 counts 1s in channel 0's top half, a=1 in channel 1's left half, a=2 is
	// their difference. Translation-dependent targets need the dense layer after the conv.
	reward := func(obs []float32, a int32) float32 {
		var top, left float32
		for y := range 6 {
			for x := range 6 {
				if y < 3 {
					top += obs[(y*6+x)*2]
				}
				if x < 3 {
					left += obs[(y*6+x)*2+1]
				}
			}
		}
		switch a {
		case 0:
			return top / 4
		case 1:
			return left / 4
		}
		return (top - left) / 4
	}
	batch := func() *Batch {
		b := randomBatch(s, 32, rng)
		copy(b.Obs, minAtarObs(rng, s, 32))
		for i := range b.Size {
			b.Rewards[i] = reward(b.Obs[i*s.Inputs:(i+1)*s.Inputs], b.Actions[i])
			b.Discounts[i] = 0
		}
		return b
	}
	checkLossFalls(t, tr, batch, 600)
}

// minAtarObs draws n sparse 0/1 observations (about one cell in eight set), like MinAtar's
// object channels.
func minAtarObs(rng *rand.Rand, s Spec, n int) []float32 {
	obs := make([]float32, n*s.Inputs)
	for i := range obs {
		if rng.IntN(8) == 0 {
			obs[i] = 1
		}
	}
	return obs
}
