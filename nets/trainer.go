package nets

import (
	"errors"
	"fmt"
	"math"
)

// ErrBatch is returned (wrapped) by Trainer.Update for a batch of the wrong size or shape.
var ErrBatch = errors.New("nets: invalid batch")

// ErrConfig is returned (wrapped) by TrainConfig.Validate and NewTrainer.
var ErrConfig = errors.New("nets: invalid train config")

// ErrNonFinite is returned (wrapped) by Trainer.Update when the loss or gradient is NaN or
// ±Inf. The update is then skipped, so one bad batch cannot poison the parameters.
var ErrNonFinite = errors.New("nets: non-finite loss or gradient")

// ErrClosed is returned by Trainer.Update after Close.
var ErrClosed = errors.New("nets: trainer closed")

// Batch holds B transitions for one DQN update (n-step ready).
type Batch struct {
	Size      int
	Obs       []float32 // Size*Inputs: s_t
	Actions   []int32   // Size: a_t in [0, Outputs)
	Rewards   []float32 // Size: the (n-step discounted) reward Σ_{k<n} γᵏ·r_{t+k}
	Discounts []float32 // Size: γⁿ·(1−terminated); 0 at a true terminal, γⁿ after truncation
	NextObs   []float32 // Size*Inputs: s_{t+n}
	Weights   []float32 // optional importance-sampling weights (prioritized replay); nil means all 1
}

// TrainConfig is the learning rule of one Trainer.
type TrainConfig struct {
	// BatchSize is the number of transitions per update. The gradient graph is built for
	// exactly this size (Update rejects others). Larger batches give less noisy gradients at a
	// higher cost per update; updates/s falls roughly linearly above ~128 on CPU.
	BatchSize int
	// LearningRate is Adam's step size. Higher learns faster and less stably.
	LearningRate float64
	// AdamBeta1 and AdamBeta2 are the decay rates of Adam's first and second moment estimates.
	AdamBeta1, AdamBeta2 float64
	// AdamEps is added to √v̂ in Adam's denominator; it bounds the step for tiny gradients.
	AdamEps float64
	// MaxGradNorm clips the global L2 norm of the gradient to this value (PyTorch's
	// clip_grad_norm_); 0 disables clipping.
	MaxGradNorm float64
	// DoubleDQN selects the next action with the online network and values it with the target
	// network, which reduces the max operator's overestimation:
	// target = r + disc·Q̄(s', argmax_a Q(s',a)); otherwise target = r + disc·max_a Q̄(s',a).
	DoubleDQN bool
}

// DefaultTrainConfig is the learner's default update: batch 128, Adam at lr
// 5e-4 with PyTorch's defaults β = (0.9, 0.999), ε = 1e-8, the gradient norm
// clipped at 10, double DQN on. actors.DefaultConfig takes its learner
// settings from here, so that the defaults are written once.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		BatchSize:    128,
		LearningRate: 5e-4,
		AdamBeta1:    0.9,
		AdamBeta2:    0.999,
		AdamEps:      1e-8,
		MaxGradNorm:  10,
		DoubleDQN:    true,
	}
}

// Validate reports the first rule the config breaks.
func (c TrainConfig) Validate() error {
	switch {
	case c.BatchSize <= 0:
		return fmt.Errorf("%w: BatchSize must be > 0, got %d", ErrConfig, c.BatchSize)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("%w: LearningRate must be finite and > 0, got %v", ErrConfig, c.LearningRate)
	case !(c.AdamBeta1 >= 0 && c.AdamBeta1 < 1):
		return fmt.Errorf("%w: AdamBeta1 must be in [0, 1), got %v", ErrConfig, c.AdamBeta1)
	case !(c.AdamBeta2 >= 0 && c.AdamBeta2 < 1):
		return fmt.Errorf("%w: AdamBeta2 must be in [0, 1), got %v", ErrConfig, c.AdamBeta2)
	case !(c.AdamEps > 0):
		return fmt.Errorf("%w: AdamEps must be > 0, got %v", ErrConfig, c.AdamEps)
	case !(c.MaxGradNorm >= 0) || math.IsInf(c.MaxGradNorm, 0):
		return fmt.Errorf("%w: MaxGradNorm must be finite and >= 0 (0 disables), got %v", ErrConfig, c.MaxGradNorm)
	}
	return nil
}

// UpdateStats summarises one update.
type UpdateStats struct {
	Loss  float32 // weighted mean Huber loss before the step
	MeanQ float32 // mean over the batch of Q(s,a) for the actions taken, before the step
}

// TrainerState is a deep copy of everything a Trainer learns, in the flat layout (see Spec).
type TrainerState struct {
	Online, Target []float32
	AdamM, AdamV   []float32 // Adam's first and second moment estimates
	AdamStep       int64     // Adam's t: updates done
}

// Trainer owns the online and target networks and the Adam state, and performs DQN updates
// with gorgonia (forward, Huber loss, backward). It is not safe for concurrent use: one
// goroutine at a time, typically the learner's.
type Trainer struct {
	spec  Spec
	cfg   TrainConfig
	net   augNet // layers in augmented layout (net.n: length of the augmented vectors)
	nFlat int    // Spec.NumParams()

	// Augmented layout (layout.go). online and grads back the graph's tensors.
	online, target, grads []float32
	adamM, adamV          []float32
	step                  int64

	model *qModel
	gemm  gemm // matrix products of the graph and of the target passes

	// Scratch for the targets, computed outside the graph.
	actsOnline, actsTarget *fwdBufs
	absTD                  []float32
	targets                []float32 // y of the last update (for tests)
	closed                 bool
}

// NewTrainer builds the gradient graph for cfg.BatchSize and sets online = target = init
// (flat layout, copied).
func NewTrainer(s Spec, cfg TrainConfig, init []float32) (*Trainer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkParamLen(s, init); err != nil {
		return nil, err
	}
	net := newAugNet(s)
	b, n := cfg.BatchSize, net.n
	t := &Trainer{
		spec:    s.clone(),
		cfg:     cfg,
		net:     net,
		nFlat:   s.NumParams(),
		online:  make([]float32, n),
		target:  make([]float32, n),
		grads:   make([]float32, n),
		adamM:   make([]float32, n),
		adamV:   make([]float32, n),
		absTD:   make([]float32, b),
		targets: make([]float32, b),
	}
	toAug(t.online, net.layers, init)
	copy(t.target, t.online)
	t.actsOnline = newFwdBufs(net, b)
	t.actsTarget = newFwdBufs(net, b)
	m, err := newQModel(net, b, t.online, t.grads, &t.gemm)
	if err != nil {
		return nil, fmt.Errorf("nets: build trainer graph: %w", err)
	}
	t.model = m
	return t, nil
}

// Spec returns the network shape.
func (t *Trainer) Spec() Spec { return t.spec.clone() }

// Config returns the learning rule.
func (t *Trainer) Config() TrainConfig { return t.cfg }

// SetLearningRate changes Adam's step size from the next update on: a learner's schedule
// sets it as the run goes.
func (t *Trainer) SetLearningRate(lr float64) { t.cfg.LearningRate = lr }

// Steps returns the number of updates applied (Adam's t).
func (t *Trainer) Steps() int64 { return t.step }

func (t *Trainer) checkBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrBatch)
	}
	n, in := b.Size, t.spec.Inputs
	switch {
	case n != t.cfg.BatchSize:
		return fmt.Errorf("%w: size %d, trainer built for %d", ErrBatch, n, t.cfg.BatchSize)
	case len(b.Obs) != n*in:
		return fmt.Errorf("%w: len(Obs) = %d, want %d", ErrBatch, len(b.Obs), n*in)
	case len(b.NextObs) != n*in:
		return fmt.Errorf("%w: len(NextObs) = %d, want %d", ErrBatch, len(b.NextObs), n*in)
	case len(b.Actions) != n:
		return fmt.Errorf("%w: len(Actions) = %d, want %d", ErrBatch, len(b.Actions), n)
	case len(b.Rewards) != n:
		return fmt.Errorf("%w: len(Rewards) = %d, want %d", ErrBatch, len(b.Rewards), n)
	case len(b.Discounts) != n:
		return fmt.Errorf("%w: len(Discounts) = %d, want %d", ErrBatch, len(b.Discounts), n)
	case b.Weights != nil && len(b.Weights) != n:
		return fmt.Errorf("%w: len(Weights) = %d, want %d or nil", ErrBatch, len(b.Weights), n)
	}
	for i, a := range b.Actions {
		if a < 0 || int(a) >= t.spec.Outputs {
			return fmt.Errorf("%w: Actions[%d] = %d outside [0, %d)", ErrBatch, i, a, t.spec.Outputs)
		}
	}
	return nil
}

// Update performs one DQN step on b: targets from the target network, Huber(δ=1) loss on the
// TD error as a weighted mean over the batch, backward pass, global-norm clipping, Adam.
func (t *Trainer) Update(b *Batch) (UpdateStats, error) {
	stats, norm, err := t.lossAndGrad(b)
	if err != nil {
		return stats, err
	}
	if c := t.cfg.MaxGradNorm; c > 0 {
		clipByNorm(t.grads, norm, c)
	}
	t.step++
	adamStep(t.online, t.grads, t.adamM, t.adamV, t.step, t.cfg)
	return stats, nil
}

// lossAndGrad runs everything but the parameter step: targets, gorgonia forward and
// backward. It leaves ∂loss/∂θ in t.grads (augmented layout, constant column masked) and
// returns the stats and ‖∂loss/∂θ‖₂.
func (t *Trainer) lossAndGrad(b *Batch) (UpdateStats, float64, error) {
	if t.closed {
		return UpdateStats{}, 0, ErrClosed
	}
	if err := t.checkBatch(b); err != nil {
		return UpdateStats{}, 0, err
	}
	m := t.model
	t.computeTargets(b)
	copy(m.targetBuf, t.targets)
	t.net.fillInput(m.xBuf, b.Obs, b.Size)
	clear(m.actBuf)
	out := t.spec.Outputs
	for i, a := range b.Actions {
		m.actBuf[i*out+int(a)] = 1
	}
	invB := 1 / float32(b.Size)
	if b.Weights == nil {
		fill(m.weightBuf, invB)
	} else {
		for i, w := range b.Weights {
			m.weightBuf[i] = w * invB
		}
	}

	clear(t.grads) // the machine accumulates into grads
	if err := m.run(); err != nil {
		return UpdateStats{}, 0, err
	}
	td := m.tdVal.Data().([]float32)
	for i, d := range td {
		t.absTD[i] = float32(math.Abs(float64(d)))
	}
	stats := UpdateStats{Loss: float32(*m.lossVal), MeanQ: mean32(m.qTm1Val.Data().([]float32))}
	maskAug(t.grads, t.net.layers)
	norm := l2norm(t.grads)
	if !isFinite(norm) || !isFinite(float64(stats.Loss)) {
		return stats, norm, fmt.Errorf("%w: loss %v, gradient norm %v at step %d", ErrNonFinite, stats.Loss, norm, t.step)
	}
	return stats, norm, nil
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// computeTargets fills t.targets outside the gradient graph (stop-gradient, plain BLAS).
//
//	double: target = r + disc·Q̄(s', argmax_a Q(s',a))
//	else:   target = r + disc·max_a Q̄(s',a)
func (t *Trainer) computeTargets(b *Batch) {
	n, out := b.Size, t.spec.Outputs
	qT := batchForward(&t.gemm, t.net, t.target, b.NextObs, n, t.actsTarget)
	var qOnline []float32
	if t.cfg.DoubleDQN {
		qOnline = batchForward(&t.gemm, t.net, t.online, b.NextObs, n, t.actsOnline)
	}
	for i := range n {
		disc := b.Discounts[i]
		y := b.Rewards[i]
		if disc != 0 { // a terminal ignores Q̄(s'), even a non-finite one
			row := qT[i*out : (i+1)*out]
			var v float32
			if qOnline != nil {
				v = row[argmax(qOnline[i*out:(i+1)*out])]
			} else {
				v = row[argmax(row)]
			}
			y += disc * v
		}
		t.targets[i] = y
	}
}

// TDErrors returns |δ| = |Q(s,a) − target| per transition of the last Update (for replay
// priorities), in a buffer valid until the next Update.
func (t *Trainer) TDErrors() []float32 { return t.absTD }

// CopyParams writes the online parameters (flat layout) into dst, reusing dst's storage when
// it has the capacity (else allocating), and returns the filled slice.
func (t *Trainer) CopyParams(dst []float32) []float32 {
	return fromAug(dst, t.net.layers, t.online, t.nFlat)
}

// CopyTargetParams is CopyParams for the target network.
func (t *Trainer) CopyTargetParams(dst []float32) []float32 {
	return fromAug(dst, t.net.layers, t.target, t.nFlat)
}

// SyncTarget copies the online network into the target network: θ̄ ← θ.
func (t *Trainer) SyncTarget() { copy(t.target, t.online) }

// SoftUpdateTarget moves the target network towards the online one (Polyak averaging):
// θ̄ ← τ·θ + (1−τ)·θ̄, written θ̄ += τ·(θ − θ̄) so the constant column stays exact.
func (t *Trainer) SoftUpdateTarget(tau float64) {
	tf := float32(tau)
	for i, w := range t.online {
		t.target[i] += tf * (w - t.target[i])
	}
}

// State returns a deep copy of the learned state (for checkpoints).
func (t *Trainer) State() TrainerState {
	return TrainerState{
		Online:   fromAug(nil, t.net.layers, t.online, t.nFlat),
		Target:   fromAug(nil, t.net.layers, t.target, t.nFlat),
		AdamM:    fromAug(nil, t.net.layers, t.adamM, t.nFlat),
		AdamV:    fromAug(nil, t.net.layers, t.adamV, t.nFlat),
		AdamStep: t.step,
	}
}

// Restore replaces the learned state with st (copied). On error nothing changes.
func (t *Trainer) Restore(st TrainerState) error {
	for _, f := range []struct {
		name string
		v    []float32
	}{{"Online", st.Online}, {"Target", st.Target}, {"AdamM", st.AdamM}, {"AdamV", st.AdamV}} {
		if err := checkParamLen(t.spec, f.v); err != nil {
			return fmt.Errorf("nets: restore %s: %w", f.name, err)
		}
	}
	if st.AdamStep < 0 {
		return fmt.Errorf("nets: restore: negative AdamStep %d", st.AdamStep)
	}
	toAug(t.online, t.net.layers, st.Online)
	toAug(t.target, t.net.layers, st.Target)
	toAug(t.adamM, t.net.layers, st.AdamM)
	toAug(t.adamV, t.net.layers, st.AdamV)
	maskAug(t.adamM, t.net.layers) // moments of the constant column are 0, not 1
	maskAug(t.adamV, t.net.layers)
	t.step = st.AdamStep
	return nil
}

// Close releases the gorgonia machine. The Trainer is unusable afterwards.
func (t *Trainer) Close() {
	if t.closed {
		return
	}
	t.closed = true
	t.model.close()
}

// fillAug copies B rows of width in from src, times scale, into dst rows of width in+1
// ending in a 1.
func fillAug(dst, src []float32, in int, scale float32) {
	rows := len(src) / in
	for r := range rows {
		d := dst[r*(in+1) : (r+1)*(in+1)]
		if scale == 1 {
			copy(d, src[r*in:(r+1)*in])
		} else {
			scaleTo(d[:in], src[r*in:(r+1)*in], scale)
		}
		d[in] = 1
	}
}

func mean32(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s / float64(len(x)))
}
