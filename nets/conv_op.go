package nets

import (
	"fmt"
	"hash"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The last conv's matrix product leaves the feature maps as a (B·P)×F matrix, P = OH·OW output
// positions: row (b, oy, ox), column f. Channel-last, sample b's feature map is rows
// b·P..b·P+P−1, i.e. P·F contiguous values, so the flatten in front of the first dense layer
// is a reshape to B×(P·F). What is not free is the trailing 1 the augmented layout needs
// (layout.go): gorgonia has no op that appends a constant column (a Reshape and a Concat with
// a ones matrix would be two more ops, each with its own backward), so flattenOp does
// "reshape and append 1" in one copy, and flattenGradOp drops the 1's gradient on the way
// back. Both are copies of B·P·F values, small next to the dense layer's product.

// flattenOp maps (B·P)×F to B×(P·F+1): z flattened per sample, then a constant 1.
type flattenOp struct {
	matOpBase
	positions int // P
}

var (
	_ G.SDOp            = flattenOp{}
	_ G.UsePreallocDoer = flattenOp{}
	_ G.UsePreallocDoer = flattenGradOp{}
)

// flattenOnes applies flattenOp through gorgonia's graph.
func flattenOnes(z *G.Node, positions int) (*G.Node, error) {
	return G.ApplyOp(flattenOp{positions: positions}, z)
}

func (op flattenOp) outShape(rows, cols int) (tensor.Shape, error) {
	if rows%op.positions != 0 {
		return nil, fmt.Errorf("nets: %v: %d rows are not whole samples", op, rows)
	}
	return tensor.Shape{rows / op.positions, op.positions*cols + 1}, nil
}

func (op flattenOp) compute(dst, src []float32, rows, cols int) {
	n := op.positions * cols
	for b := range rows / op.positions {
		copy(dst[b*(n+1):b*(n+1)+n], src[b*n:(b+1)*n])
		dst[b*(n+1)+n] = 1
	}
}

func (op flattenOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op flattenOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op flattenOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (op flattenOp) String() string        { return fmt.Sprintf("nets.FlattenOnes(P=%d)", op.positions) }
func (op flattenOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op flattenOp) Hashcode() uint32      { return hashOf(op) }
func (flattenOp) DiffWRT(int) []bool       { return []bool{true} }

// SymDiff: ∂L/∂z is ∂L/∂h without the constant column, reshaped back to (B·P)×F.
func (op flattenOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return symDiffVia(flattenGradOp(op), grad)
}

// flattenGradOp maps B×(P·F+1) to (B·P)×F, dropping the last column.
type flattenGradOp flattenOp

func (op flattenGradOp) outShape(rows, cols int) (tensor.Shape, error) {
	if (cols-1)%op.positions != 0 || cols < 2 {
		return nil, fmt.Errorf("nets: %v: %d columns are not P·F+1", op, cols)
	}
	return tensor.Shape{rows * op.positions, (cols - 1) / op.positions}, nil
}

func (op flattenGradOp) compute(dst, src []float32, rows, cols int) {
	n := cols - 1
	for b := range rows {
		copy(dst[b*n:(b+1)*n], src[b*cols:b*cols+n])
	}
}

func (op flattenGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op flattenGradOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op flattenGradOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (op flattenGradOp) String() string {
	return fmt.Sprintf("nets.FlattenOnesGrad(P=%d)", op.positions)
}
func (op flattenGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op flattenGradOp) Hashcode() uint32      { return hashOf(op) }

// A conv layer after the first reads the previous layer's output, a graph node, so its patch
// matrix must be built inside the graph: patchesOp is ConvSpec.im2col as a gorgonia op and
// patchesGradOp its adjoint, col2im. The previous layer's (B·H·W)×C product already is the B
// channel-last images im2col reads (rows (b, y, x), columns c), so neither op permutes
// anything. gorgonia's own Im2Col cannot stand in: it wants BCHW, and its UsePreallocDo
// writes into whatever its register holds without checking the shape, so the no-Reset tape
// (tape.go) could not replay it.

// patchesOp maps the (B·H·W)×C images to the (B·P)×(K²C+1) patch matrix of conv c (ones
// column included).
type patchesOp struct {
	matOpBase
	c ConvSpec // only int fields: gorgonia compares and hashes ops
}

var (
	_ G.SDOp            = patchesOp{}
	_ G.UsePreallocDoer = patchesOp{}
	_ G.UsePreallocDoer = patchesGradOp{}
)

// patches applies patchesOp through gorgonia's graph.
func patches(x *G.Node, c ConvSpec) (*G.Node, error) {
	return G.ApplyOp(patchesOp{c: c}, x)
}

func (op patchesOp) outShape(rows, cols int) (tensor.Shape, error) {
	hw := op.c.Height * op.c.Width
	if cols != op.c.Channels || rows%hw != 0 {
		return nil, fmt.Errorf("nets: %v on a %d×%d matrix: want whole %d×%d×%d images", op, rows, cols,
			op.c.Height, op.c.Width, op.c.Channels)
	}
	return tensor.Shape{rows / hw * op.c.positions(), op.c.patchSize() + 1}, nil
}

func (op patchesOp) compute(dst, src []float32, rows, _ int) {
	op.c.im2col(dst, src, rows/(op.c.Height*op.c.Width), 1)
}

func (op patchesOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op patchesOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op patchesOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (op patchesOp) String() string        { return fmt.Sprintf("nets.Patches(%v)", &op.c) }
func (op patchesOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op patchesOp) Hashcode() uint32      { return hashOf(op) }
func (patchesOp) DiffWRT(int) []bool       { return []bool{true} }

// SymDiff: im2col is linear, so ∂L/∂x is col2im of ∂L/∂P alone.
func (op patchesOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return symDiffVia(patchesGradOp(op), grad)
}

// patchesGradOp maps ∂L/∂P, (B·P)×(K²C+1), to ∂L/∂x, (B·H·W)×C: each image cell gets the sum
// of its entries over the patches that hold it; the ones column has no input and is dropped.
type patchesGradOp patchesOp

func (op patchesGradOp) outShape(rows, cols int) (tensor.Shape, error) {
	p := op.c.positions()
	if cols != op.c.patchSize()+1 || rows%p != 0 {
		return nil, fmt.Errorf("nets: %v on a %d×%d matrix: want whole samples of %d×%d", op, rows, cols,
			p, op.c.patchSize()+1)
	}
	return tensor.Shape{rows / p * op.c.Height * op.c.Width, op.c.Channels}, nil
}

func (op patchesGradOp) compute(dst, src []float32, rows, _ int) {
	op.c.col2im(dst, src, rows/op.c.positions())
}

func (op patchesGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op patchesGradOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op patchesGradOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (op patchesGradOp) String() string        { return fmt.Sprintf("nets.PatchesGrad(%v)", &op.c) }
func (op patchesGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op patchesGradOp) Hashcode() uint32      { return hashOf(op) }
