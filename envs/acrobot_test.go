package envs

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Expected values come from Gymnasium 1.4.0 itself, run once under Debian's
// python3/numpy with glibc's libm (envs/testdata/gen_golden_classic.py
// writes acrobot_golden_test.go). The generator recorded every sin, cos and
// x**2 Gymnasium evaluated in each single-step case; replayed through
// acrobotTransition, they make that comparison bit for bit whatever Go's
// libm does. Step itself, on Go's math, is bit-exact wherever Go's sin/cos/x*x
// agree with glibc's on every argument of the step, and within a few ulps
// elsewhere. Edge and time-limit tests are reasoned out from acrobot.py and
// TimeLimit directly.

// acrobotReplay is an acrobotLibm that answers with the values glibc gave
// Gymnasium, looked up by function and exact argument. An argument Gymnasium
// never used means the Go arithmetic before it diverged; it fails the test.
type acrobotReplay struct {
	t    *testing.T
	name string
	vals map[acrobotLibmKey]float64
}

type acrobotLibmKey struct {
	fn byte
	x  uint64
}

func newAcrobotReplay(t *testing.T, name string, calls []acrobotLibmCall) acrobotReplay {
	r := acrobotReplay{t: t, name: name, vals: make(map[acrobotLibmKey]float64, len(calls))}
	for _, c := range calls {
		r.vals[acrobotLibmKey{c.fn, math.Float64bits(c.x)}] = c.y
	}
	return r
}

func (r acrobotReplay) get(fn byte, x float64) float64 {
	y, ok := r.vals[acrobotLibmKey{fn, math.Float64bits(x)}]
	if !ok {
		r.t.Helper()
		r.t.Errorf("%s: Go evaluates %c(%v), an argument Gymnasium never used: the arithmetic before it differs", r.name, fn, x)
		return math.NaN()
	}
	return y
}

func (r acrobotReplay) sin(x float64) float64 { return r.get('s', x) }
func (r acrobotReplay) cos(x float64) float64 { return r.get('c', x) }
func (r acrobotReplay) sq(x float64) float64  { return r.get('p', x) }

// goLibmAgrees reports whether Go's math gives glibc's value on every
// recorded call: then Step must reproduce Gymnasium to the bit.
func goLibmAgrees(calls []acrobotLibmCall) bool {
	var m goLibm
	for _, c := range calls {
		var y float64
		switch c.fn {
		case 's':
			y = m.sin(c.x)
		case 'c':
			y = m.cos(c.x)
		case 'p':
			y = m.sq(c.x)
		}
		if math.Float64bits(y) != math.Float64bits(c.y) {
			return false
		}
	}
	return true
}

func acrobotBitsEqual(a, b [4]float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// acrobotClose allows for one-ulp libm differences carried through one RK4
// step: about 30 sin/cos/x**2 values, each feeding accelerations that are
// multiplied by dt and summed. The worst case in the goldens is 2.3e-15
// relative to max(1, |value|) (the test logs it); 1e-13 leaves a margin of
// 40 and still catches a real dynamics difference, which the replayed-libm
// comparison pins down to the bit anyway.
func acrobotClose(a, b [4]float64) bool {
	for i := range a {
		if d := math.Abs(a[i] - b[i]); !(d <= 1e-13*math.Max(1, math.Abs(b[i]))) {
			return false
		}
	}
	return true
}

// float32Near reports whether a and b are equal or adjacent float32 values.
func float32Near(a, b float32) bool {
	return a == b || math.Nextafter32(a, b) == b
}

func acrobotState(t *testing.T, a *Acrobot) [4]float64 {
	t.Helper()
	s := a.State()
	if len(s) != 4 {
		t.Fatalf("State() has %d values, want 4", len(s))
	}
	return [4]float64(s)
}

func acrobotSet(t *testing.T, a *Acrobot, s ...float64) {
	t.Helper()
	if err := a.SetState(s); err != nil {
		t.Fatal(err)
	}
}

func TestAcrobotConstants(t *testing.T) {
	// Run-time float64 arithmetic, as Python does it.
	pi, dt, six, g := math.Pi, 0.2, 6.0, 9.8
	four, nine, two, half, one, onehalf := 4.0, 9.0, 2.0, 0.5, 1.0, 1.5
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"dt / 2.0", acrobotHalfDt, dt / two},
		{"dt / 6.0", acrobotSixth, dt / six},
		{"pi / 2.0", acrobotHalfPi, pi / two},
		{"pi - (-pi)", acrobotTwoPi, pi - (-pi)},
		{"4 * pi", acrobotMaxVel1, four * pi},
		{"9 * pi", acrobotMaxVel2, nine * pi},
		{"(m1*lc1 + m2*l1) * g", acrobotPhi1G, (one*half + one*one) * g},
		{"1.5 * 9.8", acrobotPhi1G, onehalf * g},
		{"m2 * lc2 * g", acrobotPhi2G, one * half * g},
		{"np.pi", acrobotPi, 3.141592653589793},
	} {
		if c.got != c.want {
			t.Errorf("%s: constant %v, run-time %v", c.name, c.got, c.want)
		}
	}
	// The unit-constant folding of _dsdt: m1*lc1**2, l1**2 + lc2**2, 2*l1*lc2,
	// l1*lc2, m2*lc2**2 + I2 and -m2*l1*lc2 are all exact.
	if one*(half*half) != 0.25 || one*one+half*half != 1.25 || two*one*half != 1 || one*half != 0.5 ||
		one*(half*half)+one != 1.25 || -one*one*half != -0.5 {
		t.Error("folded _dsdt constants are not exact")
	}
}

func TestAcrobotSpec(t *testing.T) {
	env, err := Make("Acrobot-v1")
	if err != nil {
		t.Fatal(err)
	}
	s := env.Spec()
	if s.ID != "Acrobot-v1" || !slices.Equal(s.ObsShape, []int{6}) || s.ObsSize() != 6 ||
		s.NumActions != 3 || s.MaxEpisodeSteps != 500 || s.RewardThreshold != -100 {
		t.Errorf("Spec() = %+v", s)
	}
	if _, ok := env.(Stateful); !ok {
		t.Error("Acrobot does not implement Stateful")
	}
	if b, _ := Make("Acrobot-v1"); b == env {
		t.Error("Make returned the same instance twice")
	}
}

// Reset draws what Gymnasium draws, rounds it to float32 as acrobot.py does,
// and computes the first observation with numpy's float32 sin/cos.
func TestAcrobotResetMatchesGymnasium(t *testing.T) {
	a := NewAcrobot()
	for _, g := range acrobotResetGoldens {
		obs := a.Reset(g.seed)
		if s := acrobotState(t, a); !acrobotBitsEqual(s, g.state) {
			t.Errorf("Reset(%d) state %v, Gymnasium %v", g.seed, s, g.state)
		}
		for i := range obs {
			if float64(obs[i]) != g.obs[i] {
				t.Errorf("Reset(%d) obs %v, Gymnasium %v", g.seed, obs, g.obs)
				break
			}
		}
	}
}

func TestNumpyTrigF32MatchesNumpy(t *testing.T) {
	roundedDiffers := 0
	for _, g := range numpyTrigF32Goldens {
		x, wantCos, wantSin := float32(g[0]), float32(g[1]), float32(g[2])
		if c := numpyTrigF32(x, true); math.Float32bits(c) != math.Float32bits(wantCos) {
			t.Errorf("cos(%v) = %v, numpy %v", x, c, wantCos)
		}
		if s := numpyTrigF32(x, false); math.Float32bits(s) != math.Float32bits(wantSin) {
			t.Errorf("sin(%v) = %v, numpy %v", x, s, wantSin)
		}
		if float32(math.Cos(float64(x))) != wantCos || float32(math.Sin(float64(x))) != wantSin {
			roundedDiffers++
		}
	}
	// The generator put first the angles where numpy's kernel and a rounded
	// double cos/sin disagree, so this is never 0: rounding math.Cos would
	// not do.
	if roundedDiffers == 0 {
		t.Error("no golden angle where float32(math.Cos/Sin) differs from numpy: the test lost its teeth")
	}
	t.Logf("%d/%d angles where float32(math.Cos/Sin(float64(x))) differs from numpy's float32 kernel",
		roundedDiffers, len(numpyTrigF32Goldens))
	if v := numpyTrigF32(float32(math.NaN()), true); v == v {
		t.Errorf("cos(NaN) = %v", v)
	}
}

// fma32 must round a*b+c once, exactly as a float32 FMA instruction does;
// big.Float computes the exact value and rounds it to nearest-even.
func TestFMA32(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(300).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(300).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	check := func(a, b, c float32) {
		t.Helper()
		if got, want := fma32(a, b, c), exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%v, %v, %v) = %v, exact %v", a, b, c, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	f := func(scale float64) float32 { return float32((rng.Float64()*2 - 1) * scale) }
	for range 20000 {
		check(f(1), f(1), f(1))
		check(f(1), f(1), f(1e-9))
		check(f(1e3), f(1e-3), f(1e-12))
	}
	// Double rounding traps: a*b + c lies just off a float32 halfway point by
	// less than a float64 ulp, so rounding to float64 first would land on it.
	one := float32(1)
	tiny := float32(math.Ldexp(1, -60))
	for _, tc := range [][3]float32{
		{1 + 0x1p-23, 1 + 0x1p-23, 0}, // (1+2^-23)^2 = 1 + 2^-22 + 2^-46
		{one, 1 + 0x1p-23, 0x1p-24},   // exactly halfway: ties to even
		{one, 1 + 0x1p-23, 0x1p-24 + tiny},
		{one, 1 + 0x1p-23, 0x1p-24 - tiny},
		{one, one, 0x1p-24 + tiny},
		{one, one, -0x1p-25 - tiny},
		{-one, one, -0x1p-24 - tiny},
	} {
		check(tc[0], tc[1], tc[2])
	}
}

func TestAcrobotResetDeterminism(t *testing.T) {
	a, b := NewAcrobot(), NewAcrobot()
	o1 := slices.Clone(a.Reset(7))
	a.Step(2)
	o2 := slices.Clone(a.Reset(7))
	o3 := slices.Clone(b.Reset(7))
	if !slices.Equal(o1, o2) || !slices.Equal(o1, o3) || !slices.Equal(a.State(), b.State()) {
		t.Errorf("same seed, different starts: %v %v %v", o1, o2, o3)
	}
	if o4 := slices.Clone(a.Reset(8)); slices.Equal(o1, o4) {
		t.Errorf("seeds 7 and 8 give the same start %v", o1)
	}
	for seed := range int64(200) {
		a.Reset(seed)
		for _, v := range a.State() {
			if v < -0.1 || v > 0.1 || float64(float32(v)) != v {
				t.Fatalf("Reset(%d) state %v: want float32 values in [-0.1, 0.1]", seed, a.State())
			}
		}
	}
	if !slices.Equal(slices.Clone(a.Reset(-1)), slices.Clone(b.Reset(-1))) {
		t.Error("Reset(-1) not deterministic")
	}
}

// One step from a set state: bit for bit on glibc's libm values, and through
// Step on Go's math.
func TestAcrobotStepMatchesGymnasium(t *testing.T) {
	inexact, worst := 0, 0.0
	for i, g := range acrobotStepGoldens {
		name := g.name
		torque := acrobotTorque[g.action]
		next, obs, term := acrobotTransition(newAcrobotReplay(t, name, g.libm), g.state, torque)
		if !acrobotBitsEqual(next, g.next) {
			t.Errorf("case %d (%s): transition from %v, action %d = %v, Gymnasium %v", i, name, g.state, g.action, next, g.next)
		}
		for j := range obs {
			if float64(obs[j]) != g.obs[j] {
				t.Errorf("case %d (%s): obs %v, Gymnasium %v", i, name, obs, g.obs)
				break
			}
		}
		if term != g.terminated {
			t.Errorf("case %d (%s): terminated %v, Gymnasium %v", i, name, term, g.terminated)
		}

		a := NewAcrobot()
		acrobotSet(t, a, g.state[:]...)
		sobs, r, sterm, trunc := a.Step(g.action)
		s := acrobotState(t, a)
		if goLibmAgrees(g.libm) {
			if !acrobotBitsEqual(s, g.next) {
				t.Errorf("case %d (%s): Step from %v: %v, Gymnasium %v", i, name, g.state, s, g.next)
			}
			if !slices.Equal(sobs, obs[:]) {
				t.Errorf("case %d (%s): Step obs %v, Gymnasium %v", i, name, sobs, g.obs)
			}
		} else {
			inexact++
			for j := range s {
				worst = math.Max(worst, math.Abs(s[j]-g.next[j])/math.Max(1, math.Abs(g.next[j])))
			}
			if !acrobotClose(s, g.next) {
				t.Errorf("case %d (%s): Step from %v: %v, Gymnasium %v (beyond libm tolerance)", i, name, g.state, s, g.next)
			}
			for j := range sobs {
				if !float32Near(sobs[j], float32(g.obs[j])) {
					t.Errorf("case %d (%s): Step obs %v, Gymnasium %v (beyond libm tolerance)", i, name, sobs, g.obs)
					break
				}
			}
		}
		if r != g.reward || sterm != g.terminated || trunc {
			t.Errorf("case %d (%s): reward %v terminated %v truncated %v, Gymnasium %v %v false",
				i, name, r, sterm, trunc, g.reward, g.terminated)
		}
	}
	t.Logf("%d/%d cases where Go's sin/cos/x*x differ from glibc's on some argument; worst relative difference %.2g",
		inexact, len(acrobotStepGoldens), worst)
}

// The terminal test is strict: -cos(t1) - cos(t1+t2) == 1.0 exactly is not
// terminal. The goldens are states at, just below and just above 1.0.
func TestAcrobotTerminalIsStrict(t *testing.T) {
	atOne := 0
	for i, g := range acrobotTerminalGoldens {
		if got := acrobotTerminal(newAcrobotReplay(t, "terminal", g.libm), g.state); got != g.terminal {
			t.Errorf("case %d: terminal(%v) = %v, Gymnasium %v (value %v)", i, g.state, got, g.terminal, g.value)
		}
		if goLibmAgrees(g.libm) {
			if got := acrobotTerminal(goLibm{}, g.state); got != g.terminal {
				t.Errorf("case %d: terminal(%v) on Go's math = %v, Gymnasium %v", i, g.state, got, g.terminal)
			}
		}
		if g.value == 1.0 {
			atOne++
			if g.terminal {
				t.Errorf("case %d: Gymnasium calls exactly 1.0 terminal?", i)
			}
		}
	}
	if atOne == 0 {
		t.Error("no golden state exactly on the terminal height")
	}
	// The same with made-up cos values: 0.5 + 0.5 is exactly 1.0.
	fake := acrobotReplay{t: t, name: "fake", vals: map[acrobotLibmKey]float64{
		{'c', math.Float64bits(1)}: -0.5, {'c', math.Float64bits(2)}: -0.5,
		{'c', math.Float64bits(3)}: -0.5 - 0x1p-52, // 0.5 + 0.5 + 2^-52: the next double above 1.0
	}}
	if acrobotTerminal(fake, [4]float64{1, 1, 0, 0}) {
		t.Error("-cos = 0.5 + 0.5 = 1.0 counted as terminal")
	}
	if !acrobotTerminal(fake, [4]float64{1, 2, 0, 0}) {
		t.Error("1.0 plus one ulp not counted as terminal")
	}
}

func TestAcrobotWrap(t *testing.T) {
	pi, twoPi := acrobotPi, acrobotTwoPi // variables: run-time float64 arithmetic below
	above := math.Nextafter(pi, 4)
	four, forty := 4.0, 40.0
	for _, tc := range []struct {
		x, want float64
	}{
		{0, 0},
		{pi, pi},   // kept: wrap only subtracts while x > pi
		{-pi, -pi}, // kept: adds only while x < -pi
		{above, above - twoPi},
		{-above, -above + twoPi},
		{3, 3},
		{four, four - twoPi},
		{-four, -four + twoPi},
		// Several turns, one rounded subtraction at a time (not math.Remainder).
		{forty, (((((forty - twoPi) - twoPi) - twoPi) - twoPi) - twoPi) - twoPi},
	} {
		if got := acrobotWrap(tc.x); math.Float64bits(got) != math.Float64bits(tc.want) {
			t.Errorf("wrap(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	if got := acrobotWrap(above); got <= -pi || got > pi {
		t.Errorf("wrap(pi+ulp) = %v, outside (-pi, pi]", got)
	}
	if v := acrobotWrap(math.NaN()); v == v {
		t.Errorf("wrap(NaN) = %v, want NaN as in Python", v)
	}
	for _, x := range []float64{math.Inf(1), math.Inf(-1), 1e300, -1e17} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, "cannot be wrapped") {
					t.Errorf("wrap(%v): panic %q, want one about wrapping (Python loops forever)", x, msg)
				}
			}()
			acrobotWrap(x)
		}()
	}
}

func TestAcrobotBound(t *testing.T) {
	m := acrobotMaxVel2
	for _, tc := range []struct{ x, want float64 }{
		{0, 0}, {m, m}, {-m, -m}, {math.Nextafter(m, 100), m}, {-100, -m}, {math.Inf(1), m},
	} {
		if got := acrobotBound(tc.x, -m, m); got != tc.want {
			t.Errorf("bound(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	if v := acrobotBound(math.NaN(), -m, m); v == v {
		t.Errorf("bound(NaN) = %v, want NaN as Python's min(max(x, m), M) gives", v)
	}
}

// The velocities are clipped after the RK4 step, not before: from velocities
// beyond the bounds (set through SetState) the angles move by the unclipped
// velocities, and only the stored velocities are clipped.
func TestAcrobotClipsAfterIntegrating(t *testing.T) {
	a := NewAcrobot()
	start := [4]float64{0.5, -0.5, 20, -40}
	acrobotSet(t, a, start[:]...)
	a.Step(1)
	s := acrobotState(t, a)
	raw := acrobotRK4(goLibm{}, start, 0)
	want := [4]float64{acrobotWrap(raw[0]), acrobotWrap(raw[1]),
		acrobotBound(raw[2], -acrobotMaxVel1, acrobotMaxVel1), acrobotBound(raw[3], -acrobotMaxVel2, acrobotMaxVel2)}
	if !acrobotBitsEqual(s, want) {
		t.Errorf("Step from %v = %v, want wrap/clip of RK4 = %v", start, s, want)
	}
	pre := acrobotRK4(goLibm{}, [4]float64{0.5, -0.5, acrobotMaxVel1, -acrobotMaxVel2}, 0)
	if acrobotWrap(pre[0]) == s[0] {
		t.Error("angles equal those from pre-clipped velocities; the test's premise is broken")
	}
	if math.Abs(s[2]) > acrobotMaxVel1 || math.Abs(s[3]) > acrobotMaxVel2 {
		t.Errorf("velocities %v not clipped", s[2:])
	}
}

// Reference episodes, replayed step by step: the state is set to Gymnasium's
// before every step (a one-ulp libm difference would otherwise grow: the
// double pendulum is chaotic), and rewards and flags, including termination,
// stepping past it, velocity clipping and truncation at 500, come from the
// env's own counters.
func TestAcrobotRolloutsMatchGymnasium(t *testing.T) {
	for _, ro := range acrobotRollouts {
		t.Run(ro.name, func(t *testing.T) {
			a := NewAcrobot()
			a.Reset(ro.seed)
			prev := acrobotState(t, a)
			exact, worst := 0, 0.0
			for i, st := range ro.steps {
				acrobotSet(t, a, prev[:]...)
				obs, r, term, trunc := a.Step(st.action)
				s := acrobotState(t, a)
				if acrobotBitsEqual(s, st.next) {
					exact++
				} else if !acrobotClose(s, st.next) {
					t.Fatalf("step %d: %v, Gymnasium %v", i+1, s, st.next)
				}
				for j := range s {
					worst = math.Max(worst, math.Abs(s[j]-st.next[j])/math.Max(1, math.Abs(st.next[j])))
				}
				if obs[4] != float32(s[2]) || obs[5] != float32(s[3]) ||
					obs[0] != float32(math.Cos(s[0])) || obs[3] != float32(math.Sin(s[1])) {
					t.Fatalf("step %d: obs %v does not describe state %v", i+1, obs, s)
				}
				if r != st.reward || term != st.terminated || trunc != st.truncated {
					t.Fatalf("step %d: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
						i+1, r, term, trunc, st.reward, st.terminated, st.truncated)
				}
				prev = st.next
			}
			t.Logf("%d steps, %d bit-exact on Go's libm; worst relative difference %.2g", len(ro.steps), exact, worst)
		})
	}
}

// stepHanging steps n times with no torque from the hanging position, which
// never comes near the terminal height.
func stepHanging(t *testing.T, a *Acrobot, n int) (term, trunc bool) {
	t.Helper()
	for range n {
		acrobotSet(t, a, 0, 0, 0, 0)
		_, _, term, trunc = a.Step(1)
	}
	return term, trunc
}

func TestAcrobotTruncatesAtExactly500(t *testing.T) {
	a := NewAcrobot()
	a.Reset(1)
	for i := 1; i <= 500; i++ {
		_, r, term, trunc := a.Step(1) // no torque: the links just swing a little
		if term || r != -1 {
			t.Fatalf("step %d: terminated %v reward %v", i, term, r)
		}
		if trunc != (i == 500) {
			t.Fatalf("step %d: truncated = %v", i, trunc)
		}
	}
	if _, _, _, trunc := a.Step(1); !trunc {
		t.Error("not truncated past step 500")
	}
}

func TestAcrobotTerminatedAndTruncatedTogether(t *testing.T) {
	a := NewAcrobot()
	a.Reset(3)
	for i := 1; i < 500; i++ {
		if _, _, term, trunc := a.Step(1); term || trunc {
			t.Fatalf("step %d: terminated %v truncated %v", i, term, trunc)
		}
	}
	acrobotSet(t, a, math.Pi, 0, 0, 0)
	_, r, term, trunc := a.Step(1)
	want := acrobotBothFlags
	if r != want.reward || term != want.terminated || trunc != want.truncated {
		t.Errorf("step 500 from upright: reward %v terminated %v truncated %v, Gymnasium %v %v %v",
			r, term, trunc, want.reward, want.terminated, want.truncated)
	}
}

// Stepping on after termination recomputes terminated and the reward from
// each new state (Acrobot keeps no steps_beyond_terminated).
func TestAcrobotRewardAroundTermination(t *testing.T) {
	a := NewAcrobot()
	a.Reset(0)
	acrobotSet(t, a, math.Pi, 0, 0, 0)
	for i := range 2 {
		if _, r, term, _ := a.Step(1); !term || r != 0 {
			t.Fatalf("upright step %d: terminated %v reward %v, want true 0", i+1, term, r)
		}
	}
	acrobotSet(t, a, 0, 0, 0, 0)
	if _, r, term, _ := a.Step(1); term || r != -1 {
		t.Fatalf("hanging after termination: terminated %v reward %v, want false -1", term, r)
	}
}

func TestAcrobotResetResetsStepCounter(t *testing.T) {
	a := NewAcrobot()
	a.Reset(0)
	stepHanging(t, a, 300)
	a.Reset(0)
	if _, trunc := stepHanging(t, a, 499); trunc {
		t.Fatal("truncated before step 500 of the new episode")
	}
	if _, trunc := stepHanging(t, a, 1); !trunc {
		t.Fatal("not truncated at step 500 of the new episode")
	}
}

func TestAcrobotSetState(t *testing.T) {
	a := NewAcrobot()
	a.Reset(0)
	stepHanging(t, a, 250)
	// SetState stores the values as given: not wrapped, not clipped.
	acrobotSet(t, a, 4, -4, 20, -40)
	if s := a.State(); !slices.Equal(s, []float64{4, -4, 20, -40}) {
		t.Errorf("State() = %v after SetState", s)
	}
	if _, trunc := stepHanging(t, a, 249); trunc {
		t.Fatal("truncated early: SetState changed the step counter")
	}
	if _, trunc := stepHanging(t, a, 1); !trunc {
		t.Fatal("not truncated at step 500: SetState reset the step counter")
	}

	before := a.State()
	for _, bad := range [][]float64{nil, {1, 2, 3}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 6}} {
		if err := a.SetState(bad); err == nil || !strings.Contains(err.Error(), AcrobotID) {
			t.Errorf("SetState(%v): error %v", bad, err)
		}
	}
	if !slices.Equal(a.State(), before) {
		t.Error("a rejected SetState changed the state")
	}
	s := a.State()
	s[0] = 99
	if a.State()[0] == 99 {
		t.Error("State() aliases the env's state")
	}
	// SetState counts as a start.
	b := NewAcrobot()
	acrobotSet(t, b, 0, 0, 0, 0)
	b.Step(1)
}

func TestAcrobotObservationBuffers(t *testing.T) {
	a := NewAcrobot()
	o0 := a.Reset(0)
	keep := slices.Clone(o0)
	o1, _, _, _ := a.Step(2)
	if !slices.Equal(o0, keep) || &o0[0] == &o1[0] {
		t.Error("Step overwrote the observation Reset returned")
	}
	s := acrobotState(t, a)
	want := []float32{float32(math.Cos(s[0])), float32(math.Sin(s[0])), float32(math.Cos(s[1])),
		float32(math.Sin(s[1])), float32(s[2]), float32(s[3])}
	if !slices.Equal(o1, want) {
		t.Errorf("obs %v, want (cos, sin, cos, sin, dtheta1, dtheta2) of %v = %v", o1, s, want)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		acrobotSet(t, a, 0.1, 0.2, 0.3, 0.4)
		a.Step(2)
	})
	if allocs != 0 {
		t.Errorf("Step allocates %v times per call", allocs)
	}
}
