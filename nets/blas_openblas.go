//go:build openblas

package nets

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"

	_ "github.com/qfleet/qfleet/nets/internal/openblas" // links -lopenblas
)

// blas32 runs the learner's matrix products (graph and targets, see gemm and matmulEngine)
// in OpenBLAS through cgo. Each Trainer's machine gets its own engine, so gorgonia's
// process-global BLAS (G.Use) is left alone. Run OpenBLAS single-threaded
// (OPENBLAS_NUM_THREADS=1): at these sizes its threads only fight the runners for the CPU.
var blas32 blas.Float32 = netlib.Implementation{}

// useOpenBLAS records the build tag.
const useOpenBLAS = true
