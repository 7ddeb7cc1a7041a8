package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

func newTestTrainer(t *testing.T, s Spec, cfg TrainConfig, init []float32) *Trainer {
	t.Helper()
	tr, err := NewTrainer(s, cfg, init)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func TestSpec(t *testing.T) {
	if got, want := cartPole.NumParams(), 4*64+64+64*64+64+64*2+2; got != want {
		t.Errorf("NumParams = %d, want %d", got, want)
	}
	for _, bad := range []Spec{{Inputs: 0, Outputs: 2}, {Inputs: 4, Outputs: 0}, {Inputs: 4, Hidden: []int{8, 0}, Outputs: 2}} {
		if err := bad.Validate(); !errors.Is(err, ErrSpec) {
			t.Errorf("Validate(%v) = %v, want ErrSpec", bad, err)
		}
	}
}

func TestInitParamsRange(t *testing.T) {
	s := Spec{Inputs: 16, Hidden: []int{4}, Outputs: 3}
	p := InitParams(s, rand.New(rand.NewPCG(7, 7)))
	for _, l := range s.layers() {
		bound := float32(1 / math.Sqrt(float64(l.in)))
		seg := p[l.off : l.off+(l.in+1)*l.out]
		lo, hi := slices.Min(seg), slices.Max(seg)
		if lo < -bound || hi > bound || hi-lo < bound { // spread: not all equal/tiny
			t.Errorf("layer in=%d: range [%v, %v], want within ±%v and spread", l.in, lo, hi, bound)
		}
	}
	if q := InitParams(s, rand.New(rand.NewPCG(7, 7))); !slices.Equal(p, q) {
		t.Error("InitParams is not deterministic for a seeded rng")
	}
}

func TestForwardMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range []Spec{cartPole, {Inputs: 5, Hidden: []int{7, 3}, Outputs: 4}, {Inputs: 3, Outputs: 2}} {
		const batch = 16
		p := InitParams(s, rng)
		obs := make([]float32, batch*s.Inputs)
		for i := range obs {
			obs[i] = float32(2 * rng.NormFloat64())
		}
		want, err := gorgoniaForward(s, p, obs, batch)
		if err != nil {
			t.Fatal(err)
		}
		// The learner's graph (augmented layout, nets.ReLU op) must also agree with a graph of
		// gorgonia's stock ops (Mul, BroadcastAdd, Rectify) on the flat layout.
		stock := stockForward(t, s, p, obs, batch)
		for i := range want {
			if d := math.Abs(float64(want[i] - stock[i])); d > 1e-5 {
				t.Fatalf("spec %v: learner graph Q[%d] = %v, stock-op graph %v", s, i, want[i], stock[i])
			}
		}
		f := NewForward(s)
		if err := f.SetParams(p); err != nil {
			t.Fatal(err)
		}
		for r := range batch {
			o := obs[r*s.Inputs : (r+1)*s.Inputs]
			q := f.Q(o)
			w := want[r*s.Outputs : (r+1)*s.Outputs]
			for j := range q {
				if d := math.Abs(float64(q[j] - w[j])); d > 1e-5 {
					t.Fatalf("spec %v row %d: Forward %v, gorgonia %v", s, r, q, w)
				}
			}
			if g := f.Greedy(o); g != argmax(w) {
				t.Errorf("spec %v row %d: Greedy %d, gorgonia argmax %d", s, r, g, argmax(w))
			}
		}
	}
}

func stockForward(t *testing.T, s Spec, p, obs []float32, batch int) []float32 {
	t.Helper()
	g := G.NewGraph()
	xt := naiveInputTensor(s, batch)
	setNaiveInput(xt, s, obs, batch)
	q, _ := naiveNet(g, s, naiveInput(g, "x", xt), naiveParams(s, p), "")
	var qv G.Value
	G.Read(q, &qv)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return qv.Data().([]float32)
}

func TestForwardGreedyTiesAndErrors(t *testing.T) {
	s := Spec{Inputs: 2, Outputs: 3}
	f := NewForward(s)
	p := make([]float32, s.NumParams())
	copy(p[2*3:], []float32{1, 4, 4}) // Q = b: a tie between actions 1 and 2
	if err := f.SetParams(p); err != nil {
		t.Fatal(err)
	}
	if g := f.Greedy([]float32{0.5, -2}); g != 1 {
		t.Errorf("Greedy on tie = %d, want lowest index 1", g)
	}
	if err := f.SetParams(p[1:]); !errors.Is(err, ErrParamLen) {
		t.Errorf("SetParams(short) = %v, want ErrParamLen", err)
	}
}

func TestForwardZeroAllocs(t *testing.T) {
	f := NewForward(cartPole)
	if err := f.SetParams(InitParams(cartPole, rand.New(rand.NewPCG(1, 1)))); err != nil {
		t.Fatal(err)
	}
	obs := []float32{0.1, -0.2, 0.03, 0.4}
	if n := testing.AllocsPerRun(1000, func() { sinkInt = f.Greedy(obs) }); n != 0 {
		t.Errorf("Forward.Greedy allocates %v times per call, want 0", n)
	}
}

// TestGradientFiniteDifference compares gorgonia's gradient of the loss with central
// differences of the float64 reference loss.
//
// Tolerance: the gorgonia gradient is float32 (ε ≈ 1.2e-7) accumulated over ≲ 50 terms, so
// its relative error is ~1e-5; the float64 central difference with h = 1e-6 has truncation
// error ~h²·|∂³L| ≈ 1e-12 and rounding error ~1e-16/h ≈ 1e-10. ReLU and the Huber kink are
// the only non-smooth points; a difference straddling one would show an O(1) error. With
// pre-activations of order 0.1 and a few hundred of them per test, one lands within 1e-4 of
// a kink now and then (h = 1e-4 hit one in the conv net: a hidden unit at 5e-5); h = 1e-6
// makes that a hundred times rarer. So we require |g − fd| ≤ 1e-3·max|fd| + 1e-6: two orders
// above the expected error, far below any real mistake (a wrong sign, a missing weight or a
// dropped term is an O(1) relative error).
func TestGradientFiniteDifference(t *testing.T) {
	cases := []gradCase{
		{"plain", false, false, true, 1},
		{"weights", true, false, true, 1},
		{"terminal", false, true, true, 1},
		{"weights-terminal-linear-branch", true, true, false, 5},
		{"no-double", false, false, false, 0.5},
	}
	for si, sc := range gradSpecs {
		for ci, c := range cases {
			t.Run(sc.name+"/"+c.name, func(t *testing.T) {
				testGradient(t, sc.spec, c, rand.New(rand.NewPCG(uint64(100+ci), uint64(3+si))))
			})
		}
	}
}

type gradCase struct {
	name     string
	weights  bool
	terminal bool
	double   bool
	scale    float32 // reward scale: large puts most |δ| > 1 (linear Huber branch)
}

// gradSpecs are the shapes the gradient and tape tests run on: an MLP, a dueling MLP, conv
// nets on a non-square observation (a transposed index would show) with and without a dueling
// head, a conv net whose features feed the dueling head directly, a strided conv, and chains
// of two and three strided convs (one dueling, one with InputScale).
// TestLayerNormGradientFiniteDifference runs each with LayerNorm too.
var gradSpecs = []struct {
	name string
	spec Spec
}{
	{"mlp", Spec{Inputs: 3, Hidden: []int{5, 4}, Outputs: 3}},
	{"dueling", Spec{Inputs: 3, Hidden: []int{5, 4}, Outputs: 3, Dueling: true}},
	{"conv", Spec{Inputs: 5 * 4 * 2, Conv: &ConvSpec{Height: 5, Width: 4, Channels: 2, Filters: 3, Kernel: 3},
		Hidden: []int{4}, Outputs: 3}},
	{"conv+dueling", Spec{Inputs: 5 * 4 * 2, Conv: &ConvSpec{Height: 5, Width: 4, Channels: 2, Filters: 3, Kernel: 2},
		Hidden: []int{4}, Outputs: 3, Dueling: true}},
	{"conv-head-dueling", Spec{Inputs: 4 * 3 * 3, Conv: &ConvSpec{Height: 4, Width: 3, Channels: 3, Filters: 2, Kernel: 2},
		Outputs: 4, Dueling: true}},
	// Strides and conv chains (Nature-like, small): a stride that leaves a row and a column
	// unread (floor), two and three layers with overlapping strided patches (col2im sums),
	// a dueling chain and a scaled input.
	{"conv-stride", Spec{Inputs: 7 * 6 * 2, Conv: &ConvSpec{Height: 7, Width: 6, Channels: 2, Filters: 3, Kernel: 3, Stride: 2},
		Hidden: []int{4}, Outputs: 3}},
	{"convs2", Spec{Inputs: 12 * 10 * 2, Convs: []ConvSpec{
		{Height: 12, Width: 10, Channels: 2, Filters: 3, Kernel: 4, Stride: 2},
		{Height: 5, Width: 4, Channels: 3, Filters: 2, Kernel: 2, Stride: 1}},
		Hidden: []int{4}, Outputs: 3}},
	{"convs3", Spec{Inputs: 13 * 11 * 2, Convs: []ConvSpec{
		{Height: 13, Width: 11, Channels: 2, Filters: 3, Kernel: 3, Stride: 2},
		{Height: 6, Width: 5, Channels: 3, Filters: 4, Kernel: 2, Stride: 2},
		{Height: 3, Width: 2, Channels: 4, Filters: 2, Kernel: 2}},
		Hidden: []int{5}, Outputs: 3, InputScale: 0.5}},
	{"convs2+dueling", Spec{Inputs: 9 * 8 * 3, Convs: []ConvSpec{
		{Height: 9, Width: 8, Channels: 3, Filters: 4, Kernel: 3, Stride: 2},
		{Height: 4, Width: 3, Channels: 4, Filters: 3, Kernel: 2, Stride: 1}},
		Hidden: []int{4}, Outputs: 3, Dueling: true}},
}

// gradSpec returns the gradSpecs entry called name.
func gradSpec(name string) Spec {
	for _, g := range gradSpecs {
		if g.name == name {
			return g.spec
		}
	}
	panic("no gradSpec " + name)
}

func testGradient(t *testing.T, s Spec, c gradCase, rng *rand.Rand) {
	const batch = 8
	cfg := DefaultTrainConfig()
	cfg.BatchSize = batch
	cfg.DoubleDQN = c.double
	online := InitParams(s, rng)
	target := InitParams(s, rng)
	tr := newTestTrainer(t, s, cfg, online)
	if err := tr.Restore(TrainerState{Online: online, Target: target,
		AdamM: make([]float32, len(online)), AdamV: make([]float32, len(online))}); err != nil {
		t.Fatal(err)
	}
	b := randomBatch(s, batch, rng)
	for i := range b.Rewards {
		b.Rewards[i] *= c.scale
		if c.terminal {
			b.Discounts[i] = 0
		}
	}
	if c.weights {
		b.Weights = make([]float32, batch)
		for i := range b.Weights {
			b.Weights[i] = 0.1 + 2*rng.Float32()
		}
	}
	// Run once on another batch first: the gradient must not carry over between runs.
	if _, _, err := tr.lossAndGrad(randomBatch(s, batch, rng)); err != nil {
		t.Fatal(err)
	}
	stats, _, err := tr.lossAndGrad(b)
	if err != nil {
		t.Fatal(err)
	}
	grad := fromAug(nil, tr.net.layers, tr.grads, tr.nFlat)

	p := f64(online)
	y := refTargets(s, p, f64(target), b, c.double)
	if c.terminal {
		for i := range y {
			if y[i] != float64(b.Rewards[i]) {
				t.Fatalf("terminal target %v, want reward %v", y[i], b.Rewards[i])
			}
		}
	}
	l0 := refLoss(s, p, b, y)
	if d := math.Abs(float64(stats.Loss) - l0); d > 1e-5*math.Max(1, l0) {
		t.Errorf("gorgonia loss %v, reference %v", stats.Loss, l0)
	}
	const h = 1e-6
	fd := make([]float64, len(p))
	var fdMax float64
	for i := range p {
		orig := p[i]
		p[i] = orig + h
		lp := refLoss(s, p, b, y)
		p[i] = orig - h
		lm := refLoss(s, p, b, y)
		p[i] = orig
		fd[i] = (lp - lm) / (2 * h)
		fdMax = math.Max(fdMax, math.Abs(fd[i]))
	}
	tol := 1e-3*fdMax + 1e-6
	var worst float64
	for i := range fd {
		d := math.Abs(float64(grad[i]) - fd[i])
		worst = math.Max(worst, d)
		if d > tol {
			t.Errorf("param %d: gorgonia %.7g, finite difference %.7g", i, grad[i], fd[i])
		}
	}
	t.Logf("max |g−fd| = %.3g (max |fd| = %.3g)", worst, fdMax)
}

// TestHuberLossValue checks loss, |δ| and MeanQ on a net whose Q-values are its output bias,
// so every δ is known in advance and covers both Huber branches and both signs.
func TestHuberLossValue(t *testing.T) {
	s := Spec{Inputs: 2, Outputs: 2}
	p := make([]float32, s.NumParams())
	copy(p[4:], []float32{0.5, -1}) // W = 0, Q(s,·) = (0.5, −1)
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 4
	tr := newTestTrainer(t, s, cfg, p)
	b := &Batch{
		Size:      4,
		Obs:       []float32{1, 2, 3, 4, 5, 6, 7, 8},
		Actions:   []int32{0, 0, 1, 1},
		Rewards:   []float32{0.2, 0, 1, -3.5},
		Discounts: []float32{0, 0.5, 0, 0},
		NextObs:   make([]float32, 8),
		Weights:   []float32{1, 2, 0.5, 1},
	}
	// Targets: 0.2; 0 + 0.5·Q̄(s', argmax Q(s',·) = 0) = 0.25; 1; −3.5.
	// δ = Q(s,a) − y: 0.3, 0.25, −2, 2.5.
	delta := []float64{0.3, 0.25, -2, 2.5}
	var want float64
	for i, d := range delta {
		h := 0.5 * d * d
		if math.Abs(d) > 1 {
			h = math.Abs(d) - 0.5
		}
		want += float64(b.Weights[i]) * h
	}
	want /= 4
	st, err := tr.Update(b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(st.Loss)-want) > 1e-6 {
		t.Errorf("loss %v, want %v", st.Loss, want)
	}
	if wantQ := (0.5 + 0.5 - 1 - 1) / 4.0; math.Abs(float64(st.MeanQ)-wantQ) > 1e-6 {
		t.Errorf("MeanQ %v, want %v", st.MeanQ, wantQ)
	}
	for i, d := range tr.TDErrors() {
		if math.Abs(float64(d)-math.Abs(delta[i])) > 1e-6 {
			t.Errorf("TDErrors[%d] = %v, want %v", i, d, math.Abs(delta[i]))
		}
	}
}

// TestDoubleDQNTargetSelection: the online net prefers action 0, the target net values action
// 1 higher, so double DQN must take Q̄(s',0) and plain DQN max_a Q̄(s',a) = Q̄(s',1).
func TestDoubleDQNTargetSelection(t *testing.T) {
	s := Spec{Inputs: 2, Outputs: 2}
	online := make([]float32, s.NumParams())
	target := make([]float32, s.NumParams())
	copy(online[4:], []float32{1, 0}) // argmax_a Q(s',a) = 0
	copy(target[4:], []float32{5, 7}) // Q̄(s',·) = (5, 7)
	b := &Batch{Size: 2, Obs: make([]float32, 4), Actions: []int32{0, 1},
		Rewards: []float32{1, 2}, Discounts: []float32{0.5, 0}, NextObs: []float32{1, 1, 2, 2}}
	for _, c := range []struct {
		double bool
		want   []float32
	}{{true, []float32{1 + 0.5*5, 2}}, {false, []float32{1 + 0.5*7, 2}}} {
		cfg := DefaultTrainConfig()
		cfg.BatchSize = 2
		cfg.DoubleDQN = c.double
		tr := newTestTrainer(t, s, cfg, online)
		st := tr.State()
		st.Target = target
		if err := tr.Restore(st); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Update(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tr.targets, c.want) {
			t.Errorf("double=%v: targets %v, want %v", c.double, tr.targets, c.want)
		}
	}
}

func TestSyncAndSoftUpdateTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := Spec{Inputs: 3, Hidden: []int{4}, Outputs: 2}
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 8
	tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
	for range 5 {
		if _, err := tr.Update(randomBatch(s, 8, rng)); err != nil {
			t.Fatal(err)
		}
	}
	online, before := tr.CopyParams(nil), tr.CopyTargetParams(nil)
	if slices.Equal(online, before) {
		t.Fatal("updates did not move the online net")
	}
	const tau = 0.25
	tr.SoftUpdateTarget(tau)
	after := tr.CopyTargetParams(nil)
	for i := range after {
		want := tau*float64(online[i]) + (1-tau)*float64(before[i])
		if math.Abs(float64(after[i])-want) > 1e-6 {
			t.Fatalf("soft update param %d: %v, want τθ+(1−τ)θ̄ = %v", i, after[i], want)
		}
	}
	// The constant column must survive Polyak averaging exactly, or the bias breaks.
	if !constColumnsIntact(tr.target, tr.net.layers) {
		t.Error("soft update damaged the augmented constant column")
	}
	tr.SyncTarget()
	if got := tr.CopyTargetParams(nil); !slices.Equal(got, online) {
		t.Error("SyncTarget: target != online")
	}
}

func constColumnsIntact(aug []float32, layers []augLayer) bool {
	for _, l := range layers {
		if !l.constCol() {
			continue
		}
		g := l.g(aug)
		for r := 0; r <= l.in; r++ {
			want := float32(0)
			if r == l.in {
				want = 1
			}
			if g[r*l.cols+l.out] != want {
				return false
			}
		}
	}
	return true
}

// TestStateRestoreRoundTrip: a trainer restored from a checkpoint makes bit-identical updates.
func TestStateRestoreRoundTrip(t *testing.T) {
	for _, s := range []Spec{{Inputs: 4, Hidden: []int{16, 8}, Outputs: 3}, gradSpecs[3].spec} {
		t.Run(fmt.Sprint(s), func(t *testing.T) { testStateRestore(t, s) })
	}
}

func testStateRestore(t *testing.T, s Spec) {
	rng := rand.New(rand.NewPCG(8, 9))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 16
	a := newTestTrainer(t, s, cfg, InitParams(s, rng))
	batches := make([]*Batch, 6)
	for i := range batches {
		batches[i] = randomBatch(s, 16, rng)
	}
	for _, b := range batches[:3] {
		if _, err := a.Update(b); err != nil {
			t.Fatal(err)
		}
	}
	a.SoftUpdateTarget(0.5)
	st := a.State()
	if st.AdamStep != 3 {
		t.Errorf("AdamStep = %d, want 3", st.AdamStep)
	}
	snapshot := a.State()
	st.Online[0] += 100 // State is a deep copy
	if a.CopyParams(nil)[0] == st.Online[0] {
		t.Fatal("State shares memory with the trainer")
	}
	b := newTestTrainer(t, s, cfg, InitParams(s, rng))
	if err := b.Restore(snapshot); err != nil {
		t.Fatal(err)
	}
	for i, batch := range batches[3:] {
		sa, err1 := a.Update(batch)
		sb, err2 := b.Update(batch)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if sa != sb || !slices.Equal(a.TDErrors(), b.TDErrors()) {
			t.Errorf("update %d after restore: %+v vs %+v", i, sa, sb)
		}
	}
	if !slices.Equal(a.CopyParams(nil), b.CopyParams(nil)) || !slices.Equal(a.State().AdamV, b.State().AdamV) {
		t.Error("restored trainer diverged")
	}
}

// TestFastTapeMatchesStandard: the reflective no-Reset runner (tape.go) on the pruned
// subgraph (model.go) must compute exactly what gorgonia's documented Reset+RunAll on the
// whole graph computes, over many updates (stale registers would show up from the second run
// on). The conv chains put nets.Patches and its col2im gradient on the tape.
func TestFastTapeMatchesStandard(t *testing.T) {
	for _, s := range []Spec{{Inputs: 4, Hidden: []int{32, 32}, Outputs: 3}, withDueling(minAtar),
		gradSpec("convs3"), withLN(gradSpec("convs2+dueling")), NatureSpec(84, 84, 4, 6)} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			if testing.Short() && s.NumParams() > 1e6 {
				t.Skip("Nature: 20 updates on the standard machine")
			}
			testFastTape(t, s)
		})
	}
}

func testFastTape(t *testing.T, s Spec) {
	rng := rand.New(rand.NewPCG(21, 22))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 32
	init := InitParams(s, rng)
	fast := newTestTrainer(t, s, cfg, init)
	if fast.model.runner == nil {
		t.Fatal("fast tape runner unavailable for this gorgonia version")
	}
	useStandardVM, useWholeGraph = true, true
	std := newTestTrainer(t, s, cfg, init)
	useStandardVM, useWholeGraph = false, false
	for i := range 20 {
		b := randomBatch(s, 32, rng)
		b.Weights = make([]float32, 32)
		for j := range b.Weights {
			b.Weights[j] = rng.Float32()
		}
		sf, err1 := fast.Update(b)
		ss, err2 := std.Update(b)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if sf != ss || !slices.Equal(fast.online, std.online) {
			t.Fatalf("update %d: fast %+v, standard %+v (params equal: %v)", i, sf, ss, slices.Equal(fast.online, std.online))
		}
		if i%5 == 4 {
			fast.SyncTarget()
			std.SyncTarget()
		}
	}
}

func TestErrors(t *testing.T) {
	s := Spec{Inputs: 2, Hidden: []int{3}, Outputs: 2}
	p := InitParams(s, rand.New(rand.NewPCG(1, 2)))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 4
	if _, err := NewTrainer(s, cfg, p[:len(p)-1]); !errors.Is(err, ErrParamLen) {
		t.Errorf("NewTrainer(short params) = %v, want ErrParamLen", err)
	}
	if _, err := NewTrainer(Spec{Inputs: 2}, cfg, p); !errors.Is(err, ErrSpec) {
		t.Errorf("NewTrainer(bad spec) = %v, want ErrSpec", err)
	}
	for _, mut := range []func(*TrainConfig){
		func(c *TrainConfig) { c.BatchSize = 0 },
		func(c *TrainConfig) { c.LearningRate = 0 },
		func(c *TrainConfig) { c.AdamBeta1 = 1 },
		func(c *TrainConfig) { c.AdamBeta2 = -0.1 },
		func(c *TrainConfig) { c.AdamEps = 0 },
		func(c *TrainConfig) { c.MaxGradNorm = -1 },
	} {
		bad := cfg
		mut(&bad)
		if _, err := NewTrainer(s, bad, p); !errors.Is(err, ErrConfig) {
			t.Errorf("NewTrainer(%+v) = %v, want ErrConfig", bad, err)
		}
	}

	tr := newTestTrainer(t, s, cfg, p)
	rng := rand.New(rand.NewPCG(3, 4))
	good := func() *Batch { return randomBatch(s, 4, rng) }
	for name, b := range map[string]*Batch{
		"nil":        nil,
		"size":       randomBatch(s, 5, rng),
		"obs":        func() *Batch { b := good(); b.Obs = b.Obs[1:]; return b }(),
		"next obs":   func() *Batch { b := good(); b.NextObs = nil; return b }(),
		"actions":    func() *Batch { b := good(); b.Actions = b.Actions[:3]; return b }(),
		"action < 0": func() *Batch { b := good(); b.Actions[2] = -1; return b }(),
		"action ≥ n": func() *Batch { b := good(); b.Actions[2] = 2; return b }(),
		"rewards":    func() *Batch { b := good(); b.Rewards = nil; return b }(),
		"discounts":  func() *Batch { b := good(); b.Discounts = b.Discounts[:1]; return b }(),
		"weights":    func() *Batch { b := good(); b.Weights = []float32{1}; return b }(),
	} {
		if _, err := tr.Update(b); !errors.Is(err, ErrBatch) {
			t.Errorf("Update(%s) = %v, want ErrBatch", name, err)
		}
	}

	before := tr.CopyParams(nil)
	b := good()
	b.Rewards[1] = float32(math.Inf(1))
	if _, err := tr.Update(b); !errors.Is(err, ErrNonFinite) {
		t.Errorf("Update(+Inf reward) = %v, want ErrNonFinite", err)
	}
	if !slices.Equal(before, tr.CopyParams(nil)) || tr.Steps() != 0 {
		t.Error("a non-finite update changed the parameters")
	}
	if _, err := tr.Update(good()); err != nil {
		t.Errorf("update after a rejected one: %v", err)
	}

	st := tr.State()
	st.AdamV = st.AdamV[:2]
	if err := tr.Restore(st); !errors.Is(err, ErrParamLen) {
		t.Errorf("Restore(short AdamV) = %v, want ErrParamLen", err)
	}
	tr.Close()
	if _, err := tr.Update(good()); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
}

func TestCopyParamsReusesDst(t *testing.T) {
	s := Spec{Inputs: 2, Hidden: []int{3}, Outputs: 2}
	p := InitParams(s, rand.New(rand.NewPCG(1, 2)))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 2
	tr := newTestTrainer(t, s, cfg, p)
	dst := make([]float32, 0, 100)
	got := tr.CopyParams(dst)
	if !slices.Equal(got, p) || &got[0] != &dst[:1][0] {
		t.Errorf("CopyParams = %v (reused: %v), want %v in dst", got, &got[0] == &dst[:1][0], p)
	}
}

// TestLearnsRegression: with Discounts = 0 the target is the reward, so DQN reduces to
// regressing Q(s,a) on r(s,a); a small net must fit r = s₀ − s₁ for a=0, s₀·s₁ for a=1.
func TestLearnsRegression(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	s := Spec{Inputs: 2, Hidden: []int{32, 32}, Outputs: 2}
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 32
	cfg.LearningRate = 3e-3
	tr := newTestTrainer(t, s, cfg, InitParams(s, rng))
	batch := func() *Batch {
		b := randomBatch(s, 32, rng)
		for i := range b.Size {
			s0, s1 := b.Obs[2*i], b.Obs[2*i+1]
			if b.Actions[i] == 0 {
				b.Rewards[i] = s0 - s1
			} else {
				b.Rewards[i] = s0 * s1
			}
			b.Discounts[i] = 0
		}
		return b
	}
	checkLossFalls(t, tr, batch, 800)
}

// checkLossFalls trains tr on batch() and checks that the mean loss of 20
// updates after `train` more has fallen below a fifth of the first 20's.
func checkLossFalls(t *testing.T, tr *Trainer, batch func() *Batch, train int) {
	t.Helper()
	meanLoss := func(n int) float64 {
		var sum float64
		for range n {
			st, err := tr.Update(batch())
			if err != nil {
				t.Fatal(err)
			}
			sum += float64(st.Loss)
		}
		return sum / float64(n)
	}
	first := meanLoss(20)
	meanLoss(train)
	last := meanLoss(20)
	t.Logf("mean loss: first 20 updates %.4f, after %d updates %.4f", first, train+20, last)
	if !(last < first/5) {
		t.Errorf("loss did not fall enough: %.4f → %.4f", first, last)
	}
}
