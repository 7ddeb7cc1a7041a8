package envs

import (
	"fmt"
	"math"

	"github.com/qfleet/qfleet/envs/internal/nprand"
)

// CartPoleID is the registry id of the cart-pole balancing task.
const CartPoleID = "CartPole-v1"

func init() {
	Register(CartPoleID, func() Env { return NewCartPole() })
}

// Physical constants of Gymnasium's cartpole.py (lines 124-136). Derived ones
// are written as the float64 values Python computes at run time
// (0.1+1.0, 0.1*0.5, 12*2*math.pi/360), not as exact constant expressions,
// which Go would round differently in general; TestCartPoleConstants checks
// them against the run-time computation.
const (
	gravity        = 9.8
	masspole       = 0.1
	totalMass      = 1.1  // masspole + masscart
	length         = 0.5  // half the pole's length
	polemassLength = 0.05 // masspole * length
	forceMag       = 10.0
	tau            = 0.02 // seconds per step
	fourThirds     = 4.0 / 3.0
	thetaThreshold = 0.20943951023931953 // 12 degrees in radians
	xThreshold     = 2.4

	cartPoleMaxSteps        = 500
	cartPoleRewardThreshold = 475.0
	cartPoleResetBound      = 0.05 // initial state ~ U[-0.05, 0.05) per component
)

// CartPole is Gymnasium's CartPole-v1 as returned by gym.make: the
// Barto-Sutton-Anderson cart-pole (explicit Euler, tau = 0.02) wrapped in a
// 500-step TimeLimit. It reproduces Gymnasium 1.x bit for bit, up to the
// platform's sin/cos (Go's math.Sin/Cos differ from glibc's by at most one ulp
// on a few arguments; see envs/cartpole_test.go).
//
// Observation: float32 (x, x_dot, theta, theta_dot), the float64 state
// rounded to nearest. Actions: 0 pushes the cart left, 1 right. Reward: 1.0
// per step, including the step that terminates. Termination: |x| > 2.4 or
// |theta| > 12 degrees, strictly, on the float64 state. Truncation: the
// 500th step since Reset.
//
// Observation slices are owned by the env: CartPole alternates between two
// buffers, so the observations from the two most recent calls stay intact
// (an (obs, nextObs) pair survives one Step), but the Env contract only
// promises the latest one.
type CartPole struct {
	state   [4]float64 // x, x_dot, theta, theta_dot
	elapsed int        // steps since Reset (TimeLimit's _elapsed_steps)
	// stepsBeyondTerminated mirrors Gymnasium's steps_beyond_terminated:
	// -1 for None (not yet terminated), then 0, 1, ... It decides the reward
	// of steps taken after termination.
	stepsBeyondTerminated int
	started               bool // Reset or SetState was called
	obsBuf                [2][4]float32
	cur                   int // obsBuf index returned last
}

var (
	_ Env      = (*CartPole)(nil)
	_ Stateful = (*CartPole)(nil)
)

// NewCartPole returns a CartPole-v1 that must be Reset (or SetState) before
// its first Step.
func NewCartPole() *CartPole { return &CartPole{stepsBeyondTerminated: -1} }

// Spec returns CartPole-v1's spec: 4 observations, 2 actions, 500 steps,
// solved at a mean return of 475.
func (c *CartPole) Spec() Spec {
	return Spec{
		ID:              CartPoleID,
		ObsShape:        []int{4},
		NumActions:      2,
		MaxEpisodeSteps: cartPoleMaxSteps,
		RewardThreshold: cartPoleRewardThreshold,
	}
}

// Reset starts an episode from a state drawn uniformly from [-0.05, 0.05)^4
// with numpy's np.random.default_rng(seed) (SeedSequence + PCG64), so for
// seed >= 0 it starts exactly where Gymnasium's env.reset(seed=seed) does.
// Gymnasium rejects negative seeds; here a negative seed is read as its
// two's-complement uint64 (seed + 2^64), which is still deterministic.
func (c *CartPole) Reset(seed int64) []float32 {
	rng := nprand.New(uint64(seed))
	for i := range c.state {
		c.state[i] = rng.Uniform(-cartPoleResetBound, cartPoleResetBound)
	}
	c.elapsed = 0
	c.stepsBeyondTerminated = -1
	c.started = true
	return c.observe()
}

// Step applies action (0: push left, 1: push right) for one 0.02 s Euler step.
//
// It panics on an action other than 0 or 1, and before the first Reset or
// SetState: both are caller bugs (Gymnasium asserts on them too), and a panic
// naming them beats training silently on a wrong transition.
//
// Stepping after termination behaves as in Gymnasium: the physics keeps
// integrating, terminated is recomputed from the new state, and the reward is
// 0.0 for every step after the one that first reported terminated (until
// Reset). truncated stays true past the 500th step.
func (c *CartPole) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	var force float64
	switch action {
	case 1:
		force = forceMag
	case 0:
		force = -forceMag
	default:
		panic(fmt.Sprintf("envs: %s: invalid action %d (want 0 or 1)", CartPoleID, action))
	}
	if !c.started {
		panic("envs: " + CartPoleID + ": Step before Reset")
	}
	theta := c.state[2]
	c.state = cartPoleEuler(c.state, force, math.Sin(theta), math.Cos(theta))
	x, theta := c.state[0], c.state[2]

	terminated = x < -xThreshold || x > xThreshold || theta < -thetaThreshold || theta > thetaThreshold
	switch {
	case !terminated:
		reward = 1.0
	case c.stepsBeyondTerminated < 0: // the pole just fell: this step still earns 1
		c.stepsBeyondTerminated = 0
		reward = 1.0
	default:
		c.stepsBeyondTerminated++
		reward = 0.0
	}

	c.elapsed++
	truncated = c.elapsed >= cartPoleMaxSteps
	return c.observe(), reward, terminated, truncated
}

// cartPoleEuler is one explicit Euler step of the cart-pole equations of
// motion (Florian 2007; cartpole.py lines 172-189 at Gymnasium 3f0476a),
// given the force and sin/cos of the current pole angle. It is split from
// Step so tests can feed it the exact sin/cos glibc produced for the
// reference and check the rest of the arithmetic bit for bit, whatever the
// platform's libm.
func cartPoleEuler(s [4]float64, force, sintheta, costheta float64) [4]float64 {
	x, xDot, theta, thetaDot := s[0], s[1], s[2], s[3]
	// Same association as cartpole.py (Python evaluates left to right). Every
	// product that meets an addition is wrapped in float64(...): the Go spec
	// lets the compiler fuse x*y+z into one FMA (arm64, ppc64le, s390x,
	// GOAMD64=v3), which skips a rounding and breaks bit-equality; an explicit
	// conversion forces the intermediate rounding.
	temp := (force + float64(float64(polemassLength*float64(thetaDot*thetaDot))*sintheta)) / totalMass
	thetaacc := (float64(gravity*sintheta) - float64(costheta*temp)) /
		(length * (fourThirds - float64(masspole*float64(costheta*costheta))/totalMass))
	xacc := temp - float64(float64(polemassLength*thetaacc)*costheta)/totalMass

	// Explicit (not semi-implicit) Euler: positions advance with the old velocities.
	return [4]float64{
		x + float64(tau*xDot),
		xDot + float64(tau*xacc),
		theta + float64(tau*thetaDot),
		thetaDot + float64(tau*thetaacc),
	}
}

// observe rounds the state into the next observation buffer.
func (c *CartPole) observe() []float32 {
	c.cur ^= 1
	o := &c.obsBuf[c.cur]
	for i, v := range c.state {
		o[i] = float32(v)
	}
	return o[:]
}

// State returns a copy of (x, x_dot, theta, theta_dot).
func (c *CartPole) State() []float64 {
	s := c.state
	return s[:]
}

// SetState sets (x, x_dot, theta, theta_dot), as assigning env.unwrapped.state
// in Gymnasium does: the step counter and the terminated bookkeeping (which
// decides the reward after termination) are left alone. It also counts as a
// start, so Step may follow it without Reset.
func (c *CartPole) SetState(state []float64) error {
	if len(state) != len(c.state) {
		return fmt.Errorf("envs: %s: SetState needs %d values (x, x_dot, theta, theta_dot), got %d",
			CartPoleID, len(c.state), len(state))
	}
	copy(c.state[:], state)
	c.started = true
	return nil
}
