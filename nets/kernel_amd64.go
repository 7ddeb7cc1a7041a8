package nets

import "golang.org/x/sys/cpu"

// kern4x16 is the AVX2+FMA micro-kernel of gemm (kernel_amd64.s): the 4×16 block
// C = A·B with A[i][p] at a[i·ars+p·acs], B[p][j] at b[p·bs+j], C[i][j] at c[i·ldc+j];
// C += A·B instead when act has actLoad, and C = max(C, 0) at the end when it has actReLU.
//
//go:noescape
func kern4x16(k int, a *float32, ars, acs int, b *float32, bs int, c *float32, ldc int, act int)

// reluTo sets dst[i] = max(src[i], 0) (AVX).
//
//go:noescape
func reluTo(dst, src []float32)

// reluGradTo sets dx[i] = dy[i] where y[i] > 0, else 0 (AVX).
//
//go:noescape
func reluGradTo(dx, y, dy []float32)

// axpy8 sets y[i] += a·x[i] (FMA) for len(y) a multiple of 8 (AVX2+FMA).
//
//go:noescape
func axpy8(y []float32, a float32, x []float32)

// scale8 sets dst[i] = a·src[i] for len(dst) a multiple of 8 (AVX), bit-identical to the Go
// loop (one rounded multiply each).
//
//go:noescape
func scale8(dst []float32, a float32, src []float32)

// adam8 is adamGo's loop for len(theta) a multiple of 8, bit-identical (AVX); k holds
// {β₁, 1−β₁, β₂, 1−β₂, step, 1/√(1−β₂ᵗ), ε}.
//
//go:noescape
func adam8(theta, g, m, v []float32, k *[7]float32)

// sumSquares16 returns Σ x[i]² in float64 for len(x) a multiple of 16 (AVX2+FMA).
//
//go:noescape
func sumSquares16(x []float32) float64

// haveKernel reports whether the assembly above can run on this CPU.
var haveKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA
