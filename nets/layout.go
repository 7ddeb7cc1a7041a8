package nets

// The gradient graph and the learner's batched forward passes keep each layer as one
// "augmented" matrix G_l of shape (in+1)×cols, so a layer is a single matrix product with no
// separate bias op:
//
//	[h, 1] · G_l = [h·W_l + b_l, 1]      (hidden layers: cols = out+1)
//	[h, 1] · G_l =  h·W_l + b_l          (output layer:  cols = out)
//
// Rows 0..in−1 of G_l hold W_l, row in holds b_l. Hidden layers carry one extra column that is
// 0 except for a 1 in the bias row: it reproduces the constant 1 in the next layer's input
// (ReLU(1) = 1), so the ones column of the observations propagates through the whole net.
// The extra column is not a parameter: its gradient is masked to 0 before clipping and Adam,
// which then leave it exactly unchanged. The public flat layout (W_l then b_l) is the same
// matrix without the extra column, so converting between the two is a strided copy.

// augLayer is one layer in augmented layout.
type augLayer struct {
	layerShape     // position in the flat layout
	cols       int // out+1 for hidden layers, out for the output layer
	aoff       int // offset of G_l in the augmented vector
}

func (l augLayer) hidden() bool { return l.cols != l.out }

// g returns G_l, row-major (in+1)×cols.
func (l augLayer) g(p []float32) []float32 { return p[l.aoff : l.aoff+(l.in+1)*l.cols] }

// augLayers lists the layers in augmented layout and the augmented vector's length.
func augLayers(s Spec) ([]augLayer, int) {
	ls := s.layers()
	out := make([]augLayer, len(ls))
	n := 0
	for i, l := range ls {
		cols := l.out
		if i != len(ls)-1 {
			cols++
		}
		out[i] = augLayer{layerShape: l, cols: cols, aoff: n}
		n += (l.in + 1) * cols
	}
	return out, n
}

// toAug writes flat parameters into augmented layout, stamping the constant column.
func toAug(aug []float32, layers []augLayer, flat []float32) {
	for _, l := range layers {
		g := l.g(aug)
		src := flat[l.off : l.off+(l.in+1)*l.out]
		for r := 0; r <= l.in; r++ {
			copy(g[r*l.cols:r*l.cols+l.out], src[r*l.out:(r+1)*l.out])
			if l.hidden() {
				g[r*l.cols+l.out] = 0
			}
		}
		if l.hidden() {
			g[l.in*l.cols+l.out] = 1
		}
	}
}

// fromAug appends the flat layout of aug to dst (dst is reused when it has the capacity).
func fromAug(dst []float32, layers []augLayer, aug []float32, n int) []float32 {
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	for _, l := range layers {
		g := l.g(aug)
		d := dst[l.off : l.off+(l.in+1)*l.out]
		for r := 0; r <= l.in; r++ {
			copy(d[r*l.out:(r+1)*l.out], g[r*l.cols:r*l.cols+l.out])
		}
	}
	return dst
}

// maskAug zeroes the constant column of every hidden layer (in gradients and Adam moments).
func maskAug(v []float32, layers []augLayer) {
	for _, l := range layers {
		if !l.hidden() {
			continue
		}
		g := l.g(v)
		for r := 0; r <= l.in; r++ {
			g[r*l.cols+l.out] = 0
		}
	}
}

// batchForward evaluates the network on a batch outside the gradient graph (target values are
// inference: no gradient, so no reason to pay for graph bookkeeping). x is B×(in+1) with a
// trailing 1 per row; acts holds one B×cols scratch matrix per layer, made by newActs; it
// returns the B×out Q-values (the last scratch matrix).
//
//	act_{l+1} = ReLU([act_l, 1] · G_l)   (no ReLU after the last layer)
//
// Each product writes only the out real columns (ldc = cols): the constant column of every
// scratch matrix is filled with ones once by newActs, and n stays a multiple of 16 for
// 64-wide layers.
func batchForward(mm *gemm, layers []augLayer, params, x []float32, batch int, acts [][]float32) []float32 {
	in := x
	for i, l := range layers {
		out := acts[i][:batch*l.cols]
		mm.mulAct(false, false, batch, l.out, l.in+1, in, l.in+1, l.g(params), l.cols, out, l.cols, l.hidden())
		in = out
	}
	return in
}

// newActs allocates batchForward's scratch matrices with their constant columns set to 1.
func newActs(layers []augLayer, batch int) [][]float32 {
	acts := make([][]float32, len(layers))
	for i, l := range layers {
		a := make([]float32, batch*l.cols)
		if l.hidden() {
			for r := range batch {
				a[r*l.cols+l.out] = 1
			}
		}
		acts[i] = a
	}
	return acts
}
