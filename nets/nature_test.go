package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// nature is the Nature DQN network on four stacked 84×84 frames with Atari's full 6-action
// Pong set (the benchmarks also run 2 actions).
var nature = NatureSpec(84, 84, 4, 6)

// natureObs draws n observations of uint8-valued pixels (0..255 as float32), as a frame
// stacker hands them over.
func natureObs(rng *rand.Rand, s Spec, n int) []float32 {
	obs := make([]float32, n*s.Inputs)
	for i := range obs {
		obs[i] = float32(rng.IntN(256))
	}
	return obs
}

func TestNatureSpec(t *testing.T) {
	// (8·8·4+1)·32 + (4·4·32+1)·64 + (3·3·64+1)·64 + (7·7·64+1)·512 + (512+1)·A
	base := 8224 + 32832 + 36928 + 1606144
	for _, a := range []int{2, 6} {
		if got, want := NatureSpec(84, 84, 4, a).NumParams(), base+513*a; got != want {
			t.Errorf("NatureSpec(…, %d).NumParams() = %d, want %d", a, got, want)
		}
	}
	if got := NatureSpec(84, 84, 4, 2).NumParams(); got != 1685154 {
		t.Errorf("2 actions: %d parameters, want 1,685,154 (PyTorch's count for the same net)", got)
	}
	if err := nature.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := nature.String(), "84×84×4 → 32@8×8/4 → 64@4×4/2 → 64@3×3 → 512 → 6, conv, input/255"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	cs := nature.ConvLayers()
	if len(cs) != 3 || cs[2].OutHeight() != 7 || cs[2].OutWidth() != 7 || cs[0].OutHeight() != 20 {
		t.Errorf("ConvLayers = %+v, want 84 → 20 → 9 → 7", cs)
	}
	// Spec copies (Trainer, Forward) do not share Convs with the caller.
	s := nature.clone()
	f := NewForward(s)
	s.Convs[1].Filters = 1
	if f.Spec().Convs[1].Filters != 64 {
		t.Error("NewForward shares the caller's Convs")
	}
	// A one-layer Convs is Conv: same parameter count, same Q-values.
	one := Spec{Inputs: minAtar.Inputs, Convs: []ConvSpec{*minAtar.Conv}, Hidden: minAtar.Hidden, Outputs: minAtar.Outputs}
	if one.NumParams() != minAtar.NumParams() || one.String() != minAtar.String() {
		t.Errorf("Convs{MinAtar conv}: %d params %q, Conv: %d %q", one.NumParams(), one, minAtar.NumParams(), minAtar)
	}
	p := InitParams(minAtar, rand.New(rand.NewPCG(1, 2)))
	obs := minAtarObs(rand.New(rand.NewPCG(3, 4)), minAtar, 1)
	f1, f2 := NewForward(minAtar), NewForward(one)
	_, _ = f1.SetParams(p), f2.SetParams(p)
	if !slices.Equal(f1.Q(obs), f2.Q(obs)) {
		t.Error("Convs with MinAtar's one layer computes other Q-values than Conv")
	}
}

func TestNatureSpecValidate(t *testing.T) {
	bad := func(mut func(*Spec)) Spec {
		s := nature.clone()
		mut(&s)
		return s
	}
	for want, s := range map[string]Spec{
		"Convs[1] is 19×20 but Convs[0] outputs 20×20":  bad(func(s *Spec) { s.Convs[1].Height = 19 }),
		"Convs[2].Channels must equal Convs[1].Filters": bad(func(s *Spec) { s.Convs[1].Filters = 32 }),
		"Inputs must equal Convs[0].Height":             bad(func(s *Spec) { s.Inputs = 84 * 84 }),
		"Convs[0].Stride must be >= 0":                  bad(func(s *Spec) { s.Convs[0].Stride = -1 }),
		"Convs[2].Kernel 10 does not fit a 9×9 input":   bad(func(s *Spec) { s.Convs[2].Kernel = 10 }),
		"not both":                  bad(func(s *Spec) { s.Conv = &s.Convs[0] }),
		"InputScale must be finite": bad(func(s *Spec) { s.InputScale = -1 }),
	} {
		err := s.Validate()
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want ErrSpec mentioning %q", err, want)
		}
	}
	if err := NatureSpec(30, 30, 4, 2).Validate(); err == nil {
		t.Error("NatureSpec on 30×30 (→ 6 → 2, no room for the 3×3) validated")
	}
}

// TestNatureForwardAgree: on the full-size Nature network and 0..255 frames, the runner's
// Forward (one observation), its batched QBatch/GreedyBatch, the learner's graph (the Q the
// loss differentiates, Trainer.lossAndGrad's Q(s,a) included) and the float64 reference agree
// to 1e-5.
func TestNatureForwardAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("float64 reference of a 9 M multiply-add net")
	}
	rng := rand.New(rand.NewPCG(81, 82))
	const n = 4
	s := nature
	p := InitParams(s, rng)
	obs := natureObs(rng, s, n)
	f := NewForward(s)
	if err := f.SetParams(p); err != nil {
		t.Fatal(err)
	}
	batch := slices.Clone(f.QBatch(obs, n))
	acts := make([]int32, n)
	f.GreedyBatch(obs, n, acts)
	graph, err := gorgoniaForward(s, p, obs, n)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultTrainConfig()
	cfg.BatchSize = n
	tr := newTestTrainer(t, s, cfg, p)
	b := randomBatch(s, n, rng)
	copy(b.Obs, obs)
	copy(b.NextObs, natureObs(rng, s, n))
	if _, _, err := tr.lossAndGrad(b); err != nil {
		t.Fatal(err)
	}
	qsa := tr.model.qTm1Val.Data().([]float32)
	k := s.Outputs
	pd := f64(p)
	for r := range n {
		o := obs[r*s.Inputs : (r+1)*s.Inputs]
		ref := refQ(s, pd, f64(o))
		q := slices.Clone(f.Q(o))
		for name, got := range map[string][]float32{
			"Forward": q, "QBatch": batch[r*k : (r+1)*k], "learner graph": graph[r*k : (r+1)*k],
		} {
			for j := range k {
				if d := math.Abs(float64(got[j]) - ref[j]); d > 1e-5 {
					t.Fatalf("row %d: %s Q = %v, float64 reference %v", r, name, got, ref)
				}
			}
		}
		if a := b.Actions[r]; math.Abs(float64(qsa[r])-ref[a]) > 1e-5 {
			t.Errorf("row %d: Trainer Q(s,%d) = %v, reference %v", r, a, qsa[r], ref[a])
		}
		if g := refArgmax(ref); int(acts[r]) != g {
			t.Errorf("row %d: GreedyBatch %d, reference argmax %d (Q %v)", r, acts[r], g, ref)
		}
	}
}

// Forward.Greedy and GreedyBatch on the Nature net allocate nothing after the first call.
func TestNatureForwardZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	f := NewForward(nature)
	if err := f.SetParams(InitParams(nature, rng)); err != nil {
		t.Fatal(err)
	}
	obs := natureObs(rng, nature, 8)
	acts := make([]int32, 8)
	f.GreedyBatch(obs, 8, acts)
	if a := testing.AllocsPerRun(5, func() { sinkInt = f.Greedy(obs[:nature.Inputs]) }); a != 0 {
		t.Errorf("Greedy allocates %v times per call, want 0", a)
	}
	if a := testing.AllocsPerRun(5, func() { f.GreedyBatch(obs, 8, acts) }); a != 0 {
		t.Errorf("GreedyBatch allocates %v times per call, want 0", a)
	}
}

// BenchmarkLearnerUpdateNaturePhases splits one Nature update (batch 32, 6 actions) into its
// parts, each timed on its own over the same batches: the stop-gradient target passes
// (computeTargets: Q̄(s′,·) and the double-DQN Q(s′,·), two batched forwards), the input
// matrix (fillInput: im2col of s, scaled), the graph's forward alone (the same network graph
// on a second tape, down to Q), the graph's forward, loss and backward (the Trainer's own
// tape), and the gradient norm, clipping and Adam. backward ≈ graph − forward.
func BenchmarkLearnerUpdateNaturePhases(b *testing.B) {
	s := nature
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 32
	tr, err := NewTrainer(s, cfg, InitParams(s, rng))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	batches := make([]*Batch, 4)
	for i := range batches {
		batches[i] = randomBatch(s, 32, rng)
		copy(batches[i].Obs, natureObs(rng, s, 32))
		copy(batches[i].NextObs, natureObs(rng, s, 32))
	}
	m := tr.model
	fwd := forwardOnlyTape(b, tr)
	if _, err := tr.Update(batches[0]); err != nil { // fills the inputs and warms the registers
		b.Fatal(err)
	}
	for _, ph := range []struct {
		name string
		run  func(*Batch) error
	}{
		{"targets", func(bt *Batch) error { tr.computeTargets(bt); return nil }},
		{"input", func(bt *Batch) error { tr.net.fillInput(m.xBuf, bt.Obs, bt.Size); return nil }},
		{"graph-forward", func(*Batch) error { return fwd.run() }},
		{"graph-forward+backward", func(*Batch) error { clear(tr.grads); return m.run() }},
		{"clip+adam", func(*Batch) error {
			clipByNorm(tr.grads, l2norm(tr.grads), tr.cfg.MaxGradNorm)
			adamStep(tr.online, tr.grads, tr.adamM, tr.adamV, tr.step+1, tr.cfg)
			return nil
		}},
		{"update", func(bt *Batch) error { _, err := tr.Update(bt); return err }},
	} {
		b.Run("phase="+ph.name, func(b *testing.B) {
			cpu0 := processCPU()
			for i := 0; b.Loop(); i++ {
				if err := ph.run(batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1e3, "ms/op")
			if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
				b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
			}
		})
	}
}

// forwardOnlyTape builds the Trainer's network graph again (newQModel's steps, without the
// loss and G.Grad) over its buffers and parameters, for timing the forward alone.
func forwardOnlyTape(b *testing.B, tr *Trainer) *qModel {
	b.Helper()
	net, src := tr.net, tr.model
	m := &qModel{g: G.NewGraph(), batch: src.batch}
	rows, cols := m.batch*net.inRows(), net.inCols()
	m.x = inputMatrix(m.g, "x", src.xBuf, rows, cols)
	for i, l := range net.layers {
		val := tensor.New(tensor.WithShape(l.in+1, l.cols), tensor.WithBacking(l.g(tr.online)))
		m.ws = append(m.ws, G.NewMatrix(m.g, tensor.Float32, G.WithShape(l.in+1, l.cols),
			G.WithName(fmt.Sprintf("G%d", i)), G.WithValue(val)))
	}
	if err := m.fwd(m.x, net); err != nil {
		b.Fatal(err)
	}
	// Down to Q only: the loss ops are a few vectors of B values, and without the backward
	// keeping them alive gorgonia's register reuse puts the loss's scalar in MinBetween's
	// register, which the no-Reset replay cannot survive.
	var q G.Value
	m.vm = G.NewTapeMachine(m.g.ExactSubgraphRoots(G.Read(m.q, &q)), G.WithEngine(matmulEngine{gemm: &tr.gemm}))
	b.Cleanup(m.close)
	r, err := newTapeRunner(m.vm)
	if err != nil {
		b.Fatal(err)
	}
	m.runner = r
	return m
}

// TestPatchesAdjoint: col2im (nets.PatchesGrad) is im2col's (nets.Patches') adjoint,
// ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩ over the patch columns, for strides below, at and above the
// kernel (overlapping, tiling and skipping patches) and a stride that leaves cells unread.
func TestPatchesAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(85, 86))
	for _, c := range []ConvSpec{
		{Height: 20, Width: 20, Channels: 3, Filters: 1, Kernel: 4, Stride: 2},
		{Height: 9, Width: 7, Channels: 2, Filters: 1, Kernel: 3, Stride: 3},
		{Height: 11, Width: 10, Channels: 2, Filters: 1, Kernel: 2, Stride: 4},
		{Height: 8, Width: 8, Channels: 4, Filters: 1, Kernel: 8, Stride: 4},
	} {
		const batch = 3
		x := randSlice(rng, batch*c.inputs())
		cols := c.patchSize() + 1
		y := randSlice(rng, batch*c.positions()*cols)
		px := make([]float32, len(y))
		c.im2col(px, x, batch, 1)
		xy := make([]float32, len(x))
		c.col2im(xy, y, batch)
		var lhs, rhs float64
		for r := range batch * c.positions() {
			for j := range cols - 1 { // the ones column has no input
				lhs += float64(px[r*cols+j]) * float64(y[r*cols+j])
			}
		}
		for i := range x {
			rhs += float64(x[i]) * float64(xy[i])
		}
		if math.Abs(lhs-rhs) > 1e-4*math.Max(1, math.Abs(lhs)) {
			t.Errorf("%v: ⟨im2col x, y⟩ = %v, ⟨x, col2im y⟩ = %v", &c, lhs, rhs)
		}
	}
}
