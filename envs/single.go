package envs

// Single is a vector of one env seen as an Env, for what steps one env at a
// time (evaluation, rendering, tests): an external env made with Make.
//
// Reset(seed) resets the vector with that seed (for an external env one
// round trip), so the same seed gives the same start as with a Go env.
// When an episode ends, Step returns its last observation (the vector's
// autoreset has already begun the next episode; the following Reset
// replaces it). The Env interface has no errors: a failed Reset or Step
// ends the episode (terminated, reward 0, a zero observation) and Err
// tells why. Close(env) releases the vector.
func Single(v VecEnv) Env {
	return &single{v: v, zero: make([]float32, v.Spec().ObsSize()), act: make([]int32, 1), seed: make([]int64, 1)}
}

type single struct {
	v    VecEnv
	err  error
	zero []float32
	act  []int32
	seed []int64
}

func (s *single) Spec() Spec { return s.v.Spec() }

func (s *single) Reset(seed int64) []float32 {
	if s.err != nil {
		return s.zero
	}
	s.seed[0] = seed
	obs, err := s.v.Reset(s.seed)
	if err != nil {
		s.err = err
		return s.zero
	}
	return obs
}

func (s *single) Step(action int) ([]float32, float64, bool, bool) {
	if s.err != nil {
		return s.zero, 0, true, false
	}
	s.act[0] = int32(action)
	st, err := s.v.Step(s.act)
	if err != nil {
		s.err = err
		return s.zero, 0, true, false
	}
	if st.Done(0) {
		return st.Final, st.Rewards[0], st.Terminated[0], st.Truncated[0]
	}
	return st.Obs, st.Rewards[0], false, false
}

// Err is why a Single env failed, nil while it works (and for any other Env).
func Err(e Env) error {
	if s, ok := e.(*single); ok {
		return s.err
	}
	return nil
}

// Close releases a Single env's vector (an external env's process or
// connection); other envs hold nothing to release.
func Close(e Env) error {
	if s, ok := e.(*single); ok {
		return s.v.Close()
	}
	return nil
}
