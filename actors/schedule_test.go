package actors

import (
	"math"
	"testing"
)

func TestLearningRateSchedule(t *testing.T) {
	c := DefaultConfig()
	c.LearningRate, c.LearningRateEnd, c.LearningRateDecay = 1e-3, 1e-4, 1000
	for _, k := range []struct {
		updates uint64
		want    float64
	}{{0, 1e-3}, {500, 5.5e-4}, {1000, 1e-4}, {5000, 1e-4}} {
		if got := learningRate(c, k.updates); math.Abs(got-k.want) > 1e-12 {
			t.Errorf("after %d updates: %g, want %g", k.updates, got, k.want)
		}
	}
	c.LearningRateDecay = 0
	if got := learningRate(c, 5000); got != 1e-3 {
		t.Errorf("no decay: %g, want learning_rate 1e-3 throughout", got)
	}
}
