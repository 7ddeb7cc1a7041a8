// Package pixels holds pixel versions of the classic-control envs, for
// exercising what pixels need (uint8 observations, frame stacking, the
// stacked-frames wire codec) on a task that trains in minutes. Importing
// the package registers them with envs:
//
//	CartPolePixels-v1  CartPole-v1's dynamics, seen as one 84×84 gray frame
//
// The frame is a function of CartPole's float32 observation alone, drawn
// with plain float64 arithmetic (no libm: sin and cos are fixed Taylor
// polynomials) so that python/examples/cartpole_pixels.py reproduces it
// byte for byte in numpy.
package pixels

import (
	"math"

	"github.com/qfleet/qfleet/envs"
)

// CartPolePixelsID is the registry id of CartPole seen as pixels.
const CartPolePixelsID = "CartPolePixels-v1"

func init() {
	envs.Register(CartPolePixelsID, func() envs.Env { return NewCartPolePixels() })
}

// The frame's geometry, in pixels (x to the right, y down). The world is
// CartPole's ±2.4 m track scaled to the frame's width, as Gymnasium's
// renderer scales it to 600 px.
const (
	Width  = 84
	Height = 84

	scale      = 17.5 // px per metre: Width / 4.8
	centreX    = 42.0 // column of x = 0
	trackRow   = 62   // the track: one full row
	cartTop    = 58   // the cart: rows cartTop .. trackRow-1
	cartHalfW  = 3.5  // half the cart's width: 0.4 m
	pivotY     = 58.0 // the pole's pivot: the middle of the cart's top edge
	poleLength = 17.5 // 1 m: CartPole's pole (2 × its half-length 0.5)
	poleHalfW  = 1.0  // half the pole's width (wider than to scale, to be seen)
)

// The gray levels, drawn in this order (the pole over the cart).
const (
	Background = 0
	Track      = 96
	Cart       = 160
	Pole       = 255
)

// Render draws the cart-pole whose float32 observation has cart position x
// and pole angle theta into frame (Width·Height bytes, row-major). A pixel
// belongs to a shape when its centre does, tested in float64 with every
// product rounded on its own (no fused multiply-add), as numpy computes.
func Render(frame []uint8, x, theta float32) {
	frame = frame[:Width*Height]
	clear(frame)
	for i := range Width {
		frame[trackRow*Width+i] = Track
	}
	cx := centreX + float64(float64(x)*scale)
	for r := cartTop; r < trackRow; r++ {
		for c := range Width {
			if math.Abs(float64(c)+0.5-cx) < cartHalfW {
				frame[r*Width+c] = Cart
			}
		}
	}
	s, co := sinCos(float64(theta))
	// Only pixels within the pole's reach of the pivot can hold it; the test
	// itself decides, so this box changes nothing but the cost. Its radius
	// holds where the polynomials are within 1e-3 of a unit vector (|θ| ≤ 1);
	// elsewhere (a state set by hand) every pixel is tested.
	r0, r1, c0, c1 := 0, Height, 0, Width
	if math.Abs(float64(theta)) <= 1 && math.Abs(cx) <= 1e6 {
		reach := poleLength + poleHalfW + 2.0
		r0, r1 = max(0, int(pivotY-reach)), min(Height, int(pivotY+reach)+1)
		c0, c1 = max(0, int(cx-reach)), min(Width, int(cx+reach)+1)
	}
	for r := r0; r < r1; r++ {
		vy := float64(r) + 0.5 - pivotY
		for c := c0; c < c1; c++ {
			vx := float64(c) + 0.5 - cx
			// Along the pole (towards its tip, (sin θ, −cos θ)) and across it.
			along := float64(vx*s) - float64(vy*co)
			across := float64(vx*co) + float64(vy*s)
			if along >= 0 && along <= poleLength && across >= -poleHalfW && across <= poleHalfW {
				frame[r*Width+c] = Pole
			}
		}
	}
}

// sinCos is sin and cos of t by their Taylor polynomials to degree 7 and 8
// (error below 1e-8 for |t| ≤ 0.25, where CartPole's angle lives), in an
// order numpy and Python evaluate identically. libm's sin and cos differ
// between Go and glibc by an ulp on some arguments, which could flip a pixel.
func sinCos(t float64) (s, c float64) {
	t2 := t * t
	s = t * (1 - float64(t2/6*(1-float64(t2/20*(1-t2/42)))))
	c = 1 - float64(t2/2*(1-float64(t2/12*(1-float64(t2/30*(1-t2/56))))))
	return s, c
}

// CartPolePixels is envs.CartPole observed as one Width×Height gray frame
// instead of its four numbers: the same dynamics, seeds, rewards, time
// limit and reward threshold, the same trajectory for the same seed and
// actions. Without velocities in one frame the task needs frame stacking.
//
// Observation: shape [84, 84, 1], dtype uint8, as float32 values 0..255.
// The slices are owned by the env and alternate between two buffers, as
// CartPole's do: an (obs, nextObs) pair survives one Step.
type CartPolePixels struct {
	cp    *envs.CartPole
	frame [Width * Height]uint8
	obs   [2][Width * Height]float32
	cur   int
}

var (
	_ envs.Env      = (*CartPolePixels)(nil)
	_ envs.Stateful = (*CartPolePixels)(nil)
)

// NewCartPolePixels returns a CartPolePixels-v1 that must be Reset (or
// SetState) before its first Step.
func NewCartPolePixels() *CartPolePixels { return &CartPolePixels{cp: envs.NewCartPole()} }

// Spec is CartPole-v1's with the frame's shape and dtype and its own id.
func (e *CartPolePixels) Spec() envs.Spec {
	s := e.cp.Spec()
	s.ID = CartPolePixelsID
	s.ObsShape = []int{Height, Width, 1}
	s.ObsDType = envs.Uint8
	return s
}

// Reset starts an episode exactly where CartPole-v1's Reset(seed) does.
func (e *CartPolePixels) Reset(seed int64) []float32 { return e.observe(e.cp.Reset(seed)) }

// Step is CartPole-v1's Step (it panics where CartPole's does), observed.
func (e *CartPolePixels) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	o, reward, terminated, truncated := e.cp.Step(action)
	return e.observe(o), reward, terminated, truncated
}

// State is CartPole's state (x, x_dot, theta, theta_dot).
func (e *CartPolePixels) State() []float64 { return e.cp.State() }

// SetState sets CartPole's state (see envs.CartPole.SetState); Observation
// then draws it.
func (e *CartPolePixels) SetState(state []float64) error { return e.cp.SetState(state) }

// Observation draws the current state into the next buffer, as Step would
// return it: for a state set with SetState (replaying a reference).
func (e *CartPolePixels) Observation() []float32 {
	s := e.cp.State()
	o := [4]float32{float32(s[0]), float32(s[1]), float32(s[2]), float32(s[3])}
	return e.observe(o[:])
}

// observe draws CartPole's float32 observation o into the next buffer.
func (e *CartPolePixels) observe(o []float32) []float32 {
	Render(e.frame[:], o[0], o[2])
	e.cur ^= 1
	out := &e.obs[e.cur]
	for i, v := range e.frame {
		out[i] = float32(v)
	}
	return out[:]
}
