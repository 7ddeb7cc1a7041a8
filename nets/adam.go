package nets

import "math"

// l2norm returns ‖g‖₂ = √(Σ g²), accumulated in float64.
func l2norm(g []float32) float64 {
	var s float64
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
func adamStep(theta, g, m, v []float32, t int64, c TrainConfig) {
	b1, b2 := float32(c.AdamBeta1), float32(c.AdamBeta2)
	bc1 := 1 - math.Pow(c.AdamBeta1, float64(t))
	bc2 := 1 - math.Pow(c.AdamBeta2, float64(t))
	step := float32(c.LearningRate / bc1)
	invSqrtBC2 := float32(1 / math.Sqrt(bc2))
	eps := float32(c.AdamEps)
	g = g[:len(theta)]
	m = m[:len(theta)]
	v = v[:len(theta)]
	for i, gi := range g {
		mi := b1*m[i] + (1-b1)*gi
		vi := b2*v[i] + (1-b2)*gi*gi
		m[i], v[i] = mi, vi
		theta[i] -= step * mi / (float32(math.Sqrt(float64(vi)))*invSqrtBC2 + eps)
	}
}
