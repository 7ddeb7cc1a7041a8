package pixels

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/envs"
)

// renderEverywhere is Render's definition without the bounding box: every
// pixel tested for every shape, in drawing order.
func renderEverywhere(frame []uint8, x, theta float32) {
	cx := centreX + float64(float64(x)*scale)
	s, co := sinCos(float64(theta))
	for i := range frame {
		r, c := i/Width, i%Width
		vx, vy := float64(c)+0.5-cx, float64(r)+0.5-pivotY
		along := float64(vx*s) - float64(vy*co)
		across := float64(vx*co) + float64(vy*s)
		switch {
		case along >= 0 && along <= poleLength && across >= -poleHalfW && across <= poleHalfW:
			frame[i] = Pole
		case r >= cartTop && r < trackRow && math.Abs(vx) < cartHalfW:
			frame[i] = Cart
		case r == trackRow:
			frame[i] = Track
		default:
			frame[i] = Background
		}
	}
}

func ascii(frame []uint8) string {
	var b strings.Builder
	for r := 30; r < 64; r++ {
		for c := range Width {
			b.WriteByte(map[uint8]byte{Background: '.', Track: '=', Cart: '#', Pole: '|'}[frame[r*Width+c]])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func count(frame []uint8, level uint8) int {
	n := 0
	for _, v := range frame {
		if v == level {
			n++
		}
	}
	return n
}

func TestCartPolePixelsSpec(t *testing.T) {
	e, err := envs.Make(CartPolePixelsID)
	if err != nil {
		t.Fatal(err)
	}
	got, want := e.Spec(), envs.NewCartPole().Spec()
	if got.ID != CartPolePixelsID || !slices.Equal(got.ObsShape, []int{84, 84, 1}) || got.ObsDType != envs.Uint8 ||
		got.NumActions != 2 || got.MaxEpisodeSteps != 500 || got.RewardThreshold != 475 || got.ObsSize() != 84*84 {
		t.Fatalf("spec %+v", got)
	}
	if got.NumActions != want.NumActions || got.MaxEpisodeSteps != want.MaxEpisodeSteps || got.RewardThreshold != want.RewardThreshold {
		t.Fatalf("spec %+v differs from CartPole-v1's %+v", got, want)
	}
}

// TestCartPolePixelsDrawsTheState: the cart is where x says and the pole
// leans the way theta says; the bounding box changes nothing.
func TestCartPolePixelsDrawsTheState(t *testing.T) {
	frame := make([]uint8, Width*Height)
	full := make([]uint8, Width*Height)
	Render(frame, 0, 0)
	t.Logf("x=0 θ=0:\n%s", ascii(frame))
	if count(frame, Track) == 0 || count(frame, Cart) == 0 || count(frame, Pole) == 0 {
		t.Fatalf("x=0 θ=0 lacks a shape:\n%s", ascii(frame))
	}
	// The upright pole is a 2-pixel column over the cart's middle, 17-18 px tall.
	if n := count(frame, Pole); n < 34 || n > 38 {
		t.Errorf("upright pole: %d pixels, want about 2×17.5", n)
	}
	centroid := func(frame []uint8, level uint8) (float64, float64) {
		var sx, sy float64
		n := 0
		for i, v := range frame {
			if v == level {
				sx, sy, n = sx+float64(i%Width), sy+float64(i/Width), n+1
			}
		}
		return sx / float64(n), sy / float64(n)
	}
	base, _ := centroid(frame, Cart)
	Render(frame, 1, 0)
	if right, _ := centroid(frame, Cart); math.Abs(right-base-scale) > 1 {
		t.Errorf("x=1 moves the cart %.2f px, want %.1f", right-base, scale)
	}
	Render(frame, 0, 0.2)
	t.Logf("x=0 θ=0.2:\n%s", ascii(frame))
	if px, _ := centroid(frame, Pole); px <= centreX+0.5 {
		t.Errorf("θ=0.2 pole centroid at column %.2f: not leaning right", px)
	}
	Render(frame, 0, -0.2)
	if px, _ := centroid(frame, Pole); px >= centreX-0.5 {
		t.Errorf("θ=-0.2 pole centroid at column %.2f: not leaning left", px)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		x := float32(rng.Float64()*6 - 3)
		theta := float32(rng.Float64()*3 - 1.5)
		if rng.IntN(10) == 0 {
			theta *= 10 // far outside the box's range: every pixel tested
		}
		Render(frame, x, theta)
		renderEverywhere(full, x, theta)
		if !slices.Equal(frame, full) {
			t.Fatalf("x=%v θ=%v: the bounding box changed the frame:\n%s\nwant\n%s", x, theta, ascii(frame), ascii(full))
		}
	}
}

// TestCartPolePixelsIsCartPole: the same seed and actions give CartPole-v1's
// states, rewards and flags, and frames that follow the state.
func TestCartPolePixelsIsCartPole(t *testing.T) {
	px, cp := NewCartPolePixels(), envs.NewCartPole()
	rng := rand.New(rand.NewPCG(1, 2))
	frame := make([]uint8, Width*Height)
	changed, steps, episodes := 0, 0, 0
	for seed := range int64(8) {
		obs := slices.Clone(px.Reset(seed))
		o := cp.Reset(seed)
		for done := false; !done; steps++ {
			Render(frame, o[0], o[2])
			for i, v := range frame {
				if obs[i] != float32(v) {
					t.Fatalf("seed %d step %d: pixel %d is %v, Render says %d", seed, steps, i, obs[i], v)
				}
			}
			a := rng.IntN(2)
			if seed%2 == 0 && rng.IntN(4) != 0 { // balance: long episodes
				a = 0
				if o[2]+0.5*o[3] > 0 {
					a = 1
				}
			}
			next, r, term, trunc := px.Step(a)
			var r2 float64
			var term2, trunc2 bool
			o, r2, term2, trunc2 = cp.Step(a)
			if r != r2 || term != term2 || trunc != trunc2 || !slices.Equal(px.State(), cp.State()) {
				t.Fatalf("seed %d step %d: pixels %v %v %v %v, CartPole %v %v %v %v", seed, steps, r, term, trunc, px.State(), r2, term2, trunc2, cp.State())
			}
			if !slices.Equal(next, obs) {
				changed++
			}
			obs = slices.Clone(next)
			done = term || trunc
		}
		episodes++
	}
	// A balanced pole over a slow cart moves less than a pixel in some
	// steps, so some consecutive frames are equal; most are not.
	if changed < steps/2 {
		t.Errorf("%d of %d steps changed the frame", changed, steps)
	}
	t.Logf("%d episodes, %d steps, %d changed the frame", episodes, steps, changed)
}

func TestCartPolePixelsObservationAfterSetState(t *testing.T) {
	e := NewCartPolePixels()
	e.Reset(1)
	if err := e.SetState([]float64{0.5, 0, -0.1, 0}); err != nil {
		t.Fatal(err)
	}
	frame := make([]uint8, Width*Height)
	Render(frame, 0.5, -0.1)
	for i, v := range e.Observation() {
		if v != float32(frame[i]) {
			t.Fatalf("pixel %d: %v, want %d", i, v, frame[i])
		}
	}
}

func TestCartPolePixelsStepDoesNotAllocate(t *testing.T) {
	e := NewCartPolePixels()
	e.Reset(0)
	a := 0
	if n := testing.AllocsPerRun(200, func() {
		if _, _, term, trunc := e.Step(a); term || trunc {
			e.Reset(1)
		}
		a ^= 1
	}); n != 0 {
		t.Fatalf("%v allocations per step", n)
	}
}

func BenchmarkCartPolePixelsStep(b *testing.B) {
	e := NewCartPolePixels()
	e.Reset(0)
	a := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, _, term, trunc := e.Step(a); term || trunc {
			e.Reset(1)
		}
		a ^= 1
	}
}
