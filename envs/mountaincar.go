package envs

import (
	"fmt"
	"math"

	"github.com/qfleet/qfleet/envs/internal/nprand"
)

// MountainCarID is the registry id of the under-powered car task.
const MountainCarID = "MountainCar-v0"

func init() {
	Register(MountainCarID, func() Env { return NewMountainCar() })
}

// Constants of Gymnasium's mountain_car.py (lines 108-116). All are literals
// there, so the Go constants round to the same float64 values.
const (
	mountainCarMinPosition  = -1.2
	mountainCarMaxPosition  = 0.6
	mountainCarMaxSpeed     = 0.07
	mountainCarGoalPosition = 0.5
	mountainCarGoalVelocity = 0.0 // goal_velocity=0, the default of __init__
	mountainCarForce        = 0.001
	mountainCarGravity      = 0.0025

	mountainCarMaxSteps        = 200
	mountainCarRewardThreshold = -110.0
	mountainCarResetLow        = -0.6 // initial position ~ U[-0.6, -0.4), velocity 0
	mountainCarResetHigh       = -0.4
)

// MountainCar is Gymnasium's MountainCar-v0 as returned by gym.make: Moore's
// under-powered car in a valley, wrapped in a 200-step TimeLimit. It
// reproduces Gymnasium 1.x bit for bit, up to the platform's cos (Python's
// math.cos is glibc's; Go's math.Cos differs from it by one ulp on a few
// arguments, see envs/mountaincar_test.go).
//
// State and observation: (position, velocity), float64 inside, float32 out.
// Actions: 0 accelerates left, 1 not at all, 2 right. Reward: -1.0 on every
// step, including the one that reaches the goal. Termination: position >= 0.5
// and velocity >= 0, both non-strict, on the float64 state. Truncation: the
// 200th step since Reset.
//
// Observation slices are owned by the env: like CartPole it alternates
// between two buffers, so an (obs, nextObs) pair survives one Step, but the
// Env contract only promises the latest one.
type MountainCar struct {
	state   [2]float64 // position, velocity
	elapsed int        // steps since Reset (TimeLimit's _elapsed_steps)
	started bool       // Reset or SetState was called
	obsBuf  [2][2]float32
	cur     int // obsBuf index returned last
}

var (
	_ Env      = (*MountainCar)(nil)
	_ Stateful = (*MountainCar)(nil)
)

// NewMountainCar returns a MountainCar-v0 that must be Reset (or SetState)
// before its first Step.
func NewMountainCar() *MountainCar { return &MountainCar{} }

// Spec returns MountainCar-v0's spec: 2 observations, 3 actions, 200 steps,
// solved at a mean return of -110.
func (c *MountainCar) Spec() Spec {
	return Spec{
		ID:              MountainCarID,
		ObsShape:        []int{2},
		NumActions:      3,
		MaxEpisodeSteps: mountainCarMaxSteps,
		RewardThreshold: mountainCarRewardThreshold,
	}
}

// Reset starts an episode at rest at a position drawn as Gymnasium's
// env.reset(seed=seed) draws it for seed >= 0:
// np.random.default_rng(seed).uniform(-0.6, -0.4), one float64. A negative
// seed is read as its two's-complement uint64, as in CartPole.Reset.
func (c *MountainCar) Reset(seed int64) []float32 {
	rng := nprand.New(uint64(seed))
	c.state = [2]float64{rng.Uniform(mountainCarResetLow, mountainCarResetHigh), 0}
	c.elapsed = 0
	c.started = true
	return c.observe()
}

// Step accelerates the car by action (0: left, 1: none, 2: right) for one
// step.
//
// It panics on an action outside 0..2 and before the first Reset or
// SetState: both are caller bugs (Gymnasium asserts on them too).
//
// Stepping after termination behaves as in Gymnasium: the car keeps moving,
// terminated is recomputed from the new state, and the reward stays -1.0.
// truncated stays true past the 200th step.
func (c *MountainCar) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	if action < 0 || action > 2 {
		panic(fmt.Sprintf("envs: %s: invalid action %d (want 0, 1 or 2)", MountainCarID, action))
	}
	if !c.started {
		panic("envs: " + MountainCarID + ": Step before Reset")
	}
	c.state = mountainCarPhysics(c.state, action, math.Cos(3*c.state[0]))
	terminated = c.state[0] >= mountainCarGoalPosition && c.state[1] >= mountainCarGoalVelocity
	c.elapsed++
	truncated = c.elapsed >= mountainCarMaxSteps
	return c.observe(), -1.0, terminated, truncated
}

// mountainCarPhysics is one step of mountain_car.py (lines 137-143), given
// cos(3*position) of the current position. It is split from Step so tests
// can feed it the exact cos glibc produced for the reference and check the
// rest bit for bit, whatever the platform's libm.
func mountainCarPhysics(s [2]float64, action int, cos3p float64) [2]float64 {
	position, velocity := s[0], s[1]
	// velocity += (action - 1) * force + cos(3 * position) * (-gravity): the
	// right-hand side is summed first. Both products are rounded on their
	// own (float64(...)) so no platform fuses one into the addition.
	velocity += float64(float64(action-1)*mountainCarForce) + float64(cos3p*(-mountainCarGravity))
	// Clip the velocity, then move with the clipped velocity, then clip the
	// position.
	velocity = mountainCarClip(velocity, -mountainCarMaxSpeed, mountainCarMaxSpeed)
	position += velocity
	position = mountainCarClip(position, mountainCarMinPosition, mountainCarMaxPosition)
	// The left wall is inelastic: stopped there, moving left, the car stops.
	// The test is equality, so it also fires when position + velocity lands
	// on -1.2 exactly without clipping; the right end (0.6) keeps the
	// velocity.
	if position == mountainCarMinPosition && velocity < 0 {
		velocity = 0
	}
	return [2]float64{position, velocity}
}

// mountainCarClip is np.clip on a float64 scalar: max with lo, then min with
// hi, NaN passing through.
func mountainCarClip(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// observe rounds the state into the next observation buffer.
func (c *MountainCar) observe() []float32 {
	c.cur ^= 1
	o := &c.obsBuf[c.cur]
	o[0], o[1] = float32(c.state[0]), float32(c.state[1])
	return o[:]
}

// State returns a copy of (position, velocity).
func (c *MountainCar) State() []float64 {
	s := c.state
	return s[:]
}

// SetState sets (position, velocity), as assigning env.unwrapped.state in
// Gymnasium does: the values are used as given (not clipped until the next
// step) and the step counter is left alone. It also counts as a start, so
// Step may follow it without Reset.
func (c *MountainCar) SetState(state []float64) error {
	if len(state) != len(c.state) {
		return fmt.Errorf("envs: %s: SetState needs %d values (position, velocity), got %d",
			MountainCarID, len(c.state), len(state))
	}
	copy(c.state[:], state)
	c.started = true
	return nil
}
