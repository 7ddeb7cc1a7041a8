package sweep

import (
	"math"
	"strings"
	"testing"
)

// ASHA's rule, rung by rung: the first trials at a rung go on; later ones
// only within the top ⌈n/η⌉ of all recorded there; a trial without a
// mean100 yet ranks below every number; each rung is judged once.
func TestASHABook(t *testing.T) {
	b := newASHABook(ASHA{MinSteps: 1000, Eta: 3})
	if r := b.a.rung(2); r != 9000 {
		t.Fatalf("rung 2 = %d, want 9000", r)
	}
	go_ := func(trial string, steps uint64, m float64, has bool, wantStop bool) verdict {
		t.Helper()
		v := b.report(trial, steps, m, has)
		if v.Stop != wantStop {
			t.Fatalf("%s at %d steps, mean100 %v (has %v): stop %v (%s), want %v", trial, steps, m, has, v.Stop, v.Why, wantStop)
		}
		return v
	}
	go_("a", 500, 0, false, false) // before the first rung: nothing recorded
	go_("a", 1200, 50, true, false)
	go_("b", 1100, 80, true, false) // 2 at rung 0: keep 1; b is best
	go_("c", 1000, 10, true, true)  // 3 at rung 0: keep 1; two better
	go_("d", 1000, 60, true, false) // 4 at rung 0: keep 2; only b did better
	go_("b", 3500, 90, true, false) // alone at rung 1 (3000)
	go_("d", 3000, 40, true, true)  // 2 at rung 1: keep 1; b did better
}

func TestASHABookRanks(t *testing.T) {
	b := newASHABook(ASHA{MinSteps: 1000, Eta: 2})
	// Rung 0, η 2: each trial is judged against those before it: keep
	// ⌈n/2⌉ of the n recorded so far.
	for _, c := range []struct {
		trial string
		m     float64
		stop  bool
	}{{"a", 10, false}, {"b", 20, false}, {"c", 15, false}, {"d", 5, true}, {"e", 30, false}} {
		if v := b.report(c.trial, 1000, c.m, true); v.Stop != c.stop {
			t.Fatalf("%s (mean100 %v): stop %v (%s), want %v", c.trial, c.m, v.Stop, v.Why, c.stop)
		}
	}
	// No mean100 yet ranks below every number: 5 recorded, 6th without one.
	if v := b.report("f", 1000, 0, false); !v.Stop || !strings.Contains(v.Why, "none yet") {
		t.Fatalf("a trial without mean100 among numbers: %+v", v)
	}
	// A report past several rungs records each; it stops at the first it
	// fails. "e" (best at rung 0) passes rung 1 first: goes on.
	if v := b.report("e", 4100, 31, true); v.Stop {
		t.Fatalf("e at rungs 1 and 2 alone: %+v", v)
	}
	if got := len(b.trials["e"]); got != 3 {
		t.Fatalf("e recorded at %d rungs, want 3 (1000, 2000, 4000)", got)
	}
	// A rung is judged once: e's later reports at the same rungs change nothing.
	if v := b.report("e", 4100, 1, true); v.Stop || len(b.rungs[1]) != 1 {
		t.Fatalf("a repeated report was judged again: %+v, rung 1 holds %d", v, len(b.rungs[1]))
	}
	// Rows keep the values by rung steps and read back in order.
	m := b.rungMap("e")
	if len(m) != 3 || m["2000"] == nil || *m["2000"] != 31 {
		t.Fatalf("rung map %v", m)
	}
	again := newASHABook(b.a)
	again.seed("e", again.rungValues(m))
	if len(again.rungs) != 3 || *again.rungs[2][0] != 31 {
		t.Fatalf("seeded book %v", again.rungs)
	}
}

func TestASHAValidate(t *testing.T) {
	for _, a := range []ASHA{{MinSteps: 0, Eta: 3}, {MinSteps: 10, Eta: 1.5}, {MinSteps: 10, Eta: math.NaN()}, {MinSteps: 10, Eta: 1000}} {
		if a.validate() == nil {
			t.Errorf("%+v: no error", a)
		}
	}
	if err := (ASHA{MinSteps: 10, Eta: 3}).validate(); err != nil {
		t.Error(err)
	}
}
