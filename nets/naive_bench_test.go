package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// naiveDQN is the learner written the way gorgonia's examples do it, kept only as the
// benchmark baseline for the README: W and b per layer with BroadcastAdd, Rectify, the s'
// forward passes in a second graph, Reset+RunAll every step, gorgonia's AdamSolver with
// clipping, gonum BLAS, and the package-global default engine.
type naiveDQN struct {
	spec                 Spec
	batch                int
	trainVM, nextVM      G.VM
	solver               G.Solver
	learn                G.Nodes
	x, act, y, w, xNext  *tensor.Dense
	onlineP, targetP     []*tensor.Dense // parameter tensors (W0, b0, W1, b1, ...)
	nextOnlineQ, nextTgQ G.Value
}

// naiveNet builds the network from gorgonia's stock ops, the way its examples do: W and b per
// layer with BroadcastAdd and Rectify; for a conv net, Conv2d on a BCHW input with the
// PyTorch layouts (filter F×C×K×K, channel-first flatten); for a dueling head, two streams
// and Mean/BroadcastSub/BroadcastAdd. x is B×Inputs for an MLP, B×C×H×W for a conv net
// (toBCHW). params comes from naiveParams.
func naiveNet(g *G.ExprGraph, s Spec, x *G.Node, params []*tensor.Dense, prefix string) (*G.Node, G.Nodes) {
	var nodes G.Nodes
	param := func(name string, i int) *G.Node {
		t := params[i]
		n := G.NodeFromAny(g, t, G.WithName(fmt.Sprint(prefix, name, i)))
		nodes = append(nodes, n)
		return n
	}
	h := x
	i := 0
	convs := s.ConvLayers()
	for _, c := range convs {
		filter, b := param("filter", i), param("bias", i+1)
		i += 2
		st := c.stride()
		z := G.Must(G.Conv2d(h, filter, tensor.Shape{c.Kernel, c.Kernel}, nil, []int{st, st}, nil))
		z = G.Must(G.BroadcastAdd(z, b, nil, []byte{0, 2, 3}))
		h = G.Must(G.Rectify(z))
	}
	if len(convs) > 0 {
		h = G.Must(G.Reshape(h, tensor.Shape{h.Shape()[0], convs[len(convs)-1].features()}))
	}
	dense := func(h *G.Node, W, b *G.Node) *G.Node {
		return G.Must(G.BroadcastAdd(G.Must(G.Mul(h, W)), b, nil, []byte{0}))
	}
	for range s.Hidden {
		h = G.Must(G.Rectify(dense(h, param("W", i), param("b", i+1))))
		i += 2
	}
	if !s.Dueling {
		return dense(h, param("W", i), param("b", i+1)), nodes
	}
	v := dense(h, param("Wv", i), param("bv", i+1))   // B×1
	a := dense(h, param("Wa", i+2), param("ba", i+3)) // B×n
	meanA := G.Must(G.Mean(a, 1))                     // B
	meanA = G.Must(G.Reshape(meanA, tensor.Shape{meanA.Shape()[0], 1}))
	q := G.Must(G.BroadcastSub(a, meanA, nil, []byte{1}))
	return G.Must(G.BroadcastAdd(q, v, nil, []byte{1})), nodes
}

// naiveParams converts the flat layout into naiveNet's tensors: per dense layer W (in×out) and
// b (out); the conv's filter permuted to PyTorch's F×C×K×K and the first dense layer's rows to
// PyTorch's channel-first flatten; the dueling head split into its V and A streams.
func naiveParams(s Spec, flat []float32) []*tensor.Dense {
	var ps []*tensor.Dense
	mat := func(rows, cols int, data []float32) *tensor.Dense {
		return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(data))
	}
	vec := func(data []float32) *tensor.Dense {
		return tensor.New(tensor.WithShape(len(data)), tensor.WithBacking(data))
	}
	ls := s.layers()
	for li, l := range ls {
		w, b := append([]float32(nil), l.w(flat)...), append([]float32(nil), l.b(flat)...)
		switch {
		case l.conv:
			c := s.ConvLayers()[li]
			k, ch, f := c.Kernel, c.Channels, c.Filters
			filter := make([]float32, len(w))
			for ky := range k {
				for kx := range k {
					for ci := range ch {
						for fi := range f {
							filter[((fi*ch+ci)*k+ky)*k+kx] = w[((ky*k+kx)*ch+ci)*f+fi]
						}
					}
				}
			}
			ps = append(ps, tensor.New(tensor.WithShape(f, ch, k, k), tensor.WithBacking(filter)), vec(b))
		case li == len(ls)-1 && s.Dueling:
			n := s.Outputs
			wv, wa := make([]float32, l.in), make([]float32, l.in*n)
			for r := range l.in {
				wv[r] = w[r*(n+1)]
				copy(wa[r*n:(r+1)*n], w[r*(n+1)+1:(r+1)*(n+1)])
			}
			ps = append(ps, mat(l.in, 1, wv), vec(b[:1]), mat(l.in, n, wa), vec(b[1:]))
		default:
			if convs := s.ConvLayers(); len(convs) > 0 && li == len(convs) {
				// rows (oy·OW+ox)·F+f → PyTorch's (f·OH+oy)·OW+ox
				c := convs[len(convs)-1]
				pt := make([]float32, len(w))
				for pos := range c.positions() {
					for fi := range c.Filters {
						copy(pt[(fi*c.positions()+pos)*l.out:][:l.out], w[(pos*c.Filters+fi)*l.out:][:l.out])
					}
				}
				w = pt
			}
			ps = append(ps, mat(l.in, l.out, w), vec(b))
		}
	}
	return ps
}

// toBCHW permutes batch observations from channel-last (the package's layout) to gorgonia's
// Conv2d layout B×C×H×W.
func toBCHW(dst, obs []float32, c *ConvSpec, batch int) {
	hw := c.Height * c.Width
	for b := range batch {
		src, d := obs[b*c.inputs():(b+1)*c.inputs()], dst[b*c.inputs():(b+1)*c.inputs()]
		for p := range hw {
			for ci := range c.Channels {
				d[ci*hw+p] = src[p*c.Channels+ci]
			}
		}
	}
}

// naiveInput makes the input node for naiveNet over t.
func naiveInput(g *G.ExprGraph, name string, t *tensor.Dense) *G.Node {
	return G.NodeFromAny(g, t, G.WithName(name))
}

// naiveInputTensor allocates the input tensor for a batch: B×Inputs, or B×C×H×W for conv.
func naiveInputTensor(s Spec, batch int) *tensor.Dense {
	if convs := s.ConvLayers(); len(convs) > 0 {
		c := convs[0]
		return tensor.New(tensor.WithShape(batch, c.Channels, c.Height, c.Width), tensor.Of(tensor.Float32))
	}
	return tensor.New(tensor.WithShape(batch, s.Inputs), tensor.Of(tensor.Float32))
}

// setNaiveInput copies batch observations into a naiveInputTensor, times Spec.InputScale.
func setNaiveInput(t *tensor.Dense, s Spec, obs []float32, batch int) {
	d := t.Float32s()
	if convs := s.ConvLayers(); len(convs) > 0 {
		toBCHW(d, obs, &convs[0], batch)
	} else {
		copy(d, obs)
	}
	if sc := s.inputScale(); sc != 1 {
		scaleTo(d, d, sc)
	}
}

func newNaiveDQN(s Spec, cfg TrainConfig, init []float32) *naiveDQN {
	n := &naiveDQN{spec: s, batch: cfg.BatchSize}
	B := cfg.BatchSize
	mk := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	n.act, n.y, n.w = mk(B, s.Outputs), mk(B), mk(B)
	n.x, n.xNext = naiveInputTensor(s, B), naiveInputTensor(s, B)
	n.onlineP, n.targetP = naiveParams(s, init), naiveParams(s, init)

	gn := G.NewGraph()
	xn := naiveInput(gn, "xNext", n.xNext)
	qo, _ := naiveNet(gn, s, xn, n.onlineP, "o")
	qt, _ := naiveNet(gn, s, xn, n.targetP, "t")
	G.Read(qo, &n.nextOnlineQ)
	G.Read(qt, &n.nextTgQ)
	n.nextVM = G.NewTapeMachine(gn)

	g := G.NewGraph()
	x := naiveInput(g, "x", n.x)
	q, learn := naiveNet(g, s, x, n.onlineP, "")
	act := G.NewMatrix(g, tensor.Float32, G.WithShape(B, s.Outputs), G.WithName("a"), G.WithValue(n.act))
	y := G.NewVector(g, tensor.Float32, G.WithShape(B), G.WithName("y"), G.WithValue(n.y))
	w := G.NewVector(g, tensor.Float32, G.WithShape(B), G.WithName("w"), G.WithValue(n.w))
	ones := G.NewVector(g, tensor.Float32, G.WithShape(B), G.WithName("ones"),
		G.WithValue(tensor.New(tensor.WithShape(B), tensor.WithBacking(fill(make([]float32, B), 1)))))
	d := G.Must(G.Sub(G.Must(G.Sum(G.Must(G.HadamardProd(q, act)), 1)), y))
	ad := G.Must(G.Abs(d))
	m := G.Must(G.MinBetween(ad, ones))
	huber := G.Must(G.HadamardProd(m, G.Must(G.Sub(ad, G.Must(G.Mul(m, G.NewConstant(float32(0.5))))))))
	loss := G.Must(G.Mean(G.Must(G.HadamardProd(huber, w))))
	if _, err := G.Grad(loss, learn...); err != nil {
		panic(err)
	}
	n.learn = learn
	n.trainVM = G.NewTapeMachine(g, G.BindDualValues(learn...))
	n.solver = G.NewAdamSolver(G.WithLearnRate(cfg.LearningRate), G.WithBeta1(cfg.AdamBeta1),
		G.WithBeta2(cfg.AdamBeta2), G.WithEps(cfg.AdamEps), G.WithClip(cfg.MaxGradNorm))
	return n
}

func (n *naiveDQN) update(b *Batch) error {
	setNaiveInput(n.xNext, n.spec, b.NextObs, b.Size)
	n.nextVM.Reset()
	if err := n.nextVM.RunAll(); err != nil {
		return err
	}
	qo, qt := n.nextOnlineQ.Data().([]float32), n.nextTgQ.Data().([]float32)
	out := n.spec.Outputs
	y := n.y.Data().([]float32)
	for i := range b.Size {
		y[i] = b.Rewards[i] + b.Discounts[i]*qt[i*out+argmax(qo[i*out:(i+1)*out])]
	}
	setNaiveInput(n.x, n.spec, b.Obs, b.Size)
	a := n.act.Data().([]float32)
	clear(a)
	for i, ai := range b.Actions {
		a[i*out+int(ai)] = 1
	}
	fill(n.w.Data().([]float32), 1)
	n.trainVM.Reset()
	if err := n.trainVM.RunAll(); err != nil {
		return err
	}
	if err := n.solver.Step(G.NodesToValueGrads(n.learn)); err != nil {
		return err
	}
	// Gradients accumulate across runs of a gorgonia machine: zero them.
	for _, l := range n.learn {
		if g, err := l.Grad(); err == nil {
			g.(*tensor.Dense).Zero()
		}
	}
	return nil
}

// BenchmarkNaiveGorgoniaUpdate is the "as it comes" baseline for BenchmarkLearnerUpdate.
// (AdamSolver's clip is per element, not a global norm: close enough for a cost baseline.)
func BenchmarkNaiveGorgoniaUpdate(b *testing.B) {
	for _, n := range []int{32, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchNaive(b, cartPole, n) })
	}
}

// BenchmarkNaiveGorgoniaUpdateMinAtar is the "as it comes" baseline for
// BenchmarkLearnerUpdateMinAtar: gorgonia's Conv2d on BCHW input, BroadcastAdd, Rectify.
func BenchmarkNaiveGorgoniaUpdateMinAtar(b *testing.B) {
	for _, n := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchNaive(b, minAtar, n) })
	}
}

func benchNaive(b *testing.B, s Spec, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = n
	d := newNaiveDQN(s, cfg, InitParams(s, rng))
	batches := make([]*Batch, 8)
	for i := range batches {
		batches[i] = randomBatch(s, n, rng)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		if err := d.update(batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu0, "updates")
}
