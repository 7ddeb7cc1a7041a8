package envs

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Expected values come from Gymnasium 1.4.0 itself, run once under Debian's
// python3/numpy with glibc sin/cos (envs/testdata/gen_golden.py writes
// cartpole_golden_test.go). Threshold and time-limit tests below are reasoned
// out from cartpole.py and TimeLimit directly.

// libmAgrees reports whether Go's math.Sin/Cos reproduce the glibc values the
// reference used for theta. Go's are within 1 ulp of glibc but not identical
// on every argument; where they differ a bit-exact comparison of Step is
// meaningless, and cartPoleEuler (fed glibc's values) carries the exact check.
func libmAgrees(theta, sin, cos float64) bool {
	return math.Sin(theta) == sin && math.Cos(theta) == cos
}

// closeState allows for a 1-ulp sin/cos difference propagated through one
// step (a handful of ulps of the larger terms).
func closeState(a, b [4]float64) bool {
	for i := range a {
		if d := math.Abs(a[i] - b[i]); d > 1e-14*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

func bitsEqual(a, b [4]float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func state4(t *testing.T, c *CartPole) [4]float64 {
	t.Helper()
	s := c.State()
	if len(s) != 4 {
		t.Fatalf("State() has %d values, want 4", len(s))
	}
	return [4]float64(s)
}

func mustSetState(t *testing.T, c *CartPole, s ...float64) {
	t.Helper()
	if err := c.SetState(s); err != nil {
		t.Fatal(err)
	}
}

func checkObsIsFloat32State(t *testing.T, obs []float32, c *CartPole) {
	t.Helper()
	s := c.State()
	if len(obs) != 4 {
		t.Fatalf("obs has %d values, want 4", len(obs))
	}
	for i := range s {
		if obs[i] != float32(s[i]) {
			t.Fatalf("obs[%d] = %v, want float32(state) = %v", i, obs[i], float32(s[i]))
		}
	}
}

func TestCartPoleConstants(t *testing.T) {
	// Run-time float64 arithmetic, as Python does it (vars are not constant-folded
	// exactly the way untyped constants are).
	masspoleV, masscartV, lengthV, four, three := 0.1, 1.0, 0.5, 4.0, 3.0
	twelve, two, deg := 12.0, 2.0, 360.0
	if got := masspoleV + masscartV; got != totalMass {
		t.Errorf("totalMass = %v, Python 0.1+1.0 = %v", totalMass, got)
	}
	if got := masspoleV * lengthV; got != polemassLength {
		t.Errorf("polemassLength = %v, Python 0.1*0.5 = %v", polemassLength, got)
	}
	if got := four / three; got != fourThirds {
		t.Errorf("fourThirds = %v, Python 4.0/3.0 = %v", float64(fourThirds), got)
	}
	pi := math.Pi
	if got := twelve * two * pi / deg; got != thetaThreshold {
		t.Errorf("thetaThreshold = %v, Python 12*2*math.pi/360 = %v", thetaThreshold, got)
	}
}

func TestCartPoleSpec(t *testing.T) {
	env, err := Make("CartPole-v1")
	if err != nil {
		t.Fatal(err)
	}
	s := env.Spec()
	if s.ID != "CartPole-v1" || !slices.Equal(s.ObsShape, []int{4}) || s.ObsSize() != 4 ||
		s.NumActions != 2 || s.MaxEpisodeSteps != 500 || s.RewardThreshold != 475 {
		t.Errorf("Spec() = %+v", s)
	}
	if _, ok := env.(Stateful); !ok {
		t.Error("CartPole does not implement Stateful")
	}
	if n := (Spec{ObsShape: []int{10, 10, 4}}).ObsSize(); n != 400 {
		t.Errorf("ObsSize of 10x10x4 = %d", n)
	}
}

func TestCartPoleResetMatchesGymnasium(t *testing.T) {
	c := NewCartPole()
	for _, g := range cartPoleResetGoldens {
		obs := c.Reset(g.seed)
		if s := state4(t, c); !bitsEqual(s, g.state) {
			t.Errorf("Reset(%d) state %v, Gymnasium %v", g.seed, s, g.state)
		}
		checkObsIsFloat32State(t, obs, c)
	}
}

func TestCartPoleResetDeterminism(t *testing.T) {
	a, b := NewCartPole(), NewCartPole()
	o1 := slices.Clone(a.Reset(7))
	a.Step(1)
	o2 := slices.Clone(a.Reset(7))
	o3 := slices.Clone(b.Reset(7))
	if !slices.Equal(o1, o2) || !slices.Equal(o1, o3) {
		t.Errorf("same seed, different starts: %v %v %v", o1, o2, o3)
	}
	o4 := slices.Clone(a.Reset(8))
	if slices.Equal(o1, o4) {
		t.Errorf("seeds 7 and 8 give the same start %v", o1)
	}
	for _, v := range o1 {
		if v < -0.05 || v >= 0.05 {
			t.Errorf("start %v outside [-0.05, 0.05)", o1)
		}
	}
	// Negative seeds are deterministic too (read as uint64).
	if !slices.Equal(slices.Clone(a.Reset(-1)), slices.Clone(b.Reset(-1))) {
		t.Error("Reset(-1) not deterministic")
	}
}

// The arithmetic of one step, fed glibc's sin/cos, matches Gymnasium to the bit
// on every case; Step itself (with Go's sin/cos) matches to the bit wherever Go's
// libm agrees with glibc, and within a few ulps elsewhere.
func TestCartPoleStepMatchesGymnasium(t *testing.T) {
	inexact := 0
	for i, g := range cartPoleStepGoldens {
		force := -forceMag
		if g.action == 1 {
			force = forceMag
		}
		if got := cartPoleEuler(g.state, force, g.sin, g.cos); !bitsEqual(got, g.next) {
			t.Errorf("case %d: cartPoleEuler(%v, %d) = %v, Gymnasium %v", i, g.state, g.action, got, g.next)
		}

		c := NewCartPole()
		mustSetState(t, c, g.state[:]...)
		obs, r, term, trunc := c.Step(g.action)
		s := state4(t, c)
		if libmAgrees(g.state[2], g.sin, g.cos) {
			if !bitsEqual(s, g.next) {
				t.Errorf("case %d: Step from %v: %v, Gymnasium %v", i, g.state, s, g.next)
			}
			for j := range obs {
				if float64(obs[j]) != g.obs[j] {
					t.Errorf("case %d: obs %v, Gymnasium %v", i, obs, g.obs)
					break
				}
			}
		} else {
			inexact++
			if !closeState(s, g.next) {
				t.Errorf("case %d: Step from %v: %v, Gymnasium %v (beyond libm tolerance)", i, g.state, s, g.next)
			}
		}
		checkObsIsFloat32State(t, obs, c)
		if r != g.reward || term != g.terminated || trunc {
			t.Errorf("case %d: reward %v terminated %v truncated %v, Gymnasium %v %v false",
				i, r, term, trunc, g.reward, g.terminated)
		}
	}
	t.Logf("%d/%d cases where Go's sin/cos differ from glibc's", inexact, len(cartPoleStepGoldens))
}

func TestCartPoleThresholdsAreStrict(t *testing.T) {
	above := math.Nextafter(xThreshold, 3)
	thAbove := math.Nextafter(thetaThreshold, 1)
	for _, tc := range []struct {
		name  string
		state []float64
		term  bool
	}{
		// With zero velocities a step leaves x (resp. theta) exactly where it was.
		{"x exactly +2.4", []float64{2.4, 0, 0, 0}, false},
		{"x exactly -2.4", []float64{-2.4, 0, 0, 0}, false},
		{"x one ulp above 2.4", []float64{above, 0, 0, 0}, true},
		{"x one ulp below -2.4", []float64{-above, 0, 0, 0}, true},
		{"theta exactly +threshold", []float64{0, 0, thetaThreshold, 0}, false},
		{"theta exactly -threshold", []float64{0, 0, -thetaThreshold, 0}, false},
		{"theta one ulp above", []float64{0, 0, thAbove, 0}, true},
		{"theta one ulp below -threshold", []float64{0, 0, -thAbove, 0}, true},
	} {
		c := NewCartPole()
		mustSetState(t, c, tc.state...)
		_, r, term, _ := c.Step(0)
		s := c.State()
		if s[0] != tc.state[0] || s[2] != tc.state[2] {
			t.Fatalf("%s: position moved to %v; the test's premise is broken", tc.name, s)
		}
		if term != tc.term || r != 1 {
			t.Errorf("%s: terminated %v reward %v, want %v 1", tc.name, term, r, tc.term)
		}
	}
}

func TestCartPoleRewardAroundTermination(t *testing.T) {
	c := NewCartPole()
	c.Reset(0)
	mustSetState(t, c, 2.4, 1, 0, 0) // x goes to 2.42 on the next step
	if _, r, term, _ := c.Step(1); !term || r != 1 {
		t.Fatalf("terminal step: terminated %v reward %v, want true 1", term, r)
	}
	for i := range 3 {
		if _, r, term, _ := c.Step(1); !term || r != 0 {
			t.Fatalf("step %d after termination: terminated %v reward %v, want true 0", i+1, term, r)
		}
	}
	c.Reset(0)
	if _, r, term, _ := c.Step(1); term || r != 1 {
		t.Fatalf("after Reset: terminated %v reward %v, want false 1", term, r)
	}
}

// stepBalanced steps n times from the upright state, keeping the episode alive.
func stepBalanced(t *testing.T, c *CartPole, n int) (term, trunc bool) {
	t.Helper()
	for range n {
		mustSetState(t, c, 0, 0, 0, 0)
		_, _, term, trunc = c.Step(0)
	}
	return term, trunc
}

func TestCartPoleTruncatesAtExactly500(t *testing.T) {
	c := NewCartPole()
	c.Reset(1)
	for i := 1; i <= 500; i++ {
		mustSetState(t, c, 0, 0, 0, 0)
		_, r, term, trunc := c.Step(i % 2)
		if term || r != 1 {
			t.Fatalf("step %d: terminated %v reward %v", i, term, r)
		}
		if trunc != (i == 500) {
			t.Fatalf("step %d: truncated = %v", i, trunc)
		}
	}
}

func TestCartPoleTerminatedAndTruncatedTogether(t *testing.T) {
	c := NewCartPole()
	c.Reset(3)
	if term, trunc := stepBalanced(t, c, 499); term || trunc {
		t.Fatalf("after 499 steps: terminated %v truncated %v", term, trunc)
	}
	mustSetState(t, c, 2.4, 1, 0, 0)
	_, r, term, trunc := c.Step(1)
	want := cartPoleBothFlags
	if r != want.reward || term != want.terminated || trunc != want.truncated {
		t.Errorf("step 500 over the edge: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
			r, term, trunc, want.reward, want.terminated, want.truncated)
	}
}

func TestCartPoleResetResetsStepCounter(t *testing.T) {
	c := NewCartPole()
	c.Reset(0)
	stepBalanced(t, c, 300)
	c.Reset(0)
	if _, trunc := stepBalanced(t, c, 499); trunc {
		t.Fatal("truncated before step 500 of the new episode")
	}
	if _, trunc := stepBalanced(t, c, 1); !trunc {
		t.Fatal("not truncated at step 500 of the new episode")
	}
}

func TestCartPoleSetState(t *testing.T) {
	c := NewCartPole()
	c.Reset(0)
	stepBalanced(t, c, 250)
	mustSetState(t, c, 0.1, 0.2, 0.03, -0.4)
	if s := c.State(); !slices.Equal(s, []float64{0.1, 0.2, 0.03, -0.4}) {
		t.Errorf("State() = %v after SetState", s)
	}
	if _, trunc := stepBalanced(t, c, 249); trunc {
		t.Fatal("truncated early: SetState changed the step counter")
	}
	if _, trunc := stepBalanced(t, c, 1); !trunc {
		t.Fatal("not truncated at step 500: SetState reset the step counter")
	}

	before := c.State()
	for _, bad := range [][]float64{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if err := c.SetState(bad); err == nil {
			t.Errorf("SetState(%v) accepted", bad)
		}
	}
	if !slices.Equal(c.State(), before) {
		t.Error("a rejected SetState changed the state")
	}
	// State returns a copy.
	s := c.State()
	s[0] = 99
	if c.State()[0] == 99 {
		t.Error("State() aliases the env's state")
	}
}

// Reference episodes, replayed step by step: the state is set to Gymnasium's
// before every step (so a 1-ulp libm difference cannot grow, as it would
// open loop: balancing amplifies errors ~e-fold every 12 steps), and flags and
// rewards, including truncation at 500 and rewards after termination, come
// from the env's own counters.
func TestCartPoleRolloutsMatchGymnasium(t *testing.T) {
	for _, ro := range cartPoleRollouts {
		t.Run(ro.name, func(t *testing.T) {
			c := NewCartPole()
			c.Reset(ro.seed)
			prev := state4(t, c)
			inexact := 0
			for i, st := range ro.steps {
				mustSetState(t, c, prev[:]...)
				obs, r, term, trunc := c.Step(st.action)
				s := state4(t, c)
				if libmAgrees(prev[2], st.sin, st.cos) {
					if !bitsEqual(s, st.next) {
						t.Fatalf("step %d: %v, Gymnasium %v", i+1, s, st.next)
					}
				} else {
					inexact++
					if !closeState(s, st.next) {
						t.Fatalf("step %d: %v, Gymnasium %v (beyond libm tolerance)", i+1, s, st.next)
					}
				}
				checkObsIsFloat32State(t, obs, c)
				if r != st.reward || term != st.terminated || trunc != st.truncated {
					t.Fatalf("step %d: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
						i+1, r, term, trunc, st.reward, st.terminated, st.truncated)
				}
				prev = st.next
			}
			t.Logf("%d steps, %d with a sin/cos difference from glibc", len(ro.steps), inexact)
		})
	}
}

func TestCartPoleObservationBuffers(t *testing.T) {
	c := NewCartPole()
	o0 := c.Reset(0)
	keep := slices.Clone(o0)
	o1, _, _, _ := c.Step(1)
	// The previous observation survives one call, so (obs, nextObs) pairs are safe.
	if !slices.Equal(o0, keep) || &o0[0] == &o1[0] {
		t.Error("Step overwrote the observation Reset returned")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		mustSetState(t, c, 0, 0, 0, 0)
		c.Step(1)
	})
	if allocs != 0 {
		t.Errorf("Step allocates %v times per call", allocs)
	}
}

func TestRegistry(t *testing.T) {
	a, err := Make("CartPole-v1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Make("CartPole-v1")
	if a == b {
		t.Error("Make returned the same instance twice")
	}
	if ids := IDs(); !slices.IsSorted(ids) || !slices.Contains(ids, "CartPole-v1") {
		t.Errorf("IDs() = %v", ids)
	}

	_, err = Make("CartPole-v0")
	if !errors.Is(err, ErrUnknownEnv) {
		t.Fatalf("Make(unknown) error %v does not wrap ErrUnknownEnv", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"CartPole-v0"`) || !strings.Contains(msg, strings.Join(IDs(), ", ")) {
		t.Errorf("error %q should name the id and list the known ids %v", msg, IDs())
	}
	t.Log(msg)

	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"duplicate id", func() { Register("CartPole-v1", func() Env { return NewCartPole() }) }},
		{"empty id", func() { Register("", func() Env { return NewCartPole() }) }},
		{"nil factory", func() { Register("Nil-v0", nil) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register with %s did not panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
	if slices.Contains(IDs(), "Nil-v0") {
		t.Error("a rejected Register left an entry")
	}
}

func TestRegistryConcurrentMake(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				env, err := Make("CartPole-v1")
				if err != nil {
					t.Error(err)
					return
				}
				env.Reset(1)
				_ = IDs()
			}
		})
	}
	wg.Wait()
}
