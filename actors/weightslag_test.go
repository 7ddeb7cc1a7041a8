package actors

import "testing"

func TestWeightsLag(t *testing.T) {
	const term = 1 << 40
	cases := []struct {
		published, acted, lag uint64
		ok                    bool
	}{
		{term | 100, term | 90, 10, true},
		{term | 100, term | 100, 0, true},
		{term | 100, term | 101, 0, true},  // the runner's report is newer than the learner's
		{term | 100, 0, 0, false},          // a runner still on its initial weights (term 0)
		{2*term | 5, term | 900, 0, false}, // different learner terms do not compare
		{0, 0, 0, false},                   // nothing published yet
	}
	for _, c := range cases {
		if lag, ok := WeightsLag(c.published, c.acted); lag != c.lag || ok != c.ok {
			t.Errorf("WeightsLag(%#x, %#x) = %d, %v; want %d, %v", c.published, c.acted, lag, ok, c.lag, c.ok)
		}
	}
}
