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
//
// A conv layer is the (K²·C+1)×F matrix G_c applied to every row of the patch matrix, whose
// rows end in a 1 (ConvSpec.im2col). It has no constant column: the 1 for the first dense
// layer is appended when the feature maps are flattened (flattenOp, or batchForward's
// per-sample products).

// augLayer is one layer in augmented layout.
type augLayer struct {
	layerShape     // position in the flat layout
	cols       int // out+1 for dense hidden layers (constant column), out for the conv and the head
	aoff       int // offset of G_l in the augmented vector
}

// constCol reports whether G_l carries the constant column (dense hidden layers). The conv
// layer does not: its output is per position, and the 1 for the next layer is appended when
// the feature maps are flattened (conv_op.go).
func (l augLayer) constCol() bool { return l.cols != l.out }

// relu reports whether ReLU follows the layer: every layer but the head.
func (l augLayer) relu() bool { return l.constCol() || l.conv }

// g returns G_l, row-major (in+1)×cols.
func (l augLayer) g(p []float32) []float32 { return p[l.aoff : l.aoff+(l.in+1)*l.cols] }

// augNet is a Spec resolved for the learner: its layers in augmented layout and what the
// batched passes need around them.
type augNet struct {
	layers  []augLayer
	n       int       // length of an augmented parameter vector
	conv    *ConvSpec // nil for an MLP
	dueling bool
	ln      bool // Spec.LayerNorm: hidden layers are ReLU(LN(·)), see layernorm.go
	inputs  int  // Spec.Inputs
	outputs int  // Spec.Outputs (Q-values; the dueling head has one more column)
}

// newAugNet lays s out in augmented form. It allocates; call it at construction time only.
func newAugNet(s Spec) augNet {
	ls := s.layers()
	out := make([]augLayer, len(ls))
	n := 0
	for i, l := range ls {
		cols := l.out
		if i != len(ls)-1 && !l.conv {
			cols++
		}
		out[i] = augLayer{layerShape: l, cols: cols, aoff: n}
		n += (l.in + 1) * cols
	}
	s = s.clone()
	return augNet{layers: out, n: n, conv: s.Conv, dueling: s.Dueling, ln: s.LayerNorm,
		inputs: s.Inputs, outputs: s.Outputs}
}

// inRows and inCols give the shape of the network's input matrix per observation: one row of
// the observation and a trailing 1 for an MLP, one row per output position of the patch and
// a trailing 1 for a conv net (im2col).
func (a augNet) inRows() int {
	if a.conv != nil {
		return a.conv.positions()
	}
	return 1
}

func (a augNet) inCols() int {
	if a.conv != nil {
		return a.conv.patchSize() + 1
	}
	return a.inputs + 1
}

// fillInput writes the input matrix of batch observations (batch·inRows × inCols) into dst.
func (a augNet) fillInput(dst, obs []float32, batch int) {
	if a.conv != nil {
		a.conv.im2col(dst, obs, batch)
		return
	}
	fillAug(dst[:batch*(a.inputs+1)], obs[:batch*a.inputs], a.inputs)
}

// toAug writes flat parameters into augmented layout, stamping the constant column.
func toAug(aug []float32, layers []augLayer, flat []float32) {
	for _, l := range layers {
		g := l.g(aug)
		src := flat[l.off : l.off+(l.in+1)*l.out]
		for r := 0; r <= l.in; r++ {
			copy(g[r*l.cols:r*l.cols+l.out], src[r*l.out:(r+1)*l.out])
			if l.constCol() {
				g[r*l.cols+l.out] = 0
			}
		}
		if l.constCol() {
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
		if !l.constCol() {
			continue
		}
		g := l.g(v)
		for r := 0; r <= l.in; r++ {
			g[r*l.cols+l.out] = 0
		}
	}
}

// batchForward evaluates the network on a batch outside the gradient graph (target values are
// inference: no gradient, so no reason to pay for graph bookkeeping). x is the input matrix
// (fillInput); acts holds the scratch matrices made by newActs; it returns the B×Outputs
// Q-values (the last scratch matrix).
//
//	act_{l+1} = ReLU([act_l, 1] · G_l)   (no ReLU after the head)
//	conv:       act_1[b] = ReLU(P_b · G_c) flattened, then 1   (P_b: sample b's patch rows)
//	dueling:    Q = V + A − mean(A) on the head's [V, A]
//	LayerNorm:  ReLU(LN(·)) instead of ReLU, per row of the product (lnReLURows)
//
// Each product writes only the out real columns (ldc = cols): the constant column of every
// scratch matrix is filled with ones once by newActs, and n stays a multiple of 16 for
// 64-wide layers. The conv runs one product per sample, writing the sample's P×F feature
// map straight into its row of the flattened matrix (row stride P·F+1), so the flatten costs
// nothing here.
func batchForward(mm *gemm, net augNet, params, x []float32, batch int, acts [][]float32) []float32 {
	in := x
	for i, l := range net.layers {
		out := acts[i]
		// With LayerNorm the product is stored as it is and normalized in place before ReLU;
		// without, ReLU is fused into the product's stores.
		ln := net.ln && l.relu()
		if l.conv {
			p, f := net.conv.positions(), l.out
			for b := range batch {
				z := out[b*(p*f+1):]
				mm.mulAct(false, false, p, f, l.in+1, in[b*p*(l.in+1):], l.in+1, l.g(params), l.cols,
					z, f, !ln)
				if ln {
					lnReLURows(z, z, p, f, f)
				}
			}
		} else {
			out = out[:batch*l.cols]
			mm.mulAct(false, false, batch, l.out, l.in+1, in, l.in+1, l.g(params), l.cols, out, l.cols, l.relu() && !ln)
			if ln {
				lnReLURows(out, out, batch, l.out, l.cols)
			}
		}
		in = out
	}
	if net.dueling {
		q := acts[len(net.layers)][:batch*net.outputs]
		duel(q, in, batch, net.outputs)
		return q
	}
	return in
}

// newActs allocates batchForward's scratch matrices with their constant columns set to 1:
// one per layer (the conv's is the flattened B×(P·F+1) matrix) and, when dueling, one for
// the aggregated Q-values.
func newActs(net augNet, batch int) [][]float32 {
	acts := make([][]float32, 0, len(net.layers)+1)
	for _, l := range net.layers {
		rows, cols, one := batch, l.cols, l.constCol()
		if l.conv {
			cols, one = net.conv.features()+1, true
		}
		a := make([]float32, rows*cols)
		if one {
			for r := range rows {
				a[r*cols+cols-1] = 1
			}
		}
		acts = append(acts, a)
	}
	if net.dueling {
		acts = append(acts, make([]float32, batch*net.outputs))
	}
	return acts
}
