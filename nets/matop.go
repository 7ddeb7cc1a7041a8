package nets

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This package's one-input matrix ops (conv_op.go: the conv flatten; dueling.go: the dueling
// aggregation) share their gorgonia boilerplate here. Each is a value type with only int
// fields (gorgonia compares and hashes ops), implements UsePreallocDo (so the replayed tape
// writes into last run's output instead of allocating, see tape.go) and gets its backward
// from a second op of the same kind through SymDiff.

// matOpBase holds the Op methods the matrix ops have in common: one input, a matrix in and a
// new matrix out (a → a: both are float32 matrices; the shapes come from InferShape).
type matOpBase struct{}

func (matOpBase) Arity() int { return 1 }
func (matOpBase) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}
func (matOpBase) ReturnsPtr() bool     { return false }
func (matOpBase) CallsExtern() bool    { return false }
func (matOpBase) OverwritesInput() int { return -1 }

// matKernel is the part of a matrix op that differs between ops.
type matKernel interface {
	G.Op
	// outShape is the output shape for an input of shape in (rows, cols).
	outShape(rows, cols int) (tensor.Shape, error)
	// compute writes the output for src (rows×cols, row-major) into dst.
	compute(dst, src []float32, rows, cols int)
}

// inferMatShape implements InferShape for a matKernel.
func inferMatShape(op matKernel, in []G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("nets: %v wants 1 input, got %d", op, len(in))
	}
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 2 {
		return nil, fmt.Errorf("nets: %v wants a matrix, got shape %v", op, in[0])
	}
	return op.outShape(s[0], s[1])
}

// doMat runs op on a contiguous float32 matrix, into out when it is a fitting tensor (the
// register's value from the last run), else into a new one.
func doMat(op matKernel, out G.Value, in []G.Value) (G.Value, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("nets: %v wants 1 input, got %d", op, len(in))
	}
	t, ok := in[0].(*tensor.Dense)
	if !ok || t.Dtype() != tensor.Float32 || t.IsMaterializable() || t.Shape().Dims() != 2 {
		return nil, fmt.Errorf("nets: %v needs a contiguous float32 matrix, got %v", op, in[0])
	}
	rows, cols := t.Shape()[0], t.Shape()[1]
	shape, err := op.outShape(rows, cols)
	if err != nil {
		return nil, err
	}
	dst, ok := out.(*tensor.Dense)
	if !ok || dst.Dtype() != tensor.Float32 || !dst.Shape().Eq(shape) || dst.IsMaterializable() {
		dst = tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	op.compute(dst.Float32s()[:shape.TotalSize()], t.Float32s()[:rows*cols], rows, cols)
	return dst, nil
}

// symDiffVia is SymDiff for a linear matrix op whose gradient is the matKernel grad applied to
// the output gradient.
func symDiffVia(grad matKernel, gradNode *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(grad, gradNode)
	if err != nil {
		return nil, fmt.Errorf("nets: %v: %w", grad, err)
	}
	return G.Nodes{dx}, nil
}
