package minatar

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/envs"
)

// ---- Replaying recorded reference sessions (the *_golden_test.go files) ----

// recordedSession is one reference minatar.Environment used for several
// episodes in a row, as testdata/gen_golden.py recorded it. The Go test uses
// one Env for the whole session too, so the sticky-action memory carries over
// between episodes exactly as in the reference.
type recordedSession struct {
	id       string // MinAtar/<Name>-v0 or -v1 (actions are then minimal-set indices)
	sticky   float64
	ramping  bool
	seed     int    // of the reference's RandomState; informational
	policy   string // how the generator chose actions; informational
	episodes []recordedEpisode
}

// recordedEpisode holds one episode; each string has one character per step.
type recordedEpisode struct {
	actions   string // agent action (index into the id's action set)
	rewards   string // reward, a digit
	terminals string // '1' where act returned terminal
	// draws: every rand()/randint() call of the reset and the steps, in
	// order: a float for rand(), i<low>:<high>=<value> for randint.
	draws string
	// hashes: FNV-1a 32 of the state bytes after reset, then after each step.
	hashes string
}

// recordedRand replays recorded draws and fails the test on the first call
// that differs in kind or range from the reference's, or runs past them.
type recordedRand struct {
	t     testing.TB
	where string // session/episode/step, for messages
	toks  []string
	pos   int
}

func (r *recordedRand) next(want string) string {
	r.t.Helper()
	if r.pos >= len(r.toks) {
		r.t.Fatalf("%s: Go drew %s, the reference drew nothing more (%d draws)", r.where, want, len(r.toks))
	}
	tok := r.toks[r.pos]
	r.pos++
	return tok
}

func (r *recordedRand) Float64() float64 {
	r.t.Helper()
	tok := r.next("Float64()")
	if strings.HasPrefix(tok, "i") {
		r.t.Fatalf("%s: draw %d: Go drew Float64(), the reference drew randint %s", r.where, r.pos-1, tok)
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		r.t.Fatalf("%s: bad recorded draw %q", r.where, tok)
	}
	return v
}

func (r *recordedRand) IntRange(low, high int) int {
	r.t.Helper()
	call := fmt.Sprintf("IntRange(%d, %d)", low, high)
	tok := r.next(call)
	rng, val, ok := strings.Cut(tok, "=")
	if !ok || rng != fmt.Sprintf("i%d:%d", low, high) {
		r.t.Fatalf("%s: draw %d: Go drew %s, the reference drew %s", r.where, r.pos-1, call, tok)
	}
	v, err := strconv.Atoi(val)
	if err != nil {
		r.t.Fatalf("%s: bad recorded draw %q", r.where, tok)
	}
	return v
}

// obsHash is the FNV-1a 32 hash gen_golden.py computes over the state bytes.
// It also checks that obs is 0/1.
func obsHash(t testing.TB, obs []float32) string {
	t.Helper()
	h := fnv.New32a()
	b := make([]byte, len(obs))
	for i, v := range obs {
		switch v {
		case 0:
		case 1:
			b[i] = 1
		default:
			t.Fatalf("observation[%d] = %v, want 0 or 1", i, v)
		}
	}
	h.Write(b)
	return fmt.Sprintf("%08x", h.Sum32())
}

// replaySessions steps Go envs through every recorded session and checks
// every draw, state, reward and terminal flag. It returns the steps checked.
func replaySessions(t *testing.T, sessions []recordedSession) int {
	t.Helper()
	if len(sessions) == 0 {
		t.Fatal("no recorded sessions")
	}
	total := 0
	for si, s := range sessions {
		opts := []Option{WithStickyActionProb(s.sticky)}
		if !s.ramping {
			opts = append(opts, WithoutRamping())
		}
		env, err := New(s.id, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rr := &recordedRand{t: t}
		env.SetRand(rr)
		for ei, ep := range s.episodes {
			n := len(ep.actions)
			hashes := strings.Fields(ep.hashes)
			if len(ep.rewards) != n || len(ep.terminals) != n || len(hashes) != n+1 {
				t.Fatalf("session %d episode %d: malformed golden", si, ei)
			}
			rr.toks, rr.pos = strings.Fields(ep.draws), 0
			rr.where = fmt.Sprintf("%s session %d (seed %d, %s) episode %d reset", s.id, si, s.seed, s.policy, ei)
			obs := env.Reset(0)
			if got := obsHash(t, obs); got != hashes[0] {
				t.Fatalf("%s: state hash %s, want %s\n%s", rr.where, got, hashes[0], dumpObs(obs, env.spec.ObsShape[2]))
			}
			for i := 0; i < n; i++ {
				rr.where = fmt.Sprintf("%s session %d (seed %d, %s) episode %d step %d", s.id, si, s.seed, s.policy, ei, i+1)
				a := int(ep.actions[i] - '0')
				obs, reward, term, trunc := env.Step(a)
				wantR := float64(ep.rewards[i] - '0')
				wantT := ep.terminals[i] == '1'
				if reward != wantR || term != wantT || trunc {
					t.Fatalf("%s: action %d: got reward %v terminated %v truncated %v, want %v %v false",
						rr.where, a, reward, term, trunc, wantR, wantT)
				}
				if got := obsHash(t, obs); got != hashes[i+1] {
					t.Fatalf("%s: action %d: state hash %s, want %s\n%s", rr.where, a, got, hashes[i+1],
						dumpObs(obs, env.spec.ObsShape[2]))
				}
			}
			if rr.pos != len(rr.toks) {
				t.Fatalf("%s session %d episode %d: Go drew %d of the reference's %d draws", s.id, si, ei, rr.pos, len(rr.toks))
			}
			total += n
		}
	}
	return total
}

// dumpObs renders an observation as one 10x10 grid of channel digits per
// cell ('.' for empty; the lowest channel set), for failure messages.
func dumpObs(obs []float32, c int) string {
	var b strings.Builder
	for y := range gridSize {
		for x := range gridSize {
			ch := byte('.')
			for k := c - 1; k >= 0; k-- {
				if obs[(y*gridSize+x)*c+k] != 0 {
					ch = byte('0' + k)
				}
			}
			b.WriteByte(ch)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestBreakoutGolden(t *testing.T) {
	t.Logf("%d steps replayed", replaySessions(t, breakoutGoldens))
}

func TestAsterixGolden(t *testing.T) {
	t.Logf("%d steps replayed", replaySessions(t, asterixGoldens))
}

func TestFreewayGolden(t *testing.T) {
	t.Logf("%d steps replayed", replaySessions(t, freewayGoldens))
}

// ---- The wrapper: sticky actions, action sets, terminal handling ----

// scriptedRand returns the given Float64 values in order and fails on
// IntRange; it counts the draws.
type scriptedRand struct {
	t      testing.TB
	floats []float64
	ints   []int
	n      int
}

func (r *scriptedRand) Float64() float64 {
	r.t.Helper()
	if len(r.floats) == 0 {
		r.t.Fatal("scriptedRand: out of Float64 values")
	}
	v := r.floats[0]
	r.floats = r.floats[1:]
	r.n++
	return v
}

func (r *scriptedRand) IntRange(low, high int) int {
	r.t.Helper()
	if len(r.ints) == 0 {
		r.t.Fatalf("scriptedRand: out of IntRange values (IntRange(%d, %d))", low, high)
	}
	v := r.ints[0]
	r.ints = r.ints[1:]
	if v < low || v >= high {
		r.t.Fatalf("scriptedRand: scripted %d outside [%d, %d)", v, low, high)
	}
	r.n++
	return v
}

// probeGame records the actions it is given; it ends after endAfter steps.
type probeGame struct {
	got      []int
	resets   int
	endAfter int
}

func (p *probeGame) channels() int { return 2 }
func (p *probeGame) reset(Rand)    { p.resets++ }
func (p *probeGame) act(a int, _ Rand) (float64, bool) {
	p.got = append(p.got, a)
	return float64(a), p.endAfter > 0 && len(p.got) >= p.endAfter
}
func (p *probeGame) fill(s []bool) { s[len(p.got)%len(s)] = true }

func newProbeEnv(minimal bool, opts ...Option) (*Env, *probeGame) {
	p := &probeGame{}
	info := &gameInfo{name: "Probe", newGame: func(bool) game { return p }, minimal: []int{actNoop, actUp, actFire}}
	return newEnv("MinAtar/Probe-v0", info, minimal, opts...), p
}

func TestStickyActions(t *testing.T) {
	env, p := newProbeEnv(false)
	r := &scriptedRand{t: t, floats: []float64{
		0.5,   // 3 applied
		0.099, // sticky: 3 again
		0.1,   // not sticky (strict <): 5
		0.0,   // sticky: 5
		0.7,   // 1
		// Reset, then:
		0.05, // sticky across the reset: 1
	}}
	env.SetRand(r)
	env.Reset(0)
	for _, a := range []int{3, 4, 5, 2, 1} {
		env.Step(a)
	}
	env.Reset(0)
	env.Step(0)
	if want := []int{3, 3, 5, 5, 1, 1}; !slices.Equal(p.got, want) {
		t.Fatalf("applied actions %v, want %v", p.got, want)
	}
	if r.n != 6 {
		t.Fatalf("%d draws, want one per step (6)", r.n)
	}
}

func TestStickyStartsAtNoop(t *testing.T) {
	env, p := newProbeEnv(false)
	env.SetRand(&scriptedRand{t: t, floats: []float64{0}})
	env.Reset(0)
	env.Step(4)
	if p.got[0] != actNoop {
		t.Fatalf("first sticky step applied %d, want the initial last action 0", p.got[0])
	}
}

func TestStickyDrawsEvenWithZeroProbability(t *testing.T) {
	env, p := newProbeEnv(false, WithStickyActionProb(0))
	r := &scriptedRand{t: t, floats: []float64{0, 0, 0}}
	env.SetRand(r)
	env.Reset(0)
	for _, a := range []int{1, 2, 3} {
		env.Step(a)
	}
	if r.n != 3 || !slices.Equal(p.got, []int{1, 2, 3}) {
		t.Fatalf("draws %d, applied %v; want 3 draws and no stickiness", r.n, p.got)
	}
}

func TestMinimalActionMapping(t *testing.T) {
	env, p := newProbeEnv(true)
	if n := env.Spec().NumActions; n != 3 {
		t.Fatalf("NumActions %d, want 3", n)
	}
	// Agent actions 1, 2 map to full actions 2 (up), 5 (fire); the sticky
	// memory holds the full action, as minatar/gym.py maps before act.
	env.SetRand(&scriptedRand{t: t, floats: []float64{0.5, 0.5, 0.01}})
	env.Reset(0)
	env.Step(1)
	env.Step(2)
	env.Step(0)
	if want := []int{actUp, actFire, actFire}; !slices.Equal(p.got, want) {
		t.Fatalf("applied %v, want %v", p.got, want)
	}
	for _, bad := range []int{-1, 3} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Step(%d) on a 3-action env did not panic", bad)
				}
			}()
			env.Step(bad)
		}()
	}
}

func TestStepAfterTerminal(t *testing.T) {
	env, p := newProbeEnv(false)
	p.endAfter = 2
	r := &scriptedRand{t: t, floats: []float64{0.5, 0.5, 0.5, 0.01, 0.5}}
	env.SetRand(r)
	env.Reset(0)
	env.Step(1)
	obs, rew, term, _ := env.Step(2)
	if !term || rew != 2 {
		t.Fatalf("terminal step: reward %v terminated %v", rew, term)
	}
	before := slices.Clone(obs)
	for _, a := range []int{3, 4} {
		obs, rew, term, trunc := env.Step(a)
		if rew != 0 || !term || trunc || !slices.Equal(obs, before) {
			t.Fatalf("after terminal: reward %v terminated %v truncated %v, obs changed %v",
				rew, term, trunc, !slices.Equal(obs, before))
		}
	}
	if len(p.got) != 2 || r.n != 4 {
		t.Fatalf("game stepped %d times with %d draws; want 2 game steps and a draw per Step (4)", len(p.got), r.n)
	}
	// The post-terminal steps still moved the sticky memory: 3 was taken,
	// then the draw 0.01 made the 4 stick to 3.
	if env.lastAction != 3 {
		t.Fatalf("sticky memory %d after the post-terminal steps, want 3", env.lastAction)
	}
	env.Reset(0)
	env.Step(0)
	if p.got[2] != 0 {
		t.Fatalf("after reset applied %d, want 0", p.got[2])
	}
}

func TestPostTerminalStepsUpdateStickyMemory(t *testing.T) {
	env, p := newProbeEnv(false)
	p.endAfter = 1
	env.SetRand(&scriptedRand{t: t, floats: []float64{0.5, 0.5, 0.01}})
	env.Reset(0)
	env.Step(1) // terminal
	env.Step(4) // not sticky: remembered 4, though the game ignores it
	env.Reset(0)
	env.Step(2) // sticky: 4
	if want := []int{1, 4}; !slices.Equal(p.got, want) {
		t.Fatalf("applied %v, want %v", p.got, want)
	}
}

func TestStepBeforeResetPanics(t *testing.T) {
	env, _ := newProbeEnv(false)
	defer func() {
		if recover() == nil {
			t.Fatal("Step before Reset did not panic")
		}
	}()
	env.Step(0)
}

// ---- Registration and spec ----

func TestRegistration(t *testing.T) {
	cases := []struct {
		name      string
		channels  int
		minimal   []int
		threshold float64
	}{
		{"Breakout", 4, []int{0, 1, 3}, 10},
		{"Asterix", 4, []int{0, 1, 2, 3, 4}, 17},
		{"Freeway", 7, []int{0, 2, 4}, 50},
	}
	for _, c := range cases {
		for _, v := range []string{"v0", "v1"} {
			id := "MinAtar/" + c.name + "-" + v
			e, err := envs.Make(id)
			if err != nil {
				t.Fatalf("envs.Make(%q): %v", id, err)
			}
			s := e.Spec()
			n := 6
			if v == "v1" {
				n = len(c.minimal)
			}
			if s.ID != id || !slices.Equal(s.ObsShape, []int{10, 10, c.channels}) || s.NumActions != n ||
				s.MaxEpisodeSteps != 0 || s.RewardThreshold != c.threshold {
				t.Errorf("%s: spec %+v", id, s)
			}
			if obs := e.Reset(1); len(obs) != s.ObsSize() {
				t.Errorf("%s: Reset gave %d values, want %d", id, len(obs), s.ObsSize())
			}
			me, ok := e.(*Env)
			if !ok {
				t.Fatalf("%s: Make gave %T", id, e)
			}
			if v == "v1" && !slices.Equal(me.actionSet, c.minimal) {
				t.Errorf("%s: action set %v, want %v", id, me.actionSet, c.minimal)
			}
			if me.stickyProb != 0.1 || !me.ramping {
				t.Errorf("%s: sticky %v ramping %v, want the defaults 0.1 and true", id, me.stickyProb, me.ramping)
			}
			var _ interface{ SetRand(Rand) } = me
		}
	}
	if _, err := New("MinAtar/Pong-v0"); !errors.Is(err, envs.ErrUnknownEnv) {
		t.Errorf("New(unknown) error %v, want ErrUnknownEnv", err)
	}
	for _, bad := range []string{"Breakout-v0", "MinAtar/Breakout-v2", "MinAtar/Breakout", ""} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
}

func TestSpecIsACopy(t *testing.T) {
	e, _ := New("MinAtar/Breakout-v0")
	e.Spec().ObsShape[0] = 99
	if e.Spec().ObsShape[0] != 10 {
		t.Fatal("Spec's ObsShape aliases the env's")
	}
}

// ---- Default randomness ----

func playRandom(env envs.Env, seed int64, actSeed uint64, maxSteps int) (obsHashes []string, ret float64, steps int) {
	obs := env.Reset(seed)
	h := fnv.New64a()
	hashObs := func(o []float32) string {
		h.Reset()
		for _, v := range o {
			h.Write([]byte{byte(v)})
		}
		return strconv.FormatUint(h.Sum64(), 16)
	}
	obsHashes = append(obsHashes, hashObs(obs))
	a := actSeed
	n := env.Spec().NumActions
	for steps < maxSteps {
		a = a*6364136223846793005 + 1442695040888963407
		o, r, term, _ := env.Step(int((a >> 33) % uint64(n)))
		obsHashes = append(obsHashes, hashObs(o))
		ret += r
		steps++
		if term {
			break
		}
	}
	return obsHashes, ret, steps
}

func TestSeedDeterminism(t *testing.T) {
	for _, id := range []string{"MinAtar/Breakout-v0", "MinAtar/Asterix-v1", "MinAtar/Freeway-v0"} {
		a, _ := New(id)
		b, _ := New(id)
		h1, _, _ := playRandom(a, 7, 1, 300)
		h2, _, _ := playRandom(b, 7, 1, 300)
		if !slices.Equal(h1, h2) {
			t.Errorf("%s: same seed, different episodes", id)
		}
		differ := false
		for s := int64(0); s < 20 && !differ; s++ {
			h3, _, _ := playRandom(b, 100+s, 1, 300)
			differ = !slices.Equal(h1, h3)
		}
		if !differ {
			t.Errorf("%s: 20 other seeds all replay seed 7's episode", id)
		}
	}
}

func TestSetRandNilRestoresSeeding(t *testing.T) {
	a, _ := New("MinAtar/Freeway-v0")
	b, _ := New("MinAtar/Freeway-v0")
	a.SetRand(&scriptedRand{t: t, ints: []int{1, 1, 1, 1, 1, 1, 1, 1}, floats: make([]float64, 8)})
	a.Reset(3)
	a.SetRand(nil)
	h1, _, _ := playRandom(a, 5, 2, 50)
	h2, _, _ := playRandom(b, 5, 2, 50)
	if !slices.Equal(h1, h2) {
		t.Fatal("after SetRand(nil), Reset(seed) does not match a fresh env")
	}
}

func TestDefaultIntRange(t *testing.T) {
	e, _ := New("MinAtar/Breakout-v0")
	e.Reset(1)
	seen := map[int]int{}
	for range 6000 {
		v := e.rng.IntRange(1, 6)
		if v < 1 || v >= 6 {
			t.Fatalf("IntRange(1,6) = %d", v)
		}
		seen[v]++
	}
	for v := 1; v < 6; v++ {
		if seen[v] < 1000 || seen[v] > 1400 {
			t.Errorf("IntRange(1,6) gave %d %d times in 6000", v, seen[v])
		}
	}
}

// TestRandomPolicyStatistics compares random play under the default Rand
// with the reference's 20k-episode statistics (reference/minatar.md,
// "Random-policy statistics", sticky 0.1, uniform over all 6 actions):
// a z-test on the two standard errors, |z| < 4.
func TestRandomPolicyStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	cases := []struct {
		id             string
		episodes       int
		lenMean, lenSE float64
		retMean, retSE float64
		fixedLen       int
	}{
		{"MinAtar/Breakout-v0", 1000, 11.24, 0.05, 0.514, 0.005, 0},
		{"MinAtar/Asterix-v0", 1000, 70.36, 0.32, 0.504, 0.006, 0},
		{"MinAtar/Freeway-v0", 200, 2501, 0, 0.130, 0.008, 2501},
	}
	for _, c := range cases {
		env, _ := New(c.id)
		var lens, rets []float64
		for i := range c.episodes {
			_, ret, steps := playRandom(env, int64(i), uint64(i)*7919+3, 100000)
			if c.fixedLen > 0 && steps != c.fixedLen {
				t.Fatalf("%s: episode %d lasted %d steps, want %d", c.id, i, steps, c.fixedLen)
			}
			lens = append(lens, float64(steps))
			rets = append(rets, ret)
		}
		check := func(what string, xs []float64, mean, se float64) {
			m, s := meanSE(xs)
			z := (m - mean) / math.Sqrt(s*s+se*se)
			t.Logf("%s %s: %.3f ± %.3f (reference %.3f ± %.3f), z = %.2f", c.id, what, m, s, mean, se, z)
			if math.Abs(z) >= 4 {
				t.Errorf("%s %s: %.3f ± %.3f vs reference %.3f ± %.3f: |z| = %.1f >= 4", c.id, what, m, s, mean, se, math.Abs(z))
			}
		}
		if c.fixedLen == 0 {
			check("length", lens, c.lenMean, c.lenSE)
		}
		check("return", rets, c.retMean, c.retSE)
	}
}

func meanSE(xs []float64) (mean, se float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1) / float64(len(xs)))
}

func TestStepDoesNotAllocate(t *testing.T) {
	for _, id := range []string{"MinAtar/Breakout-v0", "MinAtar/Asterix-v0", "MinAtar/Freeway-v0"} {
		env, _ := New(id)
		env.Reset(1)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			i++
			if _, _, term, _ := env.Step(i % 6); term {
				env.Reset(int64(i))
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Step", id, allocs)
		}
	}
}
