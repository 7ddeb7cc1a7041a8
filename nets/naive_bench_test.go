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

func naiveMLP(g *G.ExprGraph, s Spec, x *G.Node, params []*tensor.Dense, prefix string) (*G.Node, G.Nodes) {
	var nodes G.Nodes
	h := x
	ls := s.layers()
	for i, l := range ls {
		W := G.NewMatrix(g, tensor.Float32, G.WithShape(l.in, l.out), G.WithName(fmt.Sprint(prefix, "W", i)), G.WithValue(params[2*i]))
		b := G.NewVector(g, tensor.Float32, G.WithShape(l.out), G.WithName(fmt.Sprint(prefix, "b", i)), G.WithValue(params[2*i+1]))
		nodes = append(nodes, W, b)
		h = G.Must(G.BroadcastAdd(G.Must(G.Mul(h, W)), b, nil, []byte{0}))
		if i != len(ls)-1 {
			h = G.Must(G.Rectify(h))
		}
	}
	return h, nodes
}

func naiveParams(s Spec, flat []float32) []*tensor.Dense {
	var ps []*tensor.Dense
	for _, l := range s.layers() {
		ps = append(ps,
			tensor.New(tensor.WithShape(l.in, l.out), tensor.WithBacking(append([]float32(nil), l.w(flat)...))),
			tensor.New(tensor.WithShape(l.out), tensor.WithBacking(append([]float32(nil), l.b(flat)...))))
	}
	return ps
}

func newNaiveDQN(s Spec, cfg TrainConfig, init []float32) *naiveDQN {
	n := &naiveDQN{spec: s, batch: cfg.BatchSize}
	B := cfg.BatchSize
	mk := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	n.x, n.act, n.y, n.w, n.xNext = mk(B, s.Inputs), mk(B, s.Outputs), mk(B), mk(B), mk(B, s.Inputs)
	n.onlineP, n.targetP = naiveParams(s, init), naiveParams(s, init)

	gn := G.NewGraph()
	xn := G.NewMatrix(gn, tensor.Float32, G.WithShape(B, s.Inputs), G.WithName("xNext"), G.WithValue(n.xNext))
	qo, _ := naiveMLP(gn, s, xn, n.onlineP, "o")
	qt, _ := naiveMLP(gn, s, xn, n.targetP, "t")
	G.Read(qo, &n.nextOnlineQ)
	G.Read(qt, &n.nextTgQ)
	n.nextVM = G.NewTapeMachine(gn)

	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(B, s.Inputs), G.WithName("x"), G.WithValue(n.x))
	q, learn := naiveMLP(g, s, x, n.onlineP, "")
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
	copy(n.xNext.Data().([]float32), b.NextObs)
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
	copy(n.x.Data().([]float32), b.Obs)
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
	// Gradients accumulate across runs (NOTES-deps.md): zero them.
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
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			cfg := DefaultTrainConfig()
			cfg.BatchSize = n
			d := newNaiveDQN(cartPole, cfg, InitParams(cartPole, rng))
			batches := make([]*Batch, 8)
			for i := range batches {
				batches[i] = randomBatch(cartPole, n, rng)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := d.update(batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}
