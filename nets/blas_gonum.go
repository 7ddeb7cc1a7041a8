//go:build !openblas

package nets

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// blas32 is the fallback for gemm on CPUs without AVX2/FMA.
var blas32 blas.Float32 = gonum.Implementation{}

// useOpenBLAS records the build tag.
const useOpenBLAS = false
