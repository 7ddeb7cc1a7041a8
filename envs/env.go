// Package envs holds the reinforcement-learning environments qfleet trains on,
// behind one small interface, and a registry that builds them by their
// Gymnasium-style id (envs.Make("CartPole-v1")).
//
// Classic-control environments reproduce Gymnasium 1.x bit for bit (float64
// internal state, float32 observations, the same constants and evaluation
// order), so returns and learning curves compare like for like with
// Python baselines.
package envs

import (
	"fmt"
	"math"
	"strconv"
)

// Spec describes an environment to the agents that act in it.
type Spec struct {
	ID              string   // Gymnasium-style id, e.g. "CartPole-v1"
	ObsShape        []int    // shape of one observation; Step/Reset return it flattened, row-major
	ObsDType        ObsDType // what the observation's values are (Float32 unless set): the replay stores them by it
	NumActions      int      // discrete actions are 0 .. NumActions-1
	MaxEpisodeSteps int      // TimeLimit: the step that reaches it reports truncated
	RewardThreshold float64  // mean return at which the task counts as solved
}

// ObsDType is the kind of value an observation holds. Observations are
// always handed over as float32; the dtype promises which values occur, so
// that the replay and the wire can store and send them compactly.
type ObsDType uint8

const (
	Float32 ObsDType = iota // any float32 (the zero value: every env that says nothing)
	Uint8                   // whole numbers 0..255 (pixels): one byte a value in the replay
	Binary                  // 0 or 1 (MinAtar's grids): one bit a value in the replay
)

var dtypeNames = [...]string{Float32: "float32", Uint8: "uint8", Binary: "binary"}

// String is the dtype's name in configs and in the env protocol.
func (d ObsDType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return "ObsDType(" + strconv.Itoa(int(d)) + ")"
}

// ParseObsDType is the dtype of a name String gives.
func ParseObsDType(name string) (ObsDType, error) {
	for d, n := range dtypeNames {
		if n == name {
			return ObsDType(d), nil
		}
	}
	return 0, fmt.Errorf("observation dtype %q: want float32, uint8 or binary", name)
}

// Holds says whether every value of obs is one the dtype promises.
func (d ObsDType) Holds(obs []float32) bool {
	for _, v := range obs {
		switch d {
		case Uint8:
			if !(v >= 0 && v <= 255) || v != float32(int(v)) {
				return false
			}
		case Binary:
			if v != 0 && v != 1 {
				return false
			}
		default:
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false
			}
		}
	}
	return true
}

// ObsSize is the length of a flattened observation: the product of ObsShape
// (1 for an empty shape, i.e. a scalar).
func (s Spec) ObsSize() int {
	n := 1
	for _, d := range s.ObsShape {
		n *= d
	}
	return n
}

// Env is an episodic environment with a discrete action space, in the
// Gymnasium sense: Reset starts an episode, Step advances it by one action.
//
// Concurrency: an Env is not safe for concurrent use. It belongs to one
// goroutine at a time (typically one runner); run several envs for
// parallelism, each from its own Make.
//
// Observation ownership: the slice returned by Reset or Step may be owned and
// reused by the env. It is valid until the next call to Reset or Step on the
// same env; callers that keep an observation (replay buffers, n-step queues)
// must copy it. Callers must not modify it.
//
// Episode end: terminated means the MDP reached a terminal state (do not
// bootstrap from the next observation); truncated means the time limit
// MaxEpisodeSteps was reached (do bootstrap). Both can be true on the same
// step. After either, call Reset; what stepping further does is up to the env
// and documented there.
type Env interface {
	Spec() Spec                 // ID, ObsShape []int, NumActions int, MaxEpisodeSteps int, RewardThreshold float64
	Reset(seed int64) []float32 // starts an episode (step counter to 0); the same seed gives the same start
	Step(action int) (obs []float32, reward float64, terminated, truncated bool)
}

// Stateful is implemented by envs whose full dynamic state is a small float64
// vector (the classic-control ones). Tests use it to replay a reference
// trajectory step by step, and tools to snapshot or inspect an episode.
type Stateful interface {
	// State returns a copy of the internal state, in Gymnasium's order.
	State() []float64
	// SetState overwrites the internal state. It leaves the step counter (and
	// so the time limit) alone. It returns an error, and changes nothing, if
	// the vector has the wrong length.
	SetState(state []float64) error
}
