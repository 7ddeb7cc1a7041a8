package envs

import (
	"fmt"
	"math"

	"github.com/qfleet/qfleet/envs/internal/nprand"
)

// AcrobotID is the registry id of the two-link swing-up task.
const AcrobotID = "Acrobot-v1"

func init() {
	Register(AcrobotID, func() Env { return NewAcrobot() })
}

// Constants of Gymnasium's acrobot.py (lines 147-162 and _dsdt, 244-279).
// The links have unit length, mass and moment of inertia and their centres of
// mass at 0.5, so most of _dsdt's products are by 1.0 and exact; the ones
// that round are written as the float64 values Python computes at run time
// (1.5*9.8, 9*pi, 0.2/6.0), not as Go constant expressions, which are
// evaluated exactly and can round differently. TestAcrobotConstants checks
// each against the run-time computation.
const (
	acrobotDt      = 0.2                 // seconds per step: rk4 over [0, dt]
	acrobotHalfDt  = 0.1                 // rk4's dt2 = dt / 2.0
	acrobotSixth   = 0.03333333333333333 // rk4's dt / 6.0
	acrobotHalfPi  = 1.5707963267948966  // pi / 2.0 and pi / 2 in _dsdt
	acrobotTwoPi   = 6.283185307179586   // wrap's diff = M - m = pi - (-pi)
	acrobotMaxVel1 = 12.566370614359172  // MAX_VEL_1 = 4 * pi
	acrobotMaxVel2 = 28.274333882308138  // MAX_VEL_2 = 9 * pi
	acrobotPhi1G   = 14.700000000000001  // (m1*lc1 + m2*l1) * g = 1.5 * 9.8
	acrobotPhi2G   = 4.9                 // m2 * lc2 * g = 0.5 * 9.8

	acrobotMaxSteps        = 500
	acrobotRewardThreshold = -100.0
	acrobotResetBound      = 0.1 // initial state ~ U[-0.1, 0.1) per component, then float32
)

// acrobotPi is np.pi, the float64 nearest pi, which wrap uses as its bounds.
const acrobotPi float64 = math.Pi

// acrobotTorque is AVAIL_TORQUE: the torque on the middle joint per action.
var acrobotTorque = [3]float64{-1.0, 0.0, +1.0}

// Acrobot is Gymnasium's Acrobot-v1 as returned by gym.make: Sutton's
// two-link acrobot with the book dynamics, one classic Runge-Kutta step of
// 0.2 s per action, wrapped in a 500-step TimeLimit. It reproduces Gymnasium
// 1.x bit for bit, up to the platform's libm: each step evaluates sin, cos and
// x**2 some 30 times, and glibc's sin/cos (numpy calls them) and pow(x, 2)
// (numpy's float64 x**2) are each one ulp away from Go's math.Sin/Cos and the
// correctly rounded x*x on a small fraction of arguments (see
// envs/acrobot_test.go, which checks the arithmetic bit for bit on glibc's
// values).
//
// State: (theta1, theta2, dtheta1, dtheta2), float64; theta1 is the first
// link's angle from hanging straight down, theta2 the second link's angle
// relative to the first. After each step both angles are wrapped into
// [-pi, pi] (both ends included, as Gymnasium's wrap leaves them) and the
// velocities clipped to ±4pi and ±9pi.
//
// Observation: float32 (cos theta1, sin theta1, cos theta2, sin theta2,
// dtheta1, dtheta2). Actions: 0, 1, 2 apply torque -1, 0, +1. Reward: -1.0
// per step, 0.0 on a step that ends in a terminal state. Termination:
// -cos(theta1) - cos(theta1 + theta2) > 1.0 (the free end above the bar),
// strictly, on the float64 state. Truncation: the 500th step since Reset.
//
// Observation slices are owned by the env: like CartPole it alternates
// between two buffers, so an (obs, nextObs) pair survives one Step, but the
// Env contract only promises the latest one.
type Acrobot struct {
	state   [4]float64 // theta1, theta2, dtheta1, dtheta2
	elapsed int        // steps since Reset (TimeLimit's _elapsed_steps)
	started bool       // Reset or SetState was called
	obsBuf  [2][6]float32
	cur     int // obsBuf index returned last
}

var (
	_ Env      = (*Acrobot)(nil)
	_ Stateful = (*Acrobot)(nil)
)

// NewAcrobot returns an Acrobot-v1 that must be Reset (or SetState) before
// its first Step.
func NewAcrobot() *Acrobot { return &Acrobot{} }

// Spec returns Acrobot-v1's spec: 6 observations, 3 actions, 500 steps,
// solved at a mean return of -100.
func (a *Acrobot) Spec() Spec {
	return Spec{
		ID:              AcrobotID,
		ObsShape:        []int{6},
		NumActions:      3,
		MaxEpisodeSteps: acrobotMaxSteps,
		RewardThreshold: acrobotRewardThreshold,
	}
}

// Reset starts an episode as Gymnasium's env.reset(seed=seed) does for
// seed >= 0: np.random.default_rng(seed).uniform(-0.1, 0.1, 4), rounded to
// float32 (acrobot.py keeps the reset state as a float32 array; the first
// step promotes it to float64 exactly). A negative seed is read as its
// two's-complement uint64, as in CartPole.Reset.
//
// The first observation is computed from that float32 state, and so with
// numpy's float32 sin/cos kernel rather than float64 libm calls: see
// numpyTrigF32.
func (a *Acrobot) Reset(seed int64) []float32 {
	rng := nprand.New(uint64(seed))
	var s32 [4]float32
	for i := range s32 {
		s32[i] = float32(rng.Uniform(-acrobotResetBound, acrobotResetBound))
		a.state[i] = float64(s32[i])
	}
	a.elapsed = 0
	a.started = true
	a.cur ^= 1
	a.obsBuf[a.cur] = [6]float32{
		numpyTrigF32(s32[0], true), numpyTrigF32(s32[0], false),
		numpyTrigF32(s32[1], true), numpyTrigF32(s32[1], false),
		s32[2], s32[3],
	}
	return a.obsBuf[a.cur][:]
}

// Step applies the torque of action (0: -1, 1: 0, 2: +1) for one 0.2 s RK4
// step.
//
// It panics on an action outside 0..2 and before the first Reset or
// SetState: both are caller bugs, and a panic naming them beats training
// silently on a wrong transition. (Gymnasium indexes AVAIL_TORQUE with the
// action, so there -1 would quietly mean +1 and 3 raises IndexError.) It
// also panics on an angle too large to wrap, reachable only through SetState,
// where Gymnasium's wrap loops forever (see acrobotWrap).
//
// Stepping after termination behaves as in Gymnasium: the dynamics keep
// integrating, and terminated and the reward (0.0 or -1.0) are recomputed
// from each new state. truncated stays true past the 500th step.
func (a *Acrobot) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	if action < 0 || action >= len(acrobotTorque) {
		panic(fmt.Sprintf("envs: %s: invalid action %d (want 0, 1 or 2)", AcrobotID, action))
	}
	if !a.started {
		panic("envs: " + AcrobotID + ": Step before Reset")
	}
	a.cur ^= 1
	a.state, a.obsBuf[a.cur], terminated = acrobotTransition(goLibm{}, a.state, acrobotTorque[action])
	reward = -1.0
	if terminated {
		reward = 0.0
	}
	a.elapsed++
	truncated = a.elapsed >= acrobotMaxSteps
	return a.obsBuf[a.cur][:], reward, terminated, truncated
}

// State returns a copy of (theta1, theta2, dtheta1, dtheta2).
func (a *Acrobot) State() []float64 {
	s := a.state
	return s[:]
}

// SetState sets (theta1, theta2, dtheta1, dtheta2), as assigning
// env.unwrapped.state a float64 array in Gymnasium does: the values are used
// as given (not wrapped or clipped until the next step) and the step counter
// is left alone. It also counts as a start, so Step may follow it without
// Reset.
func (a *Acrobot) SetState(state []float64) error {
	if len(state) != len(a.state) {
		return fmt.Errorf("envs: %s: SetState needs %d values (theta1, theta2, dtheta1, dtheta2), got %d",
			AcrobotID, len(a.state), len(state))
	}
	copy(a.state[:], state)
	a.started = true
	return nil
}

// acrobotLibm is the elementary math one Acrobot step uses. Step runs on
// goLibm; the golden tests substitute the exact values glibc gave Gymnasium,
// so the rest of the arithmetic is checked bit for bit whatever the
// platform's libm. It is a type parameter rather than an interface value so
// Step calls the goLibm methods directly.
type acrobotLibm interface {
	sin(x float64) float64
	cos(x float64) float64
	// sq is x**2 on a numpy float64, which numpy evaluates with libm's
	// pow(x, 2.0); glibc's pow is not always correctly rounded there.
	sq(x float64) float64
}

// goLibm is Go's math: math.Sin/Cos and the correctly rounded x*x.
type goLibm struct{}

func (goLibm) sin(x float64) float64 { return math.Sin(x) }
func (goLibm) cos(x float64) float64 { return math.Cos(x) }
func (goLibm) sq(x float64) float64  { return x * x }

// acrobotTransition is Gymnasium's AcrobotEnv.step (acrobot.py lines
// 202-237) without the bookkeeping: one RK4 step under torque, the wrap of
// the angles and the clip of the velocities, then the observation and the
// terminal test of the new state.
func acrobotTransition[L acrobotLibm](m L, s [4]float64, torque float64) (next [4]float64, obs [6]float32, terminated bool) {
	next = acrobotRK4(m, s, torque)
	// Angles first, then velocities, each on its own (lines 219-222); the
	// RK4 stages above saw neither wrapped angles nor clipped velocities.
	next[0] = acrobotWrap(next[0])
	next[1] = acrobotWrap(next[1])
	next[2] = acrobotBound(next[2], -acrobotMaxVel1, acrobotMaxVel1)
	next[3] = acrobotBound(next[3], -acrobotMaxVel2, acrobotMaxVel2)
	obs = [6]float32{
		float32(m.cos(next[0])), float32(m.sin(next[0])),
		float32(m.cos(next[1])), float32(m.sin(next[1])),
		float32(next[2]), float32(next[3]),
	}
	return next, obs, acrobotTerminal(m, next)
}

// acrobotTerminal is _terminal (lines 239-242): the free end is more than
// one link length above the pivot. Strict, so exactly 1.0 is not terminal.
func acrobotTerminal[L acrobotLibm](m L, s [4]float64) bool {
	return -m.cos(s[0])-m.cos(s[1]+s[0]) > 1.0
}

// acrobotRK4 is Gymnasium's rk4(self._dsdt, s_augmented, [0, dt]) (lines
// 415-461): one classic Runge-Kutta step of h = 0.2 on the state augmented
// with the torque. The torque's derivative is 0.0, so it stays exactly torque
// in every stage and is passed along instead of carried as a fifth component.
// Each product meeting an addition is wrapped in float64(...) so no platform
// fuses it into an FMA (see cartPoleEuler).
func acrobotRK4[L acrobotLibm](m L, y0 [4]float64, torque float64) [4]float64 {
	var y [4]float64
	k1 := acrobotDsdt(m, y0, torque)
	for i := range y {
		y[i] = y0[i] + float64(acrobotHalfDt*k1[i])
	}
	k2 := acrobotDsdt(m, y, torque)
	for i := range y {
		y[i] = y0[i] + float64(acrobotHalfDt*k2[i])
	}
	k3 := acrobotDsdt(m, y, torque)
	for i := range y {
		y[i] = y0[i] + float64(acrobotDt*k3[i])
	}
	k4 := acrobotDsdt(m, y, torque)
	// y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), summed left to right.
	for i := range y {
		y[i] = y0[i] + float64(acrobotSixth*(((k1[i]+float64(2*k2[i]))+float64(2*k3[i]))+k4[i]))
	}
	return y
}

// acrobotDsdt is _dsdt with book_or_nips = "book" (lines 244-279), the unit
// constants folded in and the association Python uses (left to right, **
// before unary minus before *):
//
//	d1 = m1*lc1**2 + m2*(l1**2 + lc2**2 + 2*l1*lc2*cos(t2)) + I1 + I2
//	   = ((0.25 + (1.25 + cos(t2))) + 1.0) + 1.0
//	d2 = m2*(lc2**2 + l1*lc2*cos(t2)) + I2 = (0.25 + 0.5*cos(t2)) + 1.0
//	phi2 = m2*lc2*g * cos(t1 + t2 - pi/2.0) = 4.9 * cos((t1+t2) - pi/2)
//	phi1 = -m2*l1*lc2*dt2**2*sin(t2) - 2*m2*l1*lc2*dt2*dt1*sin(t2)
//	       + (m1*lc1 + m2*l1)*g*cos(t1 - pi/2) + phi2
//	     = (((-0.5*dt2**2)*sin(t2) - (dt2*dt1)*sin(t2)) + 14.7..*cos(t1 - pi/2)) + phi2
//	ddt2 = (a + d2/d1*phi1 - m2*l1*lc2*dt1**2*sin(t2) - phi2) / (m2*lc2**2 + I2 - d2**2/d1)
//	     = (((a + (d2/d1)*phi1) - (0.5*dt1**2)*sin(t2)) - phi2) / (1.25 - d2**2/d1)
//	ddt1 = -(d2*ddt2 + phi1) / d1
//
// Python evaluates cos(t2) twice and sin(t2) three times; each call returns
// the same value, so one of each is enough.
func acrobotDsdt[L acrobotLibm](m L, s [4]float64, a float64) [4]float64 {
	theta1, theta2, dtheta1, dtheta2 := s[0], s[1], s[2], s[3]
	cos2, sin2 := m.cos(theta2), m.sin(theta2)
	d1 := ((0.25 + (1.25 + cos2)) + 1.0) + 1.0
	d2 := (0.25 + float64(0.5*cos2)) + 1.0
	phi2 := float64(acrobotPhi2G * m.cos((theta1+theta2)-acrobotHalfPi))
	phi1 := ((float64(float64(-0.5*m.sq(dtheta2))*sin2) - float64(float64(dtheta2*dtheta1)*sin2)) +
		float64(acrobotPhi1G*m.cos(theta1-acrobotHalfPi))) + phi2
	ddtheta2 := (((a + float64((d2/d1)*phi1)) - float64(float64(0.5*m.sq(dtheta1))*sin2)) - phi2) /
		(1.25 - m.sq(d2)/d1)
	ddtheta1 := -(float64(d2*ddtheta2) + phi1) / d1
	return [4]float64{dtheta1, dtheta2, ddtheta1, ddtheta2}
}

// acrobotWrap is wrap(x, -pi, pi) (lines 375-393): whole turns are
// subtracted or added one at a time, each rounded, until x lies in
// [-pi, pi]. Both ends are kept: pi stays pi and -pi stays -pi. Python loops
// forever on an infinite x or one so large that x - 2pi == x; such a state
// can only come from SetState, and Step panics on it instead of hanging.
// NaN passes through, as in Python.
func acrobotWrap(x float64) float64 {
	for x > acrobotPi {
		if x-acrobotTwoPi == x {
			panic(fmt.Sprintf("envs: %s: angle %v cannot be wrapped into [-pi, pi]", AcrobotID, x))
		}
		x = x - acrobotTwoPi
	}
	for x < -acrobotPi {
		if x+acrobotTwoPi == x {
			panic(fmt.Sprintf("envs: %s: angle %v cannot be wrapped into [-pi, pi]", AcrobotID, x))
		}
		x = x + acrobotTwoPi
	}
	return x
}

// acrobotBound is bound(x, m, M) = min(max(x, m), M) with Python's builtin
// min and max (lines 396-412): max(x, m) is m only if m > x, min(v, M) is M
// only if M < v, so NaN passes through.
func acrobotBound(x, lo, hi float64) float64 {
	if lo > x {
		x = lo
	}
	if hi < x {
		x = hi
	}
	return x
}

// numpy's float32 sin/cos kernel, which Gymnasium's first Acrobot
// observation goes through: reset leaves the state float32, and np.cos/np.sin
// of a float32 run in float32. In numpy 1.24, which the goldens come from
// (numpy/core/src/umath/loops_trigonometric.dispatch.c.src), every CPU where
// numpy has a fused multiply-add (x86-64 with AVX2+FMA3 or AVX-512F, arm64,
// ppc64le, s390x) runs this Cody-Waite reduction and minimax polynomial with
// fused multiply-adds; it is within 1.5 ulp but not correctly rounded, and
// float32(math.Cos(float64(x))) differs from it in the last bit on about 0.1%
// of Acrobot's reset angles. An x86-64 CPU without FMA3 falls back to glibc's
// cosf/sinf, and later numpy releases moved sin/cos to Highway's SIMD
// kernels: this reproduces numpy 1.2x on FMA hardware, the setup the goldens
// and envs/testdata/gen_golden_classic.py use, not every numpy.
const (
	npTwoOverPiF32  float32 = 0x1.45f306p-1
	npPio2HighF32   float32 = -0x1.921fb0p+00 // -pi/2 split in three for
	npPio2MedF32    float32 = -0x1.5110b4p-22 // Cody-Waite reduction
	npPio2LowF32    float32 = -0x1.846988p-48
	npRintMagicF32  float32 = 0x1.800000p+23 // adding and subtracting it rounds to an integer
	npMaxCodySinF32 float32 = 117435.992     // beyond these numpy calls libm's sinf/cosf
	npMaxCodyCosF32 float32 = 71476.0625
)

// numpyTrigF32 returns np.cos(x) (cos true) or np.sin(x) for a float32 x,
// bit for bit as numpy's FMA kernel computes it for |x| up to 71476 (cos) or
// 117436 (sin). Beyond that numpy calls glibc's cosf/sinf, for which this
// substitutes float32(math.Cos(float64(x))) (or Sin), which may differ in the
// last bit; Acrobot only evaluates it on reset angles below 0.1.
func numpyTrigF32(x float32, cos bool) float32 {
	if x != x {
		return x
	}
	maxCody := npMaxCodySinF32
	if cos {
		maxCody = npMaxCodyCosF32
	}
	if x > maxCody || x < -maxCody {
		if cos {
			return float32(math.Cos(float64(x)))
		}
		return float32(math.Sin(float64(x)))
	}
	// quadrant = rint(x * 2/pi), by the add-and-subtract trick (ties to even).
	q := float32(x * npTwoOverPiF32)
	q = float32(q + npRintMagicF32)
	q = float32(q - npRintMagicF32)
	// r = x - q*pi/2 in three fused steps, r in [-pi/4, pi/4].
	r := fma32(q, npPio2HighF32, x)
	r = fma32(q, npPio2MedF32, r)
	r = fma32(q, npPio2LowF32, r)
	r2 := float32(r * r)

	c := fma32(0x1.98e616p-16, r2, -0x1.6c06dcp-10)
	c = fma32(c, r2, 0x1.55553cp-05)
	c = fma32(c, r2, -0x1.000000p-01)
	c = fma32(c, r2, 0x1.000000p+00)

	s := fma32(0x1.7d3bbcp-19, r2, -0x1.a06bbap-13)
	s = fma32(s, r2, 0x1.11119ap-07)
	s = fma32(s, r2, -0x1.555556p-03)
	s = fma32(s, r2, 0)
	s = fma32(s, r, r)

	iq := int32(q)
	if cos {
		iq++
	}
	v := c
	if iq&1 == 0 {
		v = s
	}
	if iq&2 == 2 {
		v = 0 - v
	}
	return v
}

// fma32 returns a*b+c rounded once to float32, as a float32 FMA instruction
// does (Go has no float32 FMA). a*b is exact in float64 (24+24 bits); the sum
// is then rounded to float64 with round-to-odd, which makes the final
// rounding to float32 correct (Boldo and Melquiond: the intermediate format
// has more than 24+2 bits), where plain round-to-nearest twice could land on
// the wrong side of a float32 halfway point.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	z := float64(c)
	s := p + z
	// TwoSum: the exact rounding error of s (no FMA is involved: only sums).
	bb := s - p
	e := (p - (s - bb)) + (z - bb)
	if e != 0 && math.Float64bits(s)&1 == 0 {
		// Inexact and even: step one ulp toward the exact value, which is odd.
		bits := math.Float64bits(s)
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}
