package nets

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// qModel is the gorgonia half of the learner: the online network on s, the Huber TD loss and
// its gradient, as one graph built once per Trainer and run by one TapeMachine.
//
// Only what needs a gradient is in the graph. The target values Q̄(s', ·) and the online
// Q(s', ·) used by the double-DQN argmax are inference and are computed by batchForward before
// the run; they enter the graph as the target input. That removes two of the three forward
// passes from the graph, and with them most of its ops.
type qModel struct {
	g      *G.ExprGraph
	vm     G.VM
	runner *tapeRunner // nil: plain Reset+RunAll (see tape.go)
	batch  int

	// Inputs: tensors over slices that Trainer.Update fills before each run.
	x, actOneHot, target, weight *G.Node
	xBuf, actBuf                 []float32 // input matrix (augNet.fillInput); B×out one-hot a
	targetBuf, weightBuf         []float32 // B targets; B importance weights already divided by B

	ws []*G.Node // learnables: one augmented matrix per layer (see layout.go), over Trainer.online

	q, qTm1, tdError, loss *G.Node

	// Copied out when their op runs (G.Read): a later op may reuse a value's register, so
	// reading node values after RunAll is not safe.
	qTm1Val, tdVal G.Value
	lossVal        *G.F32
}

// newQModel builds the graph for batch size b over params (augmented layout) with gradients
// written into grads (same layout). Both slices are shared, not copied. The graph's matrix
// products run on mm.
func newQModel(net augNet, b int, params, grads []float32, mm *gemm) (*qModel, error) {
	m := &qModel{g: G.NewGraph(), batch: b}
	rows, cols, out := b*net.inRows(), net.inCols(), net.outputs
	m.xBuf = make([]float32, rows*cols)
	m.actBuf = make([]float32, b*out)
	m.targetBuf = make([]float32, b)
	m.weightBuf = make([]float32, b)
	m.x = inputMatrix(m.g, "x", m.xBuf, rows, cols)
	m.actOneHot = inputMatrix(m.g, "actions", m.actBuf, b, out)
	m.target = inputVector(m.g, "target", m.targetBuf)
	m.weight = inputVector(m.g, "weight", m.weightBuf)

	m.ws = make([]*G.Node, len(net.layers))
	for i, l := range net.layers {
		val := tensor.New(tensor.WithShape(l.in+1, l.cols), tensor.WithBacking(l.g(params)))
		grad := tensor.New(tensor.WithShape(l.in+1, l.cols), tensor.WithBacking(l.g(grads)))
		m.ws[i] = G.NewMatrix(m.g, tensor.Float32, G.WithShape(l.in+1, l.cols),
			G.WithName(fmt.Sprintf("G%d", i)), G.WithValue(val), G.WithGrad(grad))
	}

	if err := m.fwd(m.x, net); err != nil {
		return nil, err
	}
	if err := m.lossExpr(); err != nil {
		return nil, err
	}
	gradNodes, err := G.Grad(m.loss, m.learnables()...)
	if err != nil {
		return nil, fmt.Errorf("nets: gradient of the loss: %w", err)
	}
	m.qTm1Val = tensor.New(tensor.WithShape(b), tensor.Of(tensor.Float32))
	m.tdVal = tensor.New(tensor.WithShape(b), tensor.Of(tensor.Float32))
	m.lossVal = G.NewF32(0)
	var lossV G.Value = m.lossVal
	roots := G.Nodes{
		G.Read(m.qTm1, &m.qTm1Val),
		G.Read(m.tdError, &m.tdVal),
		G.Read(m.loss, &lossV),
	}
	// Compile only what the reads and the parameter gradients need. gorgonia's symbolic
	// differentiation builds the gradient of every operand of an op it differentiates, so the
	// full graph also holds ∂loss/∂x for the input matrix (for a conv net the product
	// dZ·G_cᵀ, as large as the conv itself) and ∂loss/∂onehot(a); nothing reads them, but
	// NewTapeMachine on the whole graph computes them every run. The exact subgraph under
	// these roots leaves them out.
	prog := m.g
	if !useWholeGraph {
		prog = m.g.ExactSubgraphRoots(append(roots, gradNodes...)...)
	}
	// BindDualValues makes the machine add each gradient into the node's dual value, which
	// WithGrad pointed at our grads slice: the gradient lands in place, ready for Adam. The
	// machine adds rather than sets (gradients accumulate across runs), so Update zeroes grads
	// before each run.
	m.vm = G.NewTapeMachine(prog, G.BindDualValues(m.learnables()...),
		G.WithEngine(matmulEngine{gemm: mm}))
	if !useStandardVM {
		if r, err := newTapeRunner(m.vm); err == nil {
			m.runner = r
		} // else: still correct through Reset+RunAll, just slower
	}
	return m, nil
}

// useStandardVM makes new models run gorgonia the documented way (Reset+RunAll); tests
// compare the fast path against it.
var useStandardVM = false

// useWholeGraph makes new models compile the whole graph, dead gradients included (tests).
var useWholeGraph = false

func (m *qModel) learnables() G.Nodes { return m.ws }

// fwd builds the online Q-network on x (the input matrix, trailing ones column) into m.q:
//
//	conv i: P_{i+1} = patches(ReLU(P_i·G_i))   (P_1 = x: the observations' patch matrix)
//	last:   h_1 = flatten(ReLU(P_c·G_c)), 1    (P: one row per output position)
//	dense:  h_{l+1} = ReLU([h_l, 1]·G_l)
//	head:   q = [h_L, 1]·G_L, or dueling(·) of it: V + A − mean(A)
//
// With LayerNorm every ReLU above is ReLU∘LN, one fused op (lnReLUOp).
func (m *qModel) fwd(x *G.Node, net augNet) error {
	h := x
	for i, l := range net.layers {
		a, err := G.Mul(h, m.ws[i])
		if err != nil {
			return fmt.Errorf("nets: layer %d matmul: %w", i, err)
		}
		switch {
		case l.relu() && net.ln:
			// Normalize the layer's l.out units; a dense layer's constant column passes.
			if a, err = lnReLUFn(a, l.out); err != nil {
				return fmt.Errorf("nets: layer %d layernorm+relu: %w", i, err)
			}
		case l.relu():
			if a, err = reluFn(a); err != nil {
				return fmt.Errorf("nets: layer %d relu: %w", i, err)
			}
		}
		switch {
		case l.conv && i+1 < len(net.convs):
			// The next conv's input is this layer's output, a graph node: its patch matrix
			// is built in the graph, with col2im as its gradient.
			if a, err = patches(a, net.convs[i+1]); err != nil {
				return fmt.Errorf("nets: layer %d patches: %w", i+1, err)
			}
		case l.conv:
			if a, err = flattenOnes(a, net.convs[i].positions()); err != nil {
				return fmt.Errorf("nets: layer %d flatten: %w", i, err)
			}
		}
		h = a
	}
	if net.dueling {
		var err error
		if h, err = dueling(h); err != nil {
			return fmt.Errorf("nets: dueling head: %w", err)
		}
	}
	m.q = h
	return nil
}

// lossExpr builds the weighted Huber(δ=1) TD loss.
//
//	qTm1 = Σ_a q(s,·)⊙onehot(a)          (gather by one-hot: gorgonia's ByIndices has a wrong gradient)
//	δ    = qTm1 − target
//	m    = min(|δ|, 1)
//	loss = Σ_i (w_i/B)·m_i·(|δ_i| − ½m_i)  (= Huber: ½δ² if |δ| ≤ 1, |δ| − ½ otherwise)
func (m *qModel) lossExpr() error {
	var err error
	wrap := func(step string, e error) error { return fmt.Errorf("nets: loss %s: %w", step, e) }
	picked, err := G.HadamardProd(m.q, m.actOneHot)
	if err != nil {
		return wrap("gather", err)
	}
	if m.qTm1, err = G.Sum(picked, 1); err != nil {
		return wrap("gather sum", err)
	}
	if m.tdError, err = G.Sub(m.qTm1, m.target); err != nil {
		return wrap("td error", err)
	}
	absTD, err := G.Abs(m.tdError)
	if err != nil {
		return wrap("abs", err)
	}
	// Constants enter as vectors, not scalars: gorgonia's preallocated-output path rejects
	// scalar operands and falls back after building an error with a stack trace, every run.
	ones := inputVector(m.g, "ones", fill(make([]float32, m.batch), 1))
	halves := inputVector(m.g, "halves", fill(make([]float32, m.batch), 0.5))
	clipped, err := G.MinBetween(absTD, ones)
	if err != nil {
		return wrap("clip", err)
	}
	halfClipped, err := G.HadamardProd(clipped, halves)
	if err != nil {
		return wrap("half", err)
	}
	lin, err := G.Sub(absTD, halfClipped)
	if err != nil {
		return wrap("linear part", err)
	}
	huber, err := G.HadamardProd(clipped, lin)
	if err != nil {
		return wrap("huber", err)
	}
	weighted, err := G.HadamardProd(huber, m.weight)
	if err != nil {
		return wrap("weights", err)
	}
	// Σ_i (w_i/B)·huber_i: the weights already carry 1/B, so a sum is the weighted mean.
	if m.loss, err = G.Sum(weighted); err != nil {
		return wrap("weighted mean", err)
	}
	return nil
}

// run executes forward and backward once on the current input buffers.
func (m *qModel) run() error {
	if m.runner != nil {
		if err := m.runner.exec(); err != nil {
			return fmt.Errorf("nets: gorgonia run: %w", err)
		}
		return nil
	}
	m.vm.Reset()
	if err := m.vm.RunAll(); err != nil {
		return fmt.Errorf("nets: gorgonia run: %w", err)
	}
	return nil
}

func (m *qModel) close() {
	if m.vm != nil {
		m.vm.Close()
	}
}

func inputMatrix(g *G.ExprGraph, name string, backing []float32, rows, cols int) *G.Node {
	t := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(backing))
	return G.NewMatrix(g, tensor.Float32, G.WithShape(rows, cols), G.WithName(name), G.WithValue(t))
}

func inputVector(g *G.ExprGraph, name string, backing []float32) *G.Node {
	t := tensor.New(tensor.WithShape(len(backing)), tensor.WithBacking(backing))
	return G.NewVector(g, tensor.Float32, G.WithShape(len(backing)), G.WithName(name), G.WithValue(t))
}

func fill(x []float32, v float32) []float32 {
	for i := range x {
		x[i] = v
	}
	return x
}

// gorgoniaForward runs the gorgonia forward pass (the graph the learner differentiates) on a
// batch of observations and returns the B×out Q-values. Tests compare Forward against it.
func gorgoniaForward(s Spec, params, obs []float32, batch int) ([]float32, error) {
	if err := checkParamLen(s, params); err != nil {
		return nil, err
	}
	net := newAugNet(s)
	aug := make([]float32, net.n)
	toAug(aug, net.layers, params)
	m := &qModel{g: G.NewGraph(), batch: batch}
	rows, cols := batch*net.inRows(), net.inCols()
	xBuf := make([]float32, rows*cols)
	net.fillInput(xBuf, obs, batch)
	x := inputMatrix(m.g, "x", xBuf, rows, cols)
	m.ws = make([]*G.Node, len(net.layers))
	for i, l := range net.layers {
		val := tensor.New(tensor.WithShape(l.in+1, l.cols), tensor.WithBacking(l.g(aug)))
		m.ws[i] = G.NewMatrix(m.g, tensor.Float32, G.WithShape(l.in+1, l.cols),
			G.WithName(fmt.Sprintf("G%d", i)), G.WithValue(val))
	}
	if err := m.fwd(x, net); err != nil {
		return nil, err
	}
	var qVal G.Value = tensor.New(tensor.WithShape(batch, s.Outputs), tensor.Of(tensor.Float32))
	G.Read(m.q, &qVal)
	vm := G.NewTapeMachine(m.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, fmt.Errorf("nets: gorgonia forward: %w", err)
	}
	return append([]float32(nil), qVal.Data().([]float32)...), nil
}
