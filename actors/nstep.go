package actors

// TransitionSink receives finished transitions: observation, action, the
// n-step reward Σ_{k<m} γᵏ·r_{t+k}, discount γᵐ·(1−terminated) and the
// observation m steps later.
type TransitionSink func(obs []float32, action int, reward, discount float64, nextObs []float32)

// NStepAccumulator turns a stream of env steps into n-step transitions on the
// runner side (Ape-X), so the replay and learner only ever see finished ones.
// At an episode's end every pending transition is emitted with however many
// steps it has: discount 0 if the episode terminated (no bootstrap), γᵐ if it
// was truncated by the time limit (bootstrap from the last observation).
type NStepAccumulator struct {
	n       int
	gamma   float64
	pending []pendingStep // oldest first, at most n
	free    [][]float32   // observation buffers to reuse
}

type pendingStep struct {
	obs    []float32
	action int
	reward float64 // Σ γᵏ r so far
	scale  float64 // γ^steps: the next reward's weight, and the discount if it ended now
}

// NewNStepAccumulator returns an accumulator of n-step returns with discount gamma.
func NewNStepAccumulator(n int, gamma float64) *NStepAccumulator {
	return &NStepAccumulator{n: n, gamma: gamma}
}

// Add records one env step taken from obs with action, and emits the
// transitions it completes.
func (a *NStepAccumulator) Add(obs []float32, action int, reward float64, nextObs []float32, terminated, truncated bool, emit TransitionSink) {
	var buf []float32
	if k := len(a.free); k > 0 {
		buf, a.free = a.free[k-1], a.free[:k-1]
	}
	// γᵏ by running products, not math.Pow: this runs for every pending
	// step of every env step, and Pow was a few percent of a runner's time.
	a.pending = append(a.pending, pendingStep{obs: append(buf[:0], obs...), action: action, scale: 1})
	for i := range a.pending {
		p := &a.pending[i]
		p.reward += p.scale * reward
		p.scale *= a.gamma
	}
	if terminated || truncated {
		for _, p := range a.pending {
			discount := 0.0
			if !terminated {
				discount = p.scale
			}
			emit(p.obs, p.action, p.reward, discount, nextObs)
			a.free = append(a.free, p.obs)
		}
		a.pending = a.pending[:0]
		return
	}
	if len(a.pending) == a.n {
		p := a.pending[0]
		emit(p.obs, p.action, p.reward, p.scale, nextObs)
		a.free = append(a.free, p.obs)
		copy(a.pending, a.pending[1:])
		a.pending = a.pending[:len(a.pending)-1]
	}
}

// Reset drops pending steps (a runner restarted mid-episode).
func (a *NStepAccumulator) Reset() {
	for _, p := range a.pending {
		a.free = append(a.free, p.obs)
	}
	a.pending = a.pending[:0]
}
