package wire

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat16Conversion(t *testing.T) {
	// Every half survives half → float32 → half (signalling NaNs become quiet).
	for h := range 1 << 16 {
		f := f16ToF32(uint16(h))
		back := f32ToF16(f)
		isNaN := h&0x7c00 == 0x7c00 && h&0x3ff != 0
		if isNaN {
			if !math.IsNaN(float64(f)) || back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x → %v → %#04x", h, f, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, back)
		}
	}
	// Known values.
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65519.99, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{0.1, 0x2e66}, {1.0 / 3, 0x3555},
		{float32(math.Ldexp(1, -24)), 0x0001}, {float32(math.Ldexp(1, -25)), 0x0000}, // tie → even (0)
		{float32(math.Ldexp(3, -25)), 0x0002},                                              // 1.5 × 2⁻²⁴: tie → even (2)
		{float32(math.Ldexp(1, -25) * (1 + 1.0/64)), 0x01},                                 // just above the tie
		{float32(math.Ldexp(1023, -24)), 0x03ff}, {float32(math.Ldexp(2047, -25)), 0x0400}, // largest subnormal; tie → smallest normal
		{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, // ties to even in normals
	} {
		if got := f32ToF16(c.f); got != c.h {
			t.Errorf("f32ToF16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	// Nearest, ties to even, against float64 arithmetic on random floats.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		f := math.Float32frombits(rng.Uint32())
		if math.IsNaN(float64(f)) || math.Abs(float64(f)) >= 65520 {
			continue
		}
		if rng.IntN(2) == 0 { // a midpoint between two halves
			h := f32ToF16(f) &^ 0x8000
			if h >= 0x7bff {
				continue
			}
			f = float32((float64(f16ToF32(h)) + float64(f16ToF32(h+1))) / 2)
		}
		h := f32ToF16(f)
		x, v := float64(f), float64(f16ToF32(h))
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7fff >= 0x7c00 || (h&0x7fff == 0 && nb&0x7fff == 0x7fff) {
				continue
			}
			w := float64(f16ToF32(nb))
			if math.Abs(x-w) < math.Abs(x-v) || (math.Abs(x-w) == math.Abs(x-v) && h&1 == 1) {
				t.Fatalf("f32ToF16(%g) = %#04x (%g); neighbour %#04x (%g) is nearer or even", f, h, v, nb, w)
			}
		}
	}
}
