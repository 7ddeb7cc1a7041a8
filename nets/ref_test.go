package nets

import "math"

// Float64 reference implementation of the network and loss, written independently of the
// gorgonia graph and of the augmented layout: it reads the flat layout directly.

func refQ(s Spec, p []float64, obs []float64) []float64 {
	h := obs
	if sc := s.InputScale; sc != 0 {
		h = make([]float64, len(obs))
		for i, v := range obs {
			h[i] = v * float64(sc)
		}
	}
	ls := s.layers()
	for _, c := range s.ConvLayers() { // each conv reads the previous one's HWC output
		h = refConv(s, c, ls[0], p, h)
		ls = ls[1:]
	}
	for li, l := range ls {
		out := make([]float64, l.out)
		for j := range l.out {
			z := p[l.off+l.in*l.out+j] // b_j
			for i := range l.in {
				z += h[i] * p[l.off+i*l.out+j]
			}
			out[j] = z
		}
		if li != len(ls)-1 {
			if s.LayerNorm {
				refLN(out)
			}
			for j, z := range out {
				out[j] = math.Max(z, 0)
			}
		}
		h = out
	}
	if s.Dueling { // Q(s,a) = V(s) + A(s,a) − mean_a' A(s,a'), h = [V, A]
		n := s.Outputs
		var meanA float64
		for _, a := range h[1:] {
			meanA += a / float64(n)
		}
		q := make([]float64, n)
		for j := range q {
			q[j] = h[0] + h[1+j] - meanA
		}
		h = q
	}
	return h
}

// refConv is the valid convolution with stride S and ReLU (with s.LayerNorm, LN over the
// filters at each position before it), written from ConvSpec's layout description:
// x[y][x][c] at (y·W+x)·C+c, W[ky][kx][c][f] at row (ky·K+kx)·C+c, bias after, output
// z[oy][ox][f] at (oy·OW+ox)·F+f from x[oy·S+ky][ox·S+kx][c], OH = ⌊(H−K)/S⌋+1 (PyTorch's
// floor), stride 0 read as 1.
func refConv(s Spec, c ConvSpec, l layerShape, p, obs []float64) []float64 {
	k, ch, f, st := c.Kernel, c.Channels, c.Filters, max(c.Stride, 1)
	oh, ow := (c.Height-k)/st+1, (c.Width-k)/st+1
	w, b := p[l.off:l.off+k*k*ch*f], p[l.off+k*k*ch*f:l.off+(k*k*ch+1)*f]
	z := make([]float64, oh*ow*f)
	for oy := range oh {
		for ox := range ow {
			for fi := range f {
				v := b[fi]
				for ky := range k {
					for kx := range k {
						for ci := range ch {
							v += obs[((oy*st+ky)*c.Width+ox*st+kx)*ch+ci] * w[((ky*k+kx)*ch+ci)*f+fi]
						}
					}
				}
				z[(oy*ow+ox)*f+fi] = v
			}
			if s.LayerNorm {
				refLN(z[(oy*ow+ox)*f : (oy*ow+ox+1)*f])
			}
		}
	}
	for i, v := range z {
		z[i] = math.Max(v, 0)
	}
	return z
}

// refLN is LayerNorm without gain or bias, in place: (a − mean(a))/√(var(a) + 1e-5), the
// biased variance, as PyTorch's nn.LayerNorm(n, elementwise_affine=False).
func refLN(a []float64) {
	var mean, v float64
	for _, x := range a {
		mean += x
	}
	mean /= float64(len(a))
	for _, x := range a {
		v += (x - mean) * (x - mean)
	}
	r := 1 / math.Sqrt(v/float64(len(a))+1e-5)
	for i, x := range a {
		a[i] = (x - mean) * r
	}
}

func refArgmax(q []float64) int {
	best := 0
	for i := range q {
		if q[i] > q[best] {
			best = i
		}
	}
	return best
}

// refTargets: y = r + disc·Q̄(s', argmax_a Q(s',a)) (double) or r + disc·max_a Q̄(s',a).
func refTargets(s Spec, online, target []float64, b *Batch, double bool) []float64 {
	y := make([]float64, b.Size)
	for i := range b.Size {
		next := f64(b.NextObs[i*s.Inputs : (i+1)*s.Inputs])
		qT := refQ(s, target, next)
		a := refArgmax(qT)
		if double {
			a = refArgmax(refQ(s, online, next))
		}
		y[i] = float64(b.Rewards[i]) + float64(b.Discounts[i])*qT[a]
	}
	return y
}

func refHuber(d float64) float64 {
	if a := math.Abs(d); a > 1 {
		return a - 0.5
	}
	return 0.5 * d * d
}

// refLoss = (1/B)·Σ_i w_i·Huber(Q(s_i,a_i) − y_i), with y held fixed (stop-gradient).
func refLoss(s Spec, online []float64, b *Batch, y []float64) float64 {
	var l float64
	for i := range b.Size {
		q := refQ(s, online, f64(b.Obs[i*s.Inputs:(i+1)*s.Inputs]))
		w := 1.0
		if b.Weights != nil {
			w = float64(b.Weights[i])
		}
		l += w * refHuber(q[b.Actions[i]]-y[i])
	}
	return l / float64(b.Size)
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
