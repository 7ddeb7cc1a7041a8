package messages

// Append adds one transition to the batch: the form of an n-step
// accumulator's output (actors.TransitionSink), so that a runner, the bench
// and the tests build batches one way.
func (b *ExperienceBatch) Append(obs []float32, action int, reward, discount float64, nextObs []float32) {
	b.Observations = append(b.Observations, obs...)
	b.NextObservations = append(b.NextObservations, nextObs...)
	b.Actions = append(b.Actions, uint32(action))
	b.Rewards = append(b.Rewards, float32(reward))
	b.Discounts = append(b.Discounts, float32(discount))
	b.Count++
}
