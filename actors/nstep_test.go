package actors

import (
	"math"
	"testing"
)

type emitted struct {
	obs      float32
	action   int
	reward   float64
	discount float64
	next     float32
}

func collect(out *[]emitted) TransitionSink {
	return func(obs []float32, action int, reward, discount float64, nextObs []float32) {
		*out = append(*out, emitted{obs[0], action, reward, discount, nextObs[0]})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestNStepMidEpisodeAndTermination(t *testing.T) {
	const g = 0.9
	acc := NewNStepAccumulator(3, g)
	var out []emitted
	// Episode: obs 0..4, rewards 1,2,3,4,5, terminated after the 5th step.
	for i := 0; i < 5; i++ {
		acc.Add([]float32{float32(i)}, i, float64(i+1), []float32{float32(i + 1)}, i == 4, false, collect(&out))
	}
	want := []emitted{
		{0, 0, 1 + g*2 + g*g*3, g * g * g, 3},
		{1, 1, 2 + g*3 + g*g*4, g * g * g, 4},
		{2, 2, 3 + g*4 + g*g*5, 0, 5}, // terminal inside the window: no bootstrap
		{3, 3, 4 + g*5, 0, 5},
		{4, 4, 5, 0, 5},
	}
	check(t, out, want)
}

func TestNStepTruncationBootstraps(t *testing.T) {
	const g = 0.5
	acc := NewNStepAccumulator(3, g)
	var out []emitted
	// Time limit after 2 steps: both transitions bootstrap from the last obs.
	acc.Add([]float32{0}, 1, 1, []float32{1}, false, false, collect(&out))
	acc.Add([]float32{1}, 0, 1, []float32{2}, false, true, collect(&out))
	check(t, out, []emitted{{0, 1, 1 + g, g * g, 2}, {1, 0, 1, g, 2}})
	// The next episode starts clean.
	out = nil
	acc.Add([]float32{10}, 1, 7, []float32{11}, true, true, collect(&out))
	check(t, out, []emitted{{10, 1, 7, 0, 11}}) // terminated wins over truncated
}

func TestOneStep(t *testing.T) {
	acc := NewNStepAccumulator(1, 0.99)
	var out []emitted
	acc.Add([]float32{0}, 1, 1, []float32{1}, false, false, collect(&out))
	acc.Add([]float32{1}, 0, 1, []float32{2}, true, false, collect(&out))
	check(t, out, []emitted{{0, 1, 1, 0.99, 1}, {1, 0, 1, 0, 2}})
}

func check(t *testing.T, got, want []emitted) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d transitions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.obs != w.obs || g.action != w.action || g.next != w.next || !near(g.reward, w.reward) || !near(g.discount, w.discount) {
			t.Errorf("transition %d = %+v, want %+v", i, g, w)
		}
	}
}
