//go:build openblas

package nets

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// The "as it comes" baseline with OpenBLAS is gorgonia's documented way: a process-global
// G.Use. Only this test binary does that; the Trainer uses its own engine (engine.go).
func init() { G.Use(netlib.Implementation{}) }
