package nets

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAdamKernelBitIdentical: adam8 (AVX) must give exactly adamGo's bits, so a trainer's
// parameters do not depend on the CPU it ran on.
func TestAdamKernelBitIdentical(t *testing.T) {
	if !haveKernel {
		t.Skip("no AVX2/FMA")
	}
	rng := rand.New(rand.NewPCG(71, 72))
	const n = 1003
	theta, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range theta {
		theta[i] = float32(rng.NormFloat64())
		m[i] = float32(0.1 * rng.NormFloat64())
		v[i] = float32(0.01 * rng.Float64())
	}
	theta2, m2, v2 := slices.Clone(theta), slices.Clone(m), slices.Clone(v)
	cfg := DefaultTrainConfig()
	for step := int64(1); step <= 5; step++ {
		for i := range g {
			g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-4)))
		}
		adamStep(theta, g, m, v, step, cfg) // adam8 on the first 1000, adamGo on the last 3
		b1, b2 := float32(cfg.AdamBeta1), float32(cfg.AdamBeta2)
		bc1 := 1 - math.Pow(cfg.AdamBeta1, float64(step))
		bc2 := 1 - math.Pow(cfg.AdamBeta2, float64(step))
		k := [7]float32{b1, 1 - b1, b2, 1 - b2, float32(cfg.LearningRate / bc1), float32(1 / math.Sqrt(bc2)), float32(cfg.AdamEps)}
		adamGo(theta2, g, m2, v2, &k)
	}
	if !slices.Equal(theta, theta2) || !slices.Equal(m, m2) || !slices.Equal(v, v2) {
		for i := range theta {
			if theta[i] != theta2[i] {
				t.Fatalf("θ[%d]: adam8 %v, adamGo %v", i, theta[i], theta2[i])
			}
		}
		t.Fatal("Adam moments differ between adam8 and adamGo")
	}
}

func TestSumSquaresAndAxpyKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	for _, n := range []int{0, 1, 15, 16, 17, 100, 4099} {
		x := make([]float32, n)
		var want float64
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			want += float64(x[i]) * float64(x[i])
		}
		if got := l2norm(x); math.Abs(got-math.Sqrt(want)) > 1e-12*math.Max(1, math.Sqrt(want)) {
			t.Errorf("n=%d: l2norm %v, want %v", n, got, math.Sqrt(want))
		}
		y := make([]float32, n)
		for i := range y {
			y[i] = float32(rng.NormFloat64())
		}
		a := float32(rng.NormFloat64())
		wantY := make([]float32, n)
		for i := range y {
			wantY[i] = y[i] + a*x[i]
		}
		axpy(y, a, x)
		for i := range y {
			if math.Abs(float64(y[i]-wantY[i])) > 1e-6*math.Max(1, math.Abs(float64(wantY[i]))) {
				t.Fatalf("n=%d: axpy[%d] = %v, want %v", n, i, y[i], wantY[i])
			}
		}
	}
}

// scaleTo's AVX loop (scale8) rounds each product as the Go loop does: bit-identical, on
// every tail length, for the Nature input scale 1/255 on 0..255 pixels and on Gaussians.
func TestScaleKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	for _, n := range []int{0, 1, 7, 8, 9, 32, 100} {
		for _, a := range []float32{1.0 / 255, float32(rng.NormFloat64())} {
			src := make([]float32, n)
			for i := range src {
				src[i] = float32(rng.IntN(256))
				if i%2 == 1 {
					src[i] = float32(rng.NormFloat64())
				}
			}
			got := make([]float32, n)
			scaleTo(got, src, a)
			for i, v := range src {
				if want := v * a; math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d a=%v: scaleTo[%d] = %v, want %v", n, a, i, got[i], want)
				}
			}
		}
	}
}
