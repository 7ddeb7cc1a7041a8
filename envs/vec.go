package envs

import (
	"fmt"
	"math/rand/v2"
)

// VecEnv steps a vector of environments of one Spec together: the unit a
// runner acts on (envs_per_runner), one batched forward pass of its
// Q-network per step. Go envs become one through NewVec; external envs (any
// language, over the env protocol) are one natively, so that a whole vector
// costs one message per step.
//
// Observations are flat and contiguous: env i's is obs[i*n:(i+1)*n], n =
// Spec().ObsSize(). The slices a VecEnv returns may be reused by its next
// call; callers that keep them must copy.
//
// Autoreset: when env i's episode ends at a Step (terminated or truncated),
// Obs holds the first observation of its next episode and Final the last
// one of the episode that ended (Gymnasium's same-step autoreset, as its
// final_observation before 1.0): one call per step, never a round trip
// just to reset.
//
// A VecEnv is not safe for concurrent use; errors are the env's failure
// (its process gone, a timeout, a broken reply): the caller ends it.
type VecEnv interface {
	Spec() Spec
	Len() int
	// Reset starts every env's episode; env i is seeded with seeds[i], and
	// the episodes after it continue that env's own random stream.
	Reset(seeds []int64) (obs []float32, err error)
	// Step applies actions[i] (0 .. NumActions-1) to env i.
	Step(actions []int32) (*VecStep, error)
	// Close releases the envs (an external env's process or connection).
	Close() error
}

// VecStep is what one VecEnv.Step returns, one entry per env.
type VecStep struct {
	Obs        []float32 // the observation to act on next (a new episode's first where one ended)
	Rewards    []float64
	Terminated []bool
	Truncated  []bool
	Final      []float32 // Len()·ObsSize: env i's row is the ended episode's last observation, where one ended
}

// Done says whether env i's episode ended at this step.
func (s *VecStep) Done(i int) bool { return s.Terminated[i] || s.Truncated[i] }

// resetStream is the PCG stream of a vector env's later reset seeds.
const resetStream = 0x7665637265736574

// goVec is NewVec's VecEnv: Go envs stepped in a loop, in this goroutine.
type goVec struct {
	spec  Spec
	envs  []Env
	rngs  []*rand.Rand // each env's reset seeds after its first
	n     int
	obs   []float32
	step  VecStep
	ready bool
}

// NewVec makes a VecEnv of n envs from newEnv (envs.Make of an id, or a
// program's own constructor). Each env draws the seeds of its later
// episodes from a stream seeded by its first Reset's seed, so a vector's
// episodes are reproducible from Reset's seeds alone.
func NewVec(n int, newEnv func() (Env, error)) (VecEnv, error) {
	if n < 1 {
		return nil, fmt.Errorf("a vector of %d envs: want at least 1", n)
	}
	v := &goVec{envs: make([]Env, n), rngs: make([]*rand.Rand, n)}
	for i := range n {
		e, err := newEnv()
		if err != nil {
			return nil, err
		}
		v.envs[i] = e
	}
	v.spec = v.envs[0].Spec()
	v.n = v.spec.ObsSize()
	v.obs = make([]float32, n*v.n)
	v.step = VecStep{Rewards: make([]float64, n), Terminated: make([]bool, n), Truncated: make([]bool, n), Final: make([]float32, n*v.n)}
	return v, nil
}

func (v *goVec) Spec() Spec { return v.spec }
func (v *goVec) Len() int   { return len(v.envs) }

func (v *goVec) Reset(seeds []int64) ([]float32, error) {
	if len(seeds) != len(v.envs) {
		return nil, fmt.Errorf("reset: %d seeds for %d envs", len(seeds), len(v.envs))
	}
	for i, e := range v.envs {
		v.rngs[i] = rand.New(rand.NewPCG(uint64(seeds[i]), resetStream))
		copy(v.obs[i*v.n:], e.Reset(seeds[i]))
	}
	v.ready = true
	return v.obs, nil
}

func (v *goVec) Step(actions []int32) (*VecStep, error) {
	if !v.ready {
		return nil, fmt.Errorf("step before reset")
	}
	if len(actions) != len(v.envs) {
		return nil, fmt.Errorf("step: %d actions for %d envs", len(actions), len(v.envs))
	}
	s := &v.step
	for i, e := range v.envs {
		a := int(actions[i])
		if a < 0 || a >= v.spec.NumActions {
			return nil, fmt.Errorf("step: action %d for env %d, want 0..%d", a, i, v.spec.NumActions-1)
		}
		obs, r, term, trunc := e.Step(a)
		s.Rewards[i], s.Terminated[i], s.Truncated[i] = r, term, trunc
		row := v.obs[i*v.n : (i+1)*v.n]
		if term || trunc {
			copy(s.Final[i*v.n:(i+1)*v.n], obs)
			obs = e.Reset(v.rngs[i].Int64())
		}
		copy(row, obs)
	}
	s.Obs = v.obs
	return s, nil
}

func (v *goVec) Close() error { return nil }
