package nets

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNorm (Spec.LayerNorm) replaces a hidden layer's ReLU(a) by ReLU(LN(a)),
//
//	LN(a)_j = (a_j − μ)·r,   μ = (1/n)·Σ a_j,   r = 1/√((1/n)·Σ (a_j − μ)² + ε),   ε = 1e-5
//
// over the layer's n units, per sample (for the conv: per sample and output position, over
// the filters). There is no learnable gain or bias (PyTorch's elementwise_affine=False), so
// the parameter vector is the same as without it. PQN (Gallici et al. 2024) shows that this
// normalization keeps TD learning stable, even without a target network: the features of
// every layer stay at unit scale whatever the weights do.
//
// One float32 routine (lnReLURows) is used by every path: the learner's graph (lnReLUOp),
// its target passes (batchForward) and the runner (Forward), so they agree up to the
// differing summation order of the products before it. The backward recomputes μ and r from
// the op's input with the same code, so its ReLU mask is exactly the forward's.

// lnEps is the variance floor, PyTorch's nn.LayerNorm default.
const lnEps = 1e-5

// lnVector reports whether rows of n values take the AVX2 loops (layernorm_amd64.s): every
// path of a process calls the same routines on the same row widths, so a row is normalized
// the same way everywhere.
func lnVector(n int) bool { return haveKernel && n >= 8 && n%8 == 0 }

// lnStats returns μ and r = 1/√(var + ε) of x. Four partial sums keep the adds independent
// (a single accumulator is a chain of dependent adds); the variance is the two-pass
// Σ(x−μ)², which, unlike E[x²] − μ², loses nothing when |μ| is large against the spread.
func lnStats(x []float32) (mean, rstd float32) {
	n := len(x)
	if lnVector(n) {
		mean = lnSum8(x) / float32(n)
		return mean, float32(1 / math.Sqrt(float64(lnSqDev8(x, mean)/float32(n))+lnEps))
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		v := x[i : i+4 : i+4]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
	}
	for ; i < n; i++ {
		s0 += x[i]
	}
	mean = ((s0 + s1) + (s2 + s3)) / float32(n)
	s0, s1, s2, s3 = 0, 0, 0, 0
	i = 0
	for ; i+4 <= n; i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-mean, v[1]-mean, v[2]-mean, v[3]-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < n; i++ {
		d := x[i] - mean
		s0 += d * d
	}
	variance := ((s0 + s1) + (s2 + s3)) / float32(n)
	return mean, float32(1 / math.Sqrt(float64(variance)+lnEps))
}

// lnReLURows computes dst = ReLU(LN(src)) on the first units values of each of rows rows,
// row r starting at r·stride in both slices; dst may be src. Values past units in a row
// (the augmented layout's constant column) are not touched. The ReLU is reluToGo's
// branchless sign mask: a branch on the sign of x̂ mispredicts half the time.
func lnReLURows(dst, src []float32, rows, units, stride int) {
	for r := range rows {
		x := src[r*stride : r*stride+units]
		y := dst[r*stride : r*stride+units]
		y = y[:len(x)]
		mean, rstd := lnStats(x)
		if lnVector(units) {
			lnNormReLU8(y, x, mean, rstd)
			continue
		}
		for j, v := range x {
			b := math.Float32bits((v - mean) * rstd)
			y[j] = math.Float32frombits(b &^ uint32(int32(b)>>31))
		}
	}
}

// lnPositive is an all-ones mask when the float with bits b is > 0 (not ±0, not negative),
// else 0, without a branch: ^b's sign bit is set for a clear sign bit, −b's for a non-zero
// magnitude with a clear sign bit.
func lnPositive(b uint32) uint32 {
	return uint32(^int32(b)>>31) & uint32(-int32(b)>>31)
}

// lnReLUGradRows is lnReLURows' adjoint: for the pre-activation a and the output gradient dy
// it writes into da, per row (g = dy ⊙ [x̂ > 0], x̂ = LN(a)),
//
//	∂L/∂a_j = r·(g_j − mean(g) − x̂_j·mean(g ⊙ x̂))
//
// on the first units values of each row; the rest of a row (the constant column) is passed
// through, da = dy, as its forward is the identity. x̂ is recomputed from a with the forward's
// expression, so the mask [x̂ > 0] is exactly the forward's; g is masked without a branch
// and parked in da between the two passes.
func lnReLUGradRows(da, a, dy []float32, rows, units, stride int) {
	inv := 1 / float32(units)
	for r := range rows {
		x := a[r*stride : r*stride+units]
		g := dy[r*stride : r*stride+units]
		d := da[r*stride : r*stride+units]
		g, d = g[:len(x)], d[:len(x)]
		mean, rstd := lnStats(x)
		if lnVector(units) {
			sg, sgx := lnGradPass8(d, x, g, mean, rstd)
			lnGradFinish8(d, x, mean, rstd, sg*inv, sgx*inv)
			copy(da[r*stride+units:(r+1)*stride], dy[r*stride+units:(r+1)*stride])
			continue
		}
		var sg, sgx float32
		for j, v := range x {
			xh := (v - mean) * rstd
			gj := math.Float32frombits(math.Float32bits(g[j]) & lnPositive(math.Float32bits(xh)))
			d[j] = gj
			sg += gj
			sgx += gj * xh
		}
		mg, mgx := sg*inv, sgx*inv
		for j, v := range x {
			xh := (v - mean) * rstd
			d[j] = rstd * (d[j] - mg - xh*mgx)
		}
		copy(da[r*stride+units:(r+1)*stride], dy[r*stride+units:(r+1)*stride])
	}
}

// lnReLUOp is lnReLURows as a gorgonia op on a rows×cols matrix whose first units columns are
// the layer's pre-activations: a dense hidden layer's product (cols = units+1, the constant
// column copied through) or the conv's (B·P)×F product (cols = units = F). It replaces reluOp
// after such a layer when Spec.LayerNorm is set.
type lnReLUOp struct {
	matOpBase
	units int
}

var (
	_ G.SDOp            = lnReLUOp{}
	_ G.UsePreallocDoer = lnReLUOp{}
	_ G.UsePreallocDoer = lnReLUGradOp{}
)

// lnReLUFn applies lnReLUOp through gorgonia's graph.
func lnReLUFn(a *G.Node, units int) (*G.Node, error) { return G.ApplyOp(lnReLUOp{units: units}, a) }

func (op lnReLUOp) outShape(rows, cols int) (tensor.Shape, error) {
	if cols < op.units {
		return nil, fmt.Errorf("nets: %v on %d columns", op, cols)
	}
	return tensor.Shape{rows, cols}, nil
}

func (op lnReLUOp) compute(dst, src []float32, rows, cols int) {
	lnReLURows(dst, src, rows, op.units, cols)
	if cols > op.units {
		for r := range rows {
			copy(dst[r*cols+op.units:(r+1)*cols], src[r*cols+op.units:(r+1)*cols])
		}
	}
}

func (op lnReLUOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op lnReLUOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op lnReLUOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (op lnReLUOp) String() string        { return fmt.Sprintf("nets.LayerNormReLU(%d)", op.units) }
func (op lnReLUOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op lnReLUOp) Hashcode() uint32      { return hashOf(op) }
func (lnReLUOp) DiffWRT(int) []bool       { return []bool{true} }

// SymDiff: the backward needs the input (to recompute μ, r and x̂) and ∂L/∂y.
func (op lnReLUOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	da, err := G.ApplyOp(lnReLUGradOp(op), inputs[0], grad)
	if err != nil {
		return nil, fmt.Errorf("nets: %v gradient: %w", op, err)
	}
	return G.Nodes{da}, nil
}

// lnReLUGradOp is lnReLUGradRows as a gorgonia op: (a, dy) → da, all rows×cols.
type lnReLUGradOp lnReLUOp

func (lnReLUGradOp) Arity() int { return 2 }
func (lnReLUGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}
func (op lnReLUGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return sameShape(in, 2) }
func (op lnReLUGradOp) Do(in ...G.Value) (G.Value, error)                 { return op.do(nil, in) }
func (op lnReLUGradOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return op.do(out, in)
}
func (op lnReLUGradOp) String() string {
	return fmt.Sprintf("nets.LayerNormReLUGrad(%d)", op.units)
}
func (op lnReLUGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op lnReLUGradOp) Hashcode() uint32      { return hashOf(op) }

// do runs the op on two contiguous float32 matrices of one shape, into out when it is a
// fitting tensor (the register's value from the last run), else into a new one.
func (op lnReLUGradOp) do(out G.Value, in []G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("nets: %v wants 2 inputs, got %d", op, len(in))
	}
	var xs [2][]float32
	var shape tensor.Shape
	for i, v := range in {
		t, ok := v.(*tensor.Dense)
		if !ok || t.Dtype() != tensor.Float32 || t.IsMaterializable() || t.Shape().Dims() != 2 {
			return nil, fmt.Errorf("nets: %v needs contiguous float32 matrices, got %v", op, v)
		}
		if i == 0 {
			shape = t.Shape()
		} else if !t.Shape().Eq(shape) {
			return nil, fmt.Errorf("nets: %v shapes differ: %v vs %v", op, shape, t.Shape())
		}
		xs[i] = t.Float32s()[:shape.TotalSize()]
	}
	rows, cols := shape[0], shape[1]
	if cols < op.units {
		return nil, fmt.Errorf("nets: %v on %d columns", op, cols)
	}
	dst, ok := out.(*tensor.Dense)
	if !ok || dst.Dtype() != tensor.Float32 || !dst.Shape().Eq(shape) || dst.IsMaterializable() {
		dst = tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float32))
	}
	lnReLUGradRows(dst.Float32s()[:rows*cols], xs[0], xs[1], rows, op.units, cols)
	return dst, nil
}
