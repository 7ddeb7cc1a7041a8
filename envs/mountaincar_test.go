package envs

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// Expected values come from Gymnasium 1.4.0 itself, run once under Debian's
// python3/numpy (envs/testdata/gen_golden_classic.py writes
// mountaincar_golden_test.go), with the math.cos(3*position) glibc gave it
// recorded per step: fed to mountainCarPhysics it makes the comparison bit
// for bit whatever Go's libm does, and Step (on math.Cos) is bit-exact
// wherever math.Cos agrees with glibc. Edge and time-limit tests are reasoned
// out from mountain_car.py and TimeLimit directly.

func mountainCarBitsEqual(a, b [2]float64) bool {
	return math.Float64bits(a[0]) == math.Float64bits(b[0]) && math.Float64bits(a[1]) == math.Float64bits(b[1])
}

// mountainCarClose allows for a one-ulp cos difference: it reaches the
// velocity through a factor 0.0025 (a few ulps of 0.07, 1.4e-17 each) and the
// position through the velocity, where it can flip the rounding of
// position + velocity (one ulp of ~1, 2.2e-16).
func mountainCarClose(a, b [2]float64) bool {
	return math.Abs(a[0]-b[0]) <= 5e-16 && math.Abs(a[1]-b[1]) <= 1e-16
}

func mountainCarState(t *testing.T, c *MountainCar) [2]float64 {
	t.Helper()
	s := c.State()
	if len(s) != 2 {
		t.Fatalf("State() has %d values, want 2", len(s))
	}
	return [2]float64(s)
}

func mountainCarSet(t *testing.T, c *MountainCar, s ...float64) {
	t.Helper()
	if err := c.SetState(s); err != nil {
		t.Fatal(err)
	}
}

func checkMountainCarObs(t *testing.T, obs []float32, c *MountainCar) {
	t.Helper()
	s := c.State()
	if len(obs) != 2 || obs[0] != float32(s[0]) || obs[1] != float32(s[1]) {
		t.Fatalf("obs %v, want float32 of state %v", obs, s)
	}
}

func TestMountainCarSpec(t *testing.T) {
	env, err := Make("MountainCar-v0")
	if err != nil {
		t.Fatal(err)
	}
	s := env.Spec()
	if s.ID != "MountainCar-v0" || !slices.Equal(s.ObsShape, []int{2}) || s.ObsSize() != 2 ||
		s.NumActions != 3 || s.MaxEpisodeSteps != 200 || s.RewardThreshold != -110 {
		t.Errorf("Spec() = %+v", s)
	}
	if _, ok := env.(Stateful); !ok {
		t.Error("MountainCar does not implement Stateful")
	}
	if b, _ := Make("MountainCar-v0"); b == env {
		t.Error("Make returned the same instance twice")
	}
}

func TestMountainCarResetMatchesGymnasium(t *testing.T) {
	c := NewMountainCar()
	for _, g := range mountainCarResetGoldens {
		obs := c.Reset(g.seed)
		if s := mountainCarState(t, c); !mountainCarBitsEqual(s, g.state) {
			t.Errorf("Reset(%d) state %v, Gymnasium %v", g.seed, s, g.state)
		}
		checkMountainCarObs(t, obs, c)
	}
}

func TestMountainCarResetDeterminism(t *testing.T) {
	a, b := NewMountainCar(), NewMountainCar()
	o1 := slices.Clone(a.Reset(7))
	a.Step(2)
	o2 := slices.Clone(a.Reset(7))
	o3 := slices.Clone(b.Reset(7))
	if !slices.Equal(o1, o2) || !slices.Equal(o1, o3) {
		t.Errorf("same seed, different starts: %v %v %v", o1, o2, o3)
	}
	if o4 := slices.Clone(a.Reset(8)); slices.Equal(o1, o4) {
		t.Errorf("seeds 7 and 8 give the same start %v", o1)
	}
	for seed := range int64(200) {
		a.Reset(seed)
		if s := a.State(); s[0] < -0.6 || s[0] >= -0.4 || s[1] != 0 {
			t.Fatalf("Reset(%d) state %v: want position in [-0.6, -0.4), velocity 0", seed, s)
		}
	}
	if !slices.Equal(slices.Clone(a.Reset(-1)), slices.Clone(b.Reset(-1))) {
		t.Error("Reset(-1) not deterministic")
	}
}

// One step from a set state, including the edges: the left wall (clipped and
// landed on exactly), the right end, both velocity clips, and the goal at
// exactly 0.5 with velocity exactly 0 (terminated: both tests are >=).
func TestMountainCarStepMatchesGymnasium(t *testing.T) {
	inexact := 0
	for i, g := range mountainCarStepGoldens {
		if got := mountainCarPhysics(g.state, g.action, g.cos); !mountainCarBitsEqual(got, g.next) {
			t.Errorf("case %d (%s): physics(%v, %d) = %v, Gymnasium %v", i, g.name, g.state, g.action, got, g.next)
		}

		c := NewMountainCar()
		mountainCarSet(t, c, g.state[:]...)
		obs, r, term, trunc := c.Step(g.action)
		s := mountainCarState(t, c)
		if math.Cos(3*g.state[0]) == g.cos {
			if !mountainCarBitsEqual(s, g.next) {
				t.Errorf("case %d (%s): Step from %v: %v, Gymnasium %v", i, g.name, g.state, s, g.next)
			}
			if float64(obs[0]) != g.obs[0] || float64(obs[1]) != g.obs[1] {
				t.Errorf("case %d (%s): obs %v, Gymnasium %v", i, g.name, obs, g.obs)
			}
		} else {
			inexact++
			if !mountainCarClose(s, g.next) {
				t.Errorf("case %d (%s): Step from %v: %v, Gymnasium %v (beyond libm tolerance)", i, g.name, g.state, s, g.next)
			}
		}
		checkMountainCarObs(t, obs, c)
		if r != g.reward || term != g.terminated || trunc {
			t.Errorf("case %d (%s): reward %v terminated %v truncated %v, Gymnasium %v %v false",
				i, g.name, r, term, trunc, g.reward, g.terminated)
		}
	}
	t.Logf("%d/%d cases where Go's cos differs from glibc's", inexact, len(mountainCarStepGoldens))
}

// The edges reasoned out from mountain_car.py, on exact arithmetic (cos
// passed in, so no libm is involved).
func TestMountainCarEdges(t *testing.T) {
	goal := func(s [2]float64) bool {
		return s[0] >= mountainCarGoalPosition && s[1] >= mountainCarGoalVelocity
	}
	// No force (action 1) and cos = 0: the state moves by its velocity only.
	p6, v7 := 0.6, 0.07 // variables: run-time float64 arithmetic below
	for _, tc := range []struct {
		name  string
		state [2]float64
		next  [2]float64
		term  bool
	}{
		{"goal exactly, at rest", [2]float64{0.5, 0}, [2]float64{0.5, 0}, true},
		{"just short of the goal", [2]float64{math.Nextafter(0.5, 0), 0}, [2]float64{math.Nextafter(0.5, 0), 0}, false},
		{"on the goal moving left", [2]float64{0.6, -0.1}, [2]float64{p6 - v7, -0.07}, false},
		{"past the right end", [2]float64{0.59, 0.05}, [2]float64{0.6, 0.05}, true},
		{"into the left wall", [2]float64{-1.19, -0.05}, [2]float64{-1.2, 0}, false},
		{"at the left wall, still", [2]float64{-1.2, 0}, [2]float64{-1.2, 0}, false},
		{"velocity clipped", [2]float64{0, 0.5}, [2]float64{0.07, 0.07}, false},
		{"negative velocity clipped", [2]float64{0, -0.5}, [2]float64{-0.07, -0.07}, false},
	} {
		got := mountainCarPhysics(tc.state, 1, 0)
		if !mountainCarBitsEqual(got, tc.next) || goal(got) != tc.term {
			t.Errorf("%s: %v -> %v (goal %v), want %v (goal %v)", tc.name, tc.state, got, goal(got), tc.next, tc.term)
		}
	}
	// The wall test is position == -1.2 after the clip, with the clipped
	// velocity: a car landing on -1.2 exactly stops too, one landing a hair
	// inside keeps its velocity.
	v := -0.03
	p := -1.2 - v // -1.17, rounded; p + v need not be exactly -1.2
	for range 100 {
		if p+v > -1.2 {
			p = math.Nextafter(p, -2)
		} else if p+v < -1.2 {
			p = math.Nextafter(p, 0)
		}
	}
	if p+v != -1.2 {
		t.Fatalf("found no position that lands on -1.2 exactly")
	}
	if got := mountainCarPhysics([2]float64{p, v}, 1, 0); got != [2]float64{-1.2, 0} {
		t.Errorf("landing on -1.2 exactly: %v, want (-1.2, 0)", got)
	}
	if q := math.Nextafter(p, 0); q+v != -1.2 {
		if got := mountainCarPhysics([2]float64{q, v}, 1, 0); got[1] != v {
			t.Errorf("landing just inside the wall: %v, want velocity %v kept", got, v)
		}
	}
	// A NaN state stays NaN (np.clip propagates it).
	if got := mountainCarPhysics([2]float64{0, math.NaN()}, 1, 0); got[0] == got[0] || got[1] == got[1] {
		t.Errorf("NaN velocity: %v", got)
	}
}

// Reference episodes: seed 0 with a random policy into the time limit, and
// seed 2 pumping energy, which hits the left wall on step 77, reaches the
// goal on step 116 and is stepped three more times. Replayed step by step
// from Gymnasium's states; the physics is bit-exact on glibc's cos.
func TestMountainCarRolloutsMatchGymnasium(t *testing.T) {
	for _, ro := range mountainCarRollouts {
		t.Run(ro.name, func(t *testing.T) {
			c := NewMountainCar()
			c.Reset(ro.seed)
			prev := mountainCarState(t, c)
			inexact, walls := 0, 0
			for i, st := range ro.steps {
				if got := mountainCarPhysics(prev, st.action, st.cos); !mountainCarBitsEqual(got, st.next) {
					t.Fatalf("step %d: physics %v, Gymnasium %v", i+1, got, st.next)
				}
				mountainCarSet(t, c, prev[:]...)
				obs, r, term, trunc := c.Step(st.action)
				s := mountainCarState(t, c)
				if math.Cos(3*prev[0]) == st.cos {
					if !mountainCarBitsEqual(s, st.next) {
						t.Fatalf("step %d: %v, Gymnasium %v", i+1, s, st.next)
					}
				} else {
					inexact++
					if !mountainCarClose(s, st.next) {
						t.Fatalf("step %d: %v, Gymnasium %v (beyond libm tolerance)", i+1, s, st.next)
					}
				}
				checkMountainCarObs(t, obs, c)
				if r != st.reward || term != st.terminated || trunc != st.truncated {
					t.Fatalf("step %d: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
						i+1, r, term, trunc, st.reward, st.terminated, st.truncated)
				}
				if st.next[0] == mountainCarMinPosition {
					walls++
				}
				prev = st.next
			}
			t.Logf("%d steps (%d at the left wall), %d with a cos difference from glibc", len(ro.steps), walls, inexact)
		})
	}
	// Open loop, too: MountainCar barely amplifies errors, so Go's own
	// episode stays within a hair of Gymnasium's (the libm differences add up
	// to a few 1e-16 here) and ends on the same steps.
	for _, ro := range mountainCarRollouts {
		c := NewMountainCar()
		c.Reset(ro.seed)
		worst := 0.0
		for i, st := range ro.steps {
			_, _, term, trunc := c.Step(st.action)
			s := mountainCarState(t, c)
			for j := range s {
				worst = math.Max(worst, math.Abs(s[j]-st.next[j]))
			}
			if !(worst <= 1e-12) {
				t.Fatalf("%s open loop, step %d: %v, Gymnasium %v", ro.name, i+1, s, st.next)
			}
			if term != st.terminated || trunc != st.truncated {
				t.Fatalf("%s open loop, step %d: terminated %v truncated %v, Gymnasium %v %v",
					ro.name, i+1, term, trunc, st.terminated, st.truncated)
			}
		}
		t.Logf("%s open loop: worst difference %.2g", ro.name, worst)
	}
}

// stepValley steps n times with no force from the bottom of the valley,
// which never reaches the goal.
func stepValley(t *testing.T, c *MountainCar, n int) (term, trunc bool) {
	t.Helper()
	for range n {
		mountainCarSet(t, c, -0.5, 0)
		_, _, term, trunc = c.Step(1)
	}
	return term, trunc
}

func TestMountainCarTruncatesAtExactly200(t *testing.T) {
	c := NewMountainCar()
	c.Reset(1)
	for i := 1; i <= 200; i++ {
		_, r, term, trunc := c.Step(i % 3)
		if term || r != -1 {
			t.Fatalf("step %d: terminated %v reward %v", i, term, r)
		}
		if trunc != (i == 200) {
			t.Fatalf("step %d: truncated = %v", i, trunc)
		}
	}
	if _, _, _, trunc := c.Step(1); !trunc {
		t.Error("not truncated past step 200")
	}
}

func TestMountainCarTerminatedAndTruncatedTogether(t *testing.T) {
	c := NewMountainCar()
	c.Reset(3)
	for i := 1; i < 200; i++ {
		if _, _, term, trunc := c.Step(1); term || trunc {
			t.Fatalf("step %d: terminated %v truncated %v", i, term, trunc)
		}
	}
	mountainCarSet(t, c, 0.49, 0.05)
	_, r, term, trunc := c.Step(2)
	want := mountainCarBothFlags
	if r != want.reward || term != want.terminated || trunc != want.truncated {
		t.Errorf("step 200 into the goal: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
			r, term, trunc, want.reward, want.terminated, want.truncated)
	}
}

// The reward is -1.0 on every step: reaching the goal and stepping on past it
// included.
func TestMountainCarRewardAroundTermination(t *testing.T) {
	c := NewMountainCar()
	c.Reset(0)
	mountainCarSet(t, c, 0.49, 0.05)
	for i := range 3 {
		if _, r, term, _ := c.Step(2); !term || r != -1 {
			t.Fatalf("step %d at the goal: terminated %v reward %v, want true -1", i+1, term, r)
		}
	}
}

func TestMountainCarResetResetsStepCounter(t *testing.T) {
	c := NewMountainCar()
	c.Reset(0)
	stepValley(t, c, 150)
	c.Reset(0)
	if _, trunc := stepValley(t, c, 199); trunc {
		t.Fatal("truncated before step 200 of the new episode")
	}
	if _, trunc := stepValley(t, c, 1); !trunc {
		t.Fatal("not truncated at step 200 of the new episode")
	}
}

func TestMountainCarSetState(t *testing.T) {
	c := NewMountainCar()
	c.Reset(0)
	stepValley(t, c, 100)
	// Stored as given, not clipped until the next step.
	mountainCarSet(t, c, -2, 0.5)
	if s := c.State(); !slices.Equal(s, []float64{-2, 0.5}) {
		t.Errorf("State() = %v after SetState", s)
	}
	if _, trunc := stepValley(t, c, 99); trunc {
		t.Fatal("truncated early: SetState changed the step counter")
	}
	if _, trunc := stepValley(t, c, 1); !trunc {
		t.Fatal("not truncated at step 200: SetState reset the step counter")
	}

	before := c.State()
	for _, bad := range [][]float64{nil, {1}, {1, 2, 3}, {1, 2, 3, 4}} {
		if err := c.SetState(bad); err == nil || !strings.Contains(err.Error(), MountainCarID) {
			t.Errorf("SetState(%v): error %v", bad, err)
		}
	}
	if !slices.Equal(c.State(), before) {
		t.Error("a rejected SetState changed the state")
	}
	s := c.State()
	s[0] = 99
	if c.State()[0] == 99 {
		t.Error("State() aliases the env's state")
	}
	d := NewMountainCar()
	mountainCarSet(t, d, -0.5, 0)
	d.Step(1) // SetState counts as a start
}

func TestMountainCarObservationBuffers(t *testing.T) {
	c := NewMountainCar()
	o0 := c.Reset(0)
	keep := slices.Clone(o0)
	o1, _, _, _ := c.Step(2)
	if !slices.Equal(o0, keep) || &o0[0] == &o1[0] {
		t.Error("Step overwrote the observation Reset returned")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		mountainCarSet(t, c, -0.5, 0)
		c.Step(2)
	})
	if allocs != 0 {
		t.Errorf("Step allocates %v times per call", allocs)
	}
}
