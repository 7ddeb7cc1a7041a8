package nets

// forwardBatch is Forward's state for many observations at once: the parameters in the
// learner's augmented layout (layout.go), so that each layer is one matrix product over the
// whole batch on the learner's kernel, and batchForward's scratch for up to rows
// observations.
//
// Why a second path instead of Q in a loop: Q's affine is a matrix-vector product that skips
// zero inputs, the fastest for one observation, but it streams each layer's weights from
// memory once per observation. One product per layer reads the weights once for the whole
// vector of envs and keeps the kernel's 4×16 register block busy: for a runner stepping
// envs_per_runner envs that is the difference between N passes over the weights and one.
type forwardBatch struct {
	net   augNet
	aug   []float32 // params in augmented layout; valid unless stale
	stale bool      // SetParams ran since aug was written
	rows  int       // observations the scratch holds
	acts  *fwdBufs
}

// QBatch returns the Q-values of n observations (obs: n·Spec.Inputs values, row-major) as an
// n×Outputs row-major matrix in an internal buffer valid until the next call. Row i equals
// Q(obs[i·Inputs:]) up to float32 rounding: the sums run in another order (bias last, zero
// inputs not skipped), so values may differ in the last bits and an exact tie may break
// differently. It allocates only when n exceeds every earlier call's (and once after
// NewForward, for the augmented parameters).
func (f *Forward) QBatch(obs []float32, n int) []float32 {
	b := &f.batch
	if n > b.rows {
		b.acts = newFwdBufs(b.net, n)
		b.rows = n
	}
	if b.aug == nil {
		b.aug = make([]float32, b.net.n)
		b.stale = true
	}
	if b.stale {
		toAug(b.aug, b.net.layers, f.params)
		b.stale = false
	}
	return batchForward(&f.mm, b.net, b.aug, obs[:n*f.spec.Inputs], n, b.acts)
}

// GreedyBatch writes argmax_a Q(obs_i, a) of n observations into out[:n], the lowest index on
// ties, with one matrix product per layer (QBatch). For n = 1 it is Greedy itself (the
// matrix-vector path is the faster one for a single observation), so a runner of one env
// acts exactly as before.
func (f *Forward) GreedyBatch(obs []float32, n int, out []int32) {
	if n == 1 {
		out[0] = int32(f.Greedy(obs[:f.spec.Inputs]))
		return
	}
	q := f.QBatch(obs, n)
	k := f.spec.Outputs
	for i := range out[:n] {
		out[i] = int32(argmax(q[i*k : (i+1)*k]))
	}
}
