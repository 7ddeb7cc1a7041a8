//go:build openblas

package openblas

// This file links the process against the system OpenBLAS (Debian: libopenblas-dev) for
// gonum.org/v1/netlib/blas/netlib, which declares the cblas functions but names no library.
// It lives apart from nets because Go forbids cgo and Go assembly in one package.

// #cgo LDFLAGS: -lopenblas
import "C"
