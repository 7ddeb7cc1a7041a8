package actors

// learningRate is Adam's step size after updates learner updates: a linear
// decay from LearningRate to LearningRateEnd over LearningRateDecay updates,
// then LearningRateEnd (LearningRate throughout when the decay is 0). It is
// a function of the update count alone, which checkpoints keep, so a
// resumed learner goes on with the step size it had.
//
// Why a decay: on CartPole a step size that learns fast (1e-3) keeps
// changing a network that already balances the pole, and mean100 falls
// back from 500 and swings (DQN's known collapse); decayed to 1e-4 over the
// first 100k env steps it holds (BENCHMARKS.md has the runs).
func learningRate(c Config, updates uint64) float64 {
	if c.LearningRateDecay <= 0 {
		return c.LearningRate
	}
	f := min(1, float64(updates)/float64(c.LearningRateDecay))
	return c.LearningRate + f*(c.LearningRateEnd-c.LearningRate)
}
