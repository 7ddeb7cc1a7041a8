package nets

import "math"

// Forward is the runner-side inference path: plain Go, no gorgonia, zero allocations per call.
// A Forward is not safe for concurrent use: one goroutine at a time (give each runner its own).
type Forward struct {
	spec   Spec
	layers []layerShape
	params []float32
	bufA   []float32 // activations ping-pong between bufA and bufB
	bufB   []float32
	nz     []int32 // affine's indices of non-zero inputs

	// Conv nets only: the observation's patch matrices and maps (positions × (K²·C+1), see
	// ConvSpec.im2col), and the matrix product that applies each conv.
	conv convScratch
	mm   gemm
	// scaled is the MLP's input times Spec.InputScale (nil without scaling).
	scaled []float32

	batch forwardBatch // QBatch and GreedyBatch (forward_batch.go)
}

// NewForward returns a Forward with all parameters zero; call SetParams before use.
// It panics on an invalid Spec.
func NewForward(s Spec) *Forward {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	w := s.maxWidth()
	f := &Forward{
		spec:   s.clone(),
		layers: s.layers(),
		params: make([]float32, s.NumParams()),
		bufA:   make([]float32, w),
		bufB:   make([]float32, w),
		nz:     make([]int32, w),
		batch:  forwardBatch{net: newAugNet(s)},
	}
	if convs := f.batch.net.convs; len(convs) > 0 {
		f.conv = newConvScratch(convs)
		for _, c := range convs {
			f.mm.reserve(c.Filters, c.patchSize()+1) // so that no call allocates
		}
	} else if s.inputScale() != 1 {
		f.scaled = make([]float32, s.Inputs)
	}
	return f
}

// Spec returns the network shape.
func (f *Forward) Spec() Spec { return f.spec.clone() }

// SetParams copies p (flat layout, see Spec) into the Forward.
func (f *Forward) SetParams(p []float32) error {
	if err := checkParamLen(f.spec, p); err != nil {
		return err
	}
	copy(f.params, p)
	f.batch.stale = true
	return nil
}

// Q returns the Q-values for one observation in an internal buffer that is valid until the
// next call. obs must have Spec.Inputs elements.
//
//	conv i:  z_i = ReLU(P_i·[W_i; b_i]), P_1 the observation's patch matrix (ConvSpec.im2col,
//	         times InputScale), P_{i+1} that of z_i
//	dense:   h = ReLU(b + h·W), h_0 the last z (or the observation times InputScale)
//	head:    q = b + h·W, or with Dueling q = V + A − mean(A) on [V, A]
//	LayerNorm: ReLU(LN(·)) in place of each ReLU (lnReLURows)
//
// Each conv runs as one small matrix product on the learner's kernel (gemm): positions×(K²·C+1)
// by (K²·C+1)×F, 38k multiply-adds for MinAtar, a microsecond or two whatever the
// observation's sparsity. A conv layer's flat parameters (W then b) already are the
// (K²·C+1)×F matrix, and the patch rows end in a 1, so the bias comes with the product and
// ReLU is fused into its stores (convSample, shared with the batched passes).
func (f *Forward) Q(obs []float32) []float32 {
	in := obs[:f.spec.Inputs]
	cur, next := f.bufA, f.bufB
	ln := f.spec.LayerNorm
	net := &f.batch.net
	dense := f.layers
	switch c := net.lastConv(); {
	case c != nil:
		net.firstPatches(in, &f.conv)
		in = next[:c.features()]
		net.convSample(&f.mm, f.params, f.conv.p[0], in, &f.conv)
		cur, next = next, cur
		dense = f.layers[len(net.convs):]
	case f.scaled != nil:
		scaleTo(f.scaled, in, net.scale)
		in = f.scaled
	}
	last := len(dense) - 1
	for li, l := range dense {
		out := next[:l.out]
		affine(out, in, l.w(f.params), l.b(f.params), f.nz)
		switch {
		case li != last && ln:
			lnReLURows(out, out, 1, l.out, l.out)
		case li != last:
			relu(out)
		}
		in = out
		cur, next = next, cur
	}
	if f.spec.Dueling {
		q := next[:f.spec.Outputs]
		duel(q, in, 1, f.spec.Outputs)
		return q
	}
	return in
}

// Greedy returns argmax_a Q(obs, a), the lowest index on ties.
func (f *Forward) Greedy(obs []float32) int {
	return argmax(f.Q(obs))
}

// affine computes out = b + xᵀ·W for W row-major [len(x)][len(out)].
// Rows of W whose input is 0 (about half of them after a ReLU) are skipped. Their indices are
// gathered first without a branch (a branch on a ReLU's output mispredicts half the time),
// then W's row for each non-zero input is added into out with axpy, walking memory
// contiguously. nz is scratch of at least len(x).
func affine(out, x, w, b []float32, nz []int32) {
	n := len(out)
	copy(out, b)
	nz = nz[:len(x)]
	k := 0
	for i, xi := range x {
		nz[k] = int32(i)
		// 1 unless xi is ±0: |bits| + 0x7fffffff carries into bit 31 exactly when |bits| ≠ 0.
		k += int(((math.Float32bits(xi) &^ (1 << 31)) + 0x7fffffff) >> 31)
	}
	for _, i := range nz[:k] {
		axpy(out, x[i], w[int(i)*n:int(i)*n+n])
	}
}

// axpy computes y += a·x: with AVX2 eight lanes at a time (FMA), the rest 4-way unrolled.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	if haveKernel && len(y) >= 8 {
		i = len(y) &^ 7
		axpy8(y[:i], a, x[:i])
	}
	for ; i+4 <= len(y); i += 4 {
		yy := y[i : i+4 : i+4]
		xx := x[i : i+4 : i+4]
		yy[0] += a * xx[0]
		yy[1] += a * xx[1]
		yy[2] += a * xx[2]
		yy[3] += a * xx[3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// relu computes x = max(x, 0) in place (branchless: reluTo, or reluToGo without AVX).
func relu(x []float32) {
	if haveKernel {
		reluTo(x, x)
		return
	}
	reluToGo(x, x)
}

// argmax returns the index of the largest value, the lowest on ties; NaNs never win.
func argmax(q []float32) int {
	best := 0
	for i := 1; i < len(q); i++ {
		if q[i] > q[best] {
			best = i
		}
	}
	return best
}
