package nets

// Forward is the runner-side inference path: plain Go, no gorgonia, zero allocations per call.
// A Forward is not safe for concurrent use: one goroutine at a time (give each runner its own).
type Forward struct {
	spec   Spec
	layers []layerShape
	params []float32
	bufA   []float32 // activations ping-pong between bufA and bufB
	bufB   []float32
}

// NewForward returns a Forward with all parameters zero; call SetParams before use.
// It panics on an invalid Spec.
func NewForward(s Spec) *Forward {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	w := s.maxWidth()
	return &Forward{
		spec:   s.clone(),
		layers: s.layers(),
		params: make([]float32, s.NumParams()),
		bufA:   make([]float32, w),
		bufB:   make([]float32, w),
	}
}

// Spec returns the network shape.
func (f *Forward) Spec() Spec { return f.spec.clone() }

// SetParams copies p (flat layout, see Spec) into the Forward.
func (f *Forward) SetParams(p []float32) error {
	if err := checkParamLen(f.spec, p); err != nil {
		return err
	}
	copy(f.params, p)
	return nil
}

// Q returns the Q-values for one observation in an internal buffer that is valid until the
// next call. obs must have Spec.Inputs elements.
func (f *Forward) Q(obs []float32) []float32 {
	in := obs[:f.spec.Inputs]
	cur, next := f.bufA, f.bufB
	last := len(f.layers) - 1
	for li, l := range f.layers {
		out := next[:l.out]
		affine(out, in, l.w(f.params), l.b(f.params))
		if li != last {
			relu(out)
		}
		in = out
		cur, next = next, cur
	}
	return in
}

// Greedy returns argmax_a Q(obs, a), the lowest index on ties.
func (f *Forward) Greedy(obs []float32) int {
	return argmax(f.Q(obs))
}

// affine computes out = b + xᵀ·W for W row-major [len(x)][len(out)].
// Rows of W whose input is 0 (about half of them after a ReLU) are skipped; for the others,
// W's row is added into out with a 4-way unrolled axpy that walks memory contiguously.
func affine(out, x, w, b []float32) {
	n := len(out)
	copy(out, b)
	for i, xi := range x {
		if xi == 0 {
			continue
		}
		axpy(out, xi, w[i*n:i*n+n])
	}
}

// axpy computes y += a·x, 4-way unrolled.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
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

// relu computes x = max(x, 0) in place (see reluToGo).
func relu(x []float32) { reluToGo(x, x) }

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
