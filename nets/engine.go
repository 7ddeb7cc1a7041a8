package nets

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// matmulEngine is gorgonia's standard CPU engine with MatMul replaced by the Trainer's gemm.
// It is attached to one TapeMachine (G.WithEngine), so no process-global BLAS setting
// (G.Use) is needed in either build: in the pure-Go build gemm runs its AVX2 kernel, in the
// openblas build it calls OpenBLAS. Anything it does not recognise (non-float32, views,
// ambiguous strides) goes to the standard implementation.
type matmulEngine struct {
	G.StandardEngine
	gemm *gemm
}

var _ tensor.MatMuler = matmulEngine{}

// MatMul computes prealloc = a·b, where a or b may be transposed views (linAlgBinOp's
// backward passes transpose in place with T()).
func (e matmulEngine) MatMul(a, b, prealloc tensor.Tensor) error {
	ad, ok1 := a.(*tensor.Dense)
	bd, ok2 := b.(*tensor.Dense)
	cd, ok3 := prealloc.(*tensor.Dense)
	if !ok1 || !ok2 || !ok3 || ad.Dtype() != tensor.Float32 || bd.Dtype() != tensor.Float32 ||
		cd.Dtype() != tensor.Float32 || ad.IsView() || bd.IsView() || cd.IsView() {
		return e.StandardEngine.MatMul(a, b, prealloc)
	}
	tA, lda, okA := layoutOf(ad)
	tB, ldb, okB := layoutOf(bd)
	cTrans, ldc, okC := layoutOf(cd)
	if !okA || !okB || !okC || cTrans {
		return e.StandardEngine.MatMul(a, b, prealloc)
	}
	m, k, n := ad.Shape()[0], ad.Shape()[1], bd.Shape()[1]
	e.gemm.mul(tA, tB, m, n, k, ad.Float32s(), lda, bd.Float32s(), ldb, cd.Float32s(), ldc)
	return nil
}

// layoutOf reads a 2-D tensor's memory layout from its strides: (s, 1) is row-major with
// leading dimension s; (1, s) is the transpose of a row-major matrix with leading dimension s.
// Shapes with a dimension of 1 make the strides ambiguous and are reported as not ok.
func layoutOf(t *tensor.Dense) (trans bool, ld int, ok bool) {
	shp, st := t.Shape(), t.Strides()
	if len(shp) != 2 || len(st) != 2 || shp[0] < 2 || shp[1] < 2 {
		return false, 0, false
	}
	switch {
	case st[1] == 1 && st[0] >= shp[1]:
		return false, st[0], true
	case st[0] == 1 && st[1] >= shp[0]:
		return true, st[1], true
	}
	return false, 0, false
}
