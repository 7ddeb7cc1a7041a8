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
// rows end in a 1 (ConvSpec.im2col). It has no constant column: the 1 for the next layer is
// appended when the next conv's patches are built (patchesOp) or, after the last conv, when
// the feature maps are flattened (flattenOp, or batchForward's per-sample products). The conv
// layers come first, so their augmented offsets and shapes are their flat ones: G_c is the
// same slice of either vector (convSample relies on it).

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
	n       int        // length of an augmented parameter vector
	convs   []ConvSpec // the conv torso (layers[:len(convs)]); nil for an MLP
	dueling bool
	ln      bool    // Spec.LayerNorm: hidden layers are ReLU(LN(·)), see layernorm.go
	scale   float32 // Spec.InputScale, 0 read as 1
	inputs  int     // Spec.Inputs
	outputs int     // Spec.Outputs (Q-values; the dueling head has one more column)
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
		if l.conv && (out[i].aoff != l.off || cols != l.out) {
			panic("nets: a conv layer's augmented layout differs from its flat one")
		}
		n += (l.in + 1) * cols
	}
	return augNet{layers: out, n: n, convs: s.ConvLayers(), dueling: s.Dueling, ln: s.LayerNorm,
		scale: s.inputScale(), inputs: s.Inputs, outputs: s.Outputs}
}

// lastConv is the conv layer whose features feed the dense layers; nil for an MLP.
func (a augNet) lastConv() *ConvSpec {
	if len(a.convs) == 0 {
		return nil
	}
	return &a.convs[len(a.convs)-1]
}

// inRows and inCols give the shape of the network's input matrix per observation: one row of
// the observation and a trailing 1 for an MLP, one row per output position of the first
// conv's patches and a trailing 1 for a conv net (im2col).
func (a augNet) inRows() int {
	if len(a.convs) > 0 {
		return a.convs[0].positions()
	}
	return 1
}

func (a augNet) inCols() int {
	if len(a.convs) > 0 {
		return a.convs[0].patchSize() + 1
	}
	return a.inputs + 1
}

// fillInput writes the input matrix of batch observations (batch·inRows × inCols) into dst,
// each observation value times Spec.InputScale.
func (a augNet) fillInput(dst, obs []float32, batch int) {
	if len(a.convs) > 0 {
		a.convs[0].im2col(dst, obs, batch, a.scale)
		return
	}
	fillAug(dst[:batch*(a.inputs+1)], obs[:batch*a.inputs], a.inputs, a.scale)
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

// batchForward evaluates the network on batch observations outside the gradient graph (target
// values are inference: no gradient, so no reason to pay for graph bookkeeping). bufs holds
// the scratch made by newFwdBufs; it returns the B×Outputs Q-values (the last scratch matrix).
//
//	act_{l+1} = ReLU([act_l, 1] · G_l)   (no ReLU after the head; act_0: the input matrix)
//	convs:      act[b] = the conv torso on sample b (convSample), flattened, then 1
//	dueling:    Q = V + A − mean(A) on the head's [V, A]
//	LayerNorm:  ReLU(LN(·)) instead of ReLU, per row of the product (lnReLURows)
//
// Each dense product writes only the out real columns (ldc = cols): the constant column of
// every scratch matrix is filled with ones once by newFwdBufs, and n stays a multiple of 16
// for 64-wide layers. The conv torso runs one sample at a time, from its im2col on: its
// products are already hundreds of rows per sample, and one sample's patch matrices and maps
// stay in L2 between the layers, where a whole batch's first patch matrix (13 MB for Nature
// at batch 32) would stream from memory into a product that does only F multiply-adds per
// value read. The last conv writes the sample's P×F feature map straight into its row of the
// flattened matrix (row stride P·F+1), so the flatten costs nothing here.
func batchForward(mm *gemm, net augNet, params, obs []float32, batch int, bufs *fwdBufs) []float32 {
	var in []float32
	dense := net.layers
	if nc := len(net.convs); nc > 0 {
		flat, feat := bufs.acts[nc-1], net.lastConv().features()
		for b := range batch {
			net.firstPatches(obs[b*net.inputs:(b+1)*net.inputs], &bufs.conv)
			net.convSample(mm, params, bufs.conv.p[0], flat[b*(feat+1):b*(feat+1)+feat], &bufs.conv)
		}
		in, dense = flat, net.layers[nc:]
	} else {
		in = bufs.x[:batch*(net.inputs+1)]
		net.fillInput(in, obs, batch)
	}
	for i, l := range dense {
		out := bufs.acts[len(net.layers)-len(dense)+i][:batch*l.cols]
		// With LayerNorm the product is stored as it is and normalized in place before ReLU;
		// without, ReLU is fused into the product's stores.
		ln := net.ln && l.relu()
		mm.mulAct(false, false, batch, l.out, l.in+1, in, l.in+1, l.g(params), l.cols, out, l.cols, l.relu() && !ln)
		if ln {
			lnReLURows(out, out, batch, l.out, l.cols)
		}
		in = out
	}
	if net.dueling {
		q := bufs.acts[len(net.layers)][:batch*net.outputs]
		duel(q, in, batch, net.outputs)
		return q
	}
	return in
}

// convScratch holds one sample's patch matrices and intermediate conv outputs: p[i] is conv
// i's patch matrix (p[0] from the observation), z[i] its P_i×F_i map (i < last; the last
// conv writes to its caller's buffer); img the scaled observation (firstPatches).
type convScratch struct {
	z, p [][]float32
	img  []float32
}

// firstPatches writes one observation's first-layer patch matrix into s.p[0], times the
// input scale. When patches overlap (Kernel > Stride: every pixel of Nature's input is in 4
// patches) the observation is scaled once into s.img and copied from there; the values are
// the same float32 products either way.
func (a augNet) firstPatches(obs []float32, s *convScratch) {
	c := &a.convs[0]
	if a.scale == 1 || c.Kernel <= c.stride() {
		c.im2col(s.p[0], obs, 1, a.scale)
		return
	}
	scaleTo(s.img, obs, a.scale)
	c.im2col(s.p[0], s.img, 1, 1)
}

func newConvScratch(convs []ConvSpec) convScratch {
	var s convScratch
	if len(convs) > 0 {
		s.img = make([]float32, convs[0].inputs())
	}
	for i := range convs {
		var z, p []float32
		if i+1 < len(convs) {
			z = make([]float32, convs[i].features())
		}
		p = make([]float32, convs[i].positions()*(convs[i].patchSize()+1))
		s.z, s.p = append(s.z, z), append(s.p, p)
	}
	return s
}

// convSample runs the conv torso on one sample: p1 is its first-layer patch matrix
// (P_1×(K²C+1), from im2col), out receives the last conv's P×F feature map. Each layer is one
// product with ReLU fused into its stores (or followed by lnReLURows with LayerNorm), and
// the next layer's patches are built from its output with im2col. params may be the flat or
// the augmented vector: a conv layer's G_c is the same slice of both (layout.go).
func (a augNet) convSample(mm *gemm, params, p1, out []float32, s *convScratch) {
	p := p1
	last := len(a.convs) - 1
	for i := range a.convs {
		c, l := &a.convs[i], a.layers[i]
		z := out
		if i < last {
			z = s.z[i]
		}
		mm.mulAct(false, false, c.positions(), c.Filters, l.in+1, p, l.in+1, l.g(params), l.cols,
			z, c.Filters, !a.ln)
		if a.ln {
			lnReLURows(z, z, c.positions(), c.Filters, c.Filters)
		}
		if i < last {
			a.convs[i+1].im2col(s.p[i+1], z, 1, 1)
			p = s.p[i+1]
		}
	}
}

// fwdBufs is batchForward's scratch for a batch: an MLP's input matrix x; acts[l] the output
// of layer l as the next layer reads it (the last conv's: the flattened B×(P·F+1) matrix;
// earlier convs: none, the torso runs per sample in conv), then, when dueling, the aggregated
// Q-values.
type fwdBufs struct {
	x    []float32
	acts [][]float32
	conv convScratch
}

// newFwdBufs allocates batchForward's scratch with the constant columns set to 1.
func newFwdBufs(net augNet, batch int) *fwdBufs {
	bufs := &fwdBufs{acts: make([][]float32, 0, len(net.layers)+1), conv: newConvScratch(net.convs)}
	nc := len(net.convs)
	if nc == 0 {
		bufs.x = make([]float32, batch*(net.inputs+1))
	}
	for i, l := range net.layers {
		rows, cols, one := batch, l.cols, l.constCol()
		switch {
		case i < nc-1:
			bufs.acts = append(bufs.acts, nil)
			continue
		case i == nc-1:
			cols, one = net.lastConv().features()+1, true
		}
		a := make([]float32, rows*cols)
		if one {
			for r := range rows {
				a[r*cols+cols-1] = 1
			}
		}
		bufs.acts = append(bufs.acts, a)
	}
	if net.dueling {
		bufs.acts = append(bufs.acts, make([]float32, batch*net.outputs))
	}
	return bufs
}
