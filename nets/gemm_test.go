package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestGemmMatchesGonum checks every transpose combination and edge shape (rows not a multiple
// of 4, columns not a multiple of 16, padded strides) against gonum's reference Sgemm.
func TestGemmMatchesGonum(t *testing.T) {
	for _, kernel := range []bool{true, false} {
		if kernel && !haveKernel {
			continue
		}
		saved := useKernel
		useKernel = kernel && !useOpenBLAS
		t.Run(fmt.Sprintf("kernel=%v", useKernel), testGemm)
		useKernel = saved
	}
}

func testGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	var g gemm
	for _, sh := range [][3]int{{1, 1, 1}, {4, 16, 3}, {5, 17, 9}, {32, 65, 5}, {128, 64, 65}, {65, 65, 32}, {7, 2, 65}, {3, 130, 1}, {6, 5, 0},
		{70, 33, 2100}, {13, 150, 5200}} { // the last two are cut along k (kReuse), rows and panels outer
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				m, n, k := sh[0], sh[1], sh[2]
				// Padded leading dimensions: the code must honour strides, not assume them.
				ar, ac := m, k
				if tA {
					ar, ac = k, m
				}
				br, bc := k, n
				if tB {
					br, bc = n, k
				}
				lda, ldb, ldc := ac+3, bc+1, n+2
				a := randSlice(rng, max(ar*lda, 1))
				b := randSlice(rng, max(br*ldb, 1))
				got := randSlice(rng, m*ldc)
				want := append([]float32(nil), got...)
				g.mul(tA, tB, m, n, k, a, lda, b, ldb, got, ldc)
				ta, tb := blas.NoTrans, blas.NoTrans
				if tA {
					ta = blas.Trans
				}
				if tB {
					tb = blas.Trans
				}
				gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, want, ldc)
				near := func(what string, got, want []float32) {
					for i := range want {
						if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
							t.Fatalf("%s m,n,k=%v tA=%v tB=%v: C[%d] = %v, gonum %v", what, sh, tA, tB, i, got[i], want[i])
						}
					}
				}
				near("mul", got, want)
				g.mulAct(tA, tB, m, n, k, a, lda, b, ldb, got, ldc, true)
				for i := range m {
					relu(want[i*ldc : i*ldc+n])
				}
				near("mulAct(relu)", got, want)
			}
		}
	}
}

// TestGemmKBlocksBitIdentical: cutting k into blocks (mulAct, kReuse) continues the kernel's
// accumulators from C, so the product is bit-identical to one uncut pass, for both loop
// orders, tail rows, a partial panel, both transposes and the fused ReLU.
func TestGemmKBlocksBitIdentical(t *testing.T) {
	if !useKernel {
		t.Skip("k-blocking is the AVX2 kernel's")
	}
	rng := rand.New(rand.NewPCG(43, 44))
	for _, sh := range [][3]int{{70, 33, 2100}, {13, 150, 5200}, {257, 32, 12800}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				m, n, k := sh[0], sh[1], sh[2]
				a, b := randSlice(rng, m*k), randSlice(rng, k*n)
				lda, ldb := k, n
				if tA {
					lda = m
				}
				if tB {
					ldb = k
				}
				var g gemm
				cut, whole := make([]float32, m*n), make([]float32, m*n)
				g.mulAct(tA, tB, m, n, k, a, lda, b, ldb, cut, n, true)
				saved := kReuse
				kReuse = math.MaxInt
				g.mulAct(tA, tB, m, n, k, a, lda, b, ldb, whole, n, true)
				kReuse = saved
				if !slices.Equal(cut, whole) {
					t.Errorf("m,n,k=%v tA=%v tB=%v: cut along k differs from one pass", sh, tA, tB)
				}
			}
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// BenchmarkGemm compares gemm with gonum on the CartPole learner's largest products.
func BenchmarkGemm(b *testing.B) {
	for _, sh := range [][3]int{{32, 65, 65}, {128, 64, 65}, {128, 65, 65}, {512, 65, 65}} {
		m, n, k := sh[0], sh[1], sh[2]
		rng := rand.New(rand.NewPCG(1, 1))
		a, bb, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		flops := float64(2 * m * n * k)
		b.Run(fmt.Sprintf("impl=nets/m=%d/n=%d/k=%d", m, n, k), func(b *testing.B) {
			var g gemm
			for b.Loop() {
				g.mul(false, false, m, n, k, a, k, bb, n, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
		b.Run(fmt.Sprintf("impl=gonum/m=%d/n=%d/k=%d", m, n, k), func(b *testing.B) {
			for b.Loop() {
				gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, bb, n, 0, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// TestReluKernels checks the assembly ReLU passes against the Go ones on every tail length.
func TestReluKernels(t *testing.T) {
	if !haveKernel {
		t.Skip("no AVX2/FMA")
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for n := range 40 {
		x, dy := randSlice(rng, n+3), randSlice(rng, n+3)
		got, want := make([]float32, n), make([]float32, n)
		reluTo(got, x)
		reluToGo(want, x)
		if !slices.Equal(got, want) {
			t.Fatalf("reluTo n=%d: %v, want %v", n, got, want)
		}
		y := append([]float32(nil), want...)
		reluGradTo(got, y, dy)
		reluGradGo(want, y, dy)
		if !slices.Equal(got, want) {
			t.Fatalf("reluGradTo n=%d: %v, want %v", n, got, want)
		}
	}
}
