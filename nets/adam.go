package nets

import "math"

// l2norm returns ‖g‖₂ = √(Σ g²), accumulated in float64 (AVX2 for all but the last < 16
// elements: the update of a MinAtar-sized net has 10⁵ of them).
func l2norm(g []float32) float64 {
	var s float64
	if haveKernel {
		n := len(g) &^ 15
		s = sumSquares16(g[:n])
		g = g[n:]
	}
	for _, v := range g {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// clipByNorm scales g by maxNorm/(norm+1e-6) when that is below 1, as PyTorch's
// clip_grad_norm_ does.
func clipByNorm(g []float32, norm, maxNorm float64) {
	coef := maxNorm / (norm + 1e-6)
	if coef >= 1 {
		return
	}
	c := float32(coef)
	for i := range g {
		g[i] *= c
	}
}

// adamStep applies one Adam update in place (PyTorch's torch.optim.Adam, no weight decay).
// gorgonia's AdamSolver clones four tensors per parameter per step; this allocates nothing.
//
//	m = β₁·m + (1−β₁)·g,  v = β₂·v + (1−β₂)·g²
//	θ -= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
//
// The element loop is adamGo; with AVX it runs eight lanes at a time (adam8), with the same
// operations in the same order, so both give the same bits. It matters for conv nets: the
// MinAtar net has 1.3·10⁵ parameters and a scalar sqrt and divide each took a quarter of an
// update.
func adamStep(theta, g, m, v []float32, t int64, c TrainConfig) {
	b1, b2 := float32(c.AdamBeta1), float32(c.AdamBeta2)
	bc1 := 1 - math.Pow(c.AdamBeta1, float64(t))
	bc2 := 1 - math.Pow(c.AdamBeta2, float64(t))
	k := [7]float32{b1, 1 - b1, b2, 1 - b2, float32(c.LearningRate / bc1), float32(1 / math.Sqrt(bc2)), float32(c.AdamEps)}
	g = g[:len(theta)]
	m = m[:len(theta)]
	v = v[:len(theta)]
	if haveKernel {
		n := len(theta) &^ 7
		adam8(theta[:n], g[:n], m[:n], v[:n], &k)
		theta, g, m, v = theta[n:], g[n:], m[n:], v[n:]
	}
	adamGo(theta, g, m, v, &k)
}

// adamGo is adamStep's element loop; k is as for adam8. The explicit float32 conversions
// forbid the compiler to fuse a multiply and an add (it may on GOAMD64=v3), which would make
// the bits differ from adam8.
func adamGo(theta, g, m, v []float32, k *[7]float32) {
	b1, c1, b2, c2, step, invSqrtBC2, eps := k[0], k[1], k[2], k[3], k[4], k[5], k[6]
	g = g[:len(theta)]
	m = m[:len(theta)]
	v = v[:len(theta)]
	for i, gi := range g {
		mi := float32(b1*m[i]) + float32(c1*gi)
		vi := float32(b2*v[i]) + float32(float32(c2*gi)*gi)
		m[i], v[i] = mi, vi
		d := float32(float32(math.Sqrt(float64(vi)))*invSqrtBC2) + eps
		theta[i] -= float32(step*mi) / d
	}
}
