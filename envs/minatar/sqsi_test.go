package minatar

// What the Seaquest and Space Invaders tests share: replaying the reference
// implementation's recorded sessions (its random draws in order) against
// ours, the random-policy statistics, the allocation check and a game-step
// benchmark.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// sqsiSession is one reference minatar.Environment, used for its episodes in
// a row. The Go test also uses one Env per session, so the sticky-action
// memory carries over between episodes as in the reference.
type sqsiSession struct {
	seed     int // of the reference's RandomState; informational
	sticky   float64
	ramping  bool
	episodes []string // one line per reset/step: action;reward;terminal;draws;state delta
}

// sqsiReplay is a Rand that hands out one step's recorded draws and fails the
// test as soon as the Go code draws a different kind, range or count.
type sqsiReplay struct {
	t     testing.TB
	where string
	toks  []string
	pos   int
}

func (r *sqsiReplay) next(call string) string {
	r.t.Helper()
	if r.pos >= len(r.toks) {
		r.t.Fatalf("%s: Go drew %s after the reference's %d draws %q", r.where, call, len(r.toks), r.toks)
	}
	tok := r.toks[r.pos]
	r.pos++
	return tok
}

func (r *sqsiReplay) Float64() float64 {
	r.t.Helper()
	tok := r.next("Float64()")
	if tok[0] != 'f' {
		r.t.Fatalf("%s: draw %d: Go drew Float64(), the reference drew %s (all: %q)", r.where, r.pos-1, tok, r.toks)
	}
	v, err := strconv.ParseFloat(tok[1:], 64)
	if err != nil {
		r.t.Fatalf("%s: bad recorded draw %q", r.where, tok)
	}
	return v
}

func (r *sqsiReplay) IntRange(low, high int) int {
	r.t.Helper()
	call := fmt.Sprintf("IntRange(%d, %d)", low, high)
	tok := r.next(call)
	rng, val, ok := strings.Cut(tok, "=")
	if !ok || rng != fmt.Sprintf("i%d,%d", low, high) {
		r.t.Fatalf("%s: draw %d: Go drew %s, the reference drew %s (all: %q)", r.where, r.pos-1, call, tok, r.toks)
	}
	v, err := strconv.Atoi(val)
	if err != nil {
		r.t.Fatalf("%s: bad recorded draw %q", r.where, tok)
	}
	return v
}

// load gives r the draws of one line and checks the previous line used all of its own.
func (r *sqsiReplay) load(where, draws string) {
	r.t.Helper()
	r.where = where
	r.toks, r.pos = strings.Fields(draws), 0
}

func (r *sqsiReplay) done() {
	r.t.Helper()
	if r.pos != len(r.toks) {
		r.t.Fatalf("%s: Go drew %d of the reference's %d draws %q", r.where, r.pos, len(r.toks), r.toks)
	}
}

// sqsiCells lists the set cells of a boolean state as y,x,channel triples.
func sqsiCells(state []bool, c int) string {
	var b strings.Builder
	for i, v := range state {
		if v {
			cell := i / c
			fmt.Fprintf(&b, " %d%d%d", cell/10, cell%10, i%c)
		}
	}
	return b.String()
}

// replaySqsi steps a Go Env through every recorded session of game name and
// checks every draw, reward, terminal flag and full state. It returns the
// number of steps checked.
func replaySqsi(t *testing.T, name string, sessions []sqsiSession) int {
	t.Helper()
	if len(sessions) == 0 {
		t.Fatal("no recorded sessions")
	}
	id := "MinAtar/" + name + "-v0" // recorded actions are full-set indices
	steps := 0
	for si, s := range sessions {
		opts := []Option{WithStickyActionProb(s.sticky)}
		if !s.ramping {
			opts = append(opts, WithoutRamping())
		}
		env, err := New(id, opts...)
		if err != nil {
			t.Fatal(err)
		}
		c := env.Spec().ObsShape[2]
		rep := &sqsiReplay{t: t}
		env.SetRand(rep)
		want := make([]bool, 100*c)
		got := make([]bool, 100*c)
		for ei, ep := range s.episodes {
			clear(want)
			lines := strings.Split(ep, "\n")
			if len(lines) < 2 || !strings.HasPrefix(lines[0], "R;") {
				t.Fatalf("session %d episode %d: malformed golden", si, ei)
			}
			for li, line := range lines {
				f := strings.Split(line, ";")
				if len(f) != 5 || len(f[4])%3 != 0 {
					t.Fatalf("session %d episode %d line %d: malformed %q", si, ei, li, line)
				}
				for k := 0; k < len(f[4]); k += 3 {
					y, x, ch := int(f[4][k]-'0'), int(f[4][k+1]-'0'), int(f[4][k+2]-'0')
					want[(y*10+x)*c+ch] = !want[(y*10+x)*c+ch]
				}
				where := fmt.Sprintf("%s session %d (seed %d) episode %d step %d", name, si, s.seed, ei, li)
				rep.load(where, f[3])
				var obs []float32
				if f[0] == "R" {
					where += " (reset)"
					obs = env.Reset(0)
				} else {
					a, _ := strconv.Atoi(f[0])
					wantR, _ := strconv.Atoi(f[1])
					wantT := f[2] == "1"
					var r float64
					var term, trunc bool
					obs, r, term, trunc = env.Step(a)
					if r != float64(wantR) || term != wantT || trunc {
						t.Fatalf("%s: action %d: reward %v terminated %v truncated %v, want %d %v false",
							where, a, r, term, trunc, wantR, wantT)
					}
					where += fmt.Sprintf(" action %d", a)
				}
				rep.done()
				for i, v := range obs {
					if v != 0 && v != 1 {
						t.Fatalf("%s: observation[%d] = %v, want 0 or 1", where, i, v)
					}
					got[i] = v == 1
				}
				if g, w := sqsiCells(got, c), sqsiCells(want, c); g != w {
					t.Fatalf("%s: state (y,x,channel)\n got%s\nwant%s", where, g, w)
				}
				steps++
			}
		}
	}
	return steps
}

func sqsiCheckRandomPolicy(t *testing.T, id string, episodes int, lenMean, lenSE, retMean, retSE float64) {
	t.Helper()
	env, err := New(id)
	if err != nil {
		t.Fatal(err)
	}
	n := env.Spec().NumActions
	var lens, rets []float64
	x := uint64(88172645463325252)
	for ep := range episodes {
		env.Reset(int64(ep) + 1000)
		steps, ret := 0, 0.0
		for {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			_, r, term, _ := env.Step(int(x % uint64(n)))
			steps++
			ret += r
			if term || steps > 100000 {
				break
			}
		}
		lens = append(lens, float64(steps))
		rets = append(rets, ret)
	}
	check := func(what string, xs []float64, mean, se float64) {
		var m, ss float64
		for _, v := range xs {
			m += v
		}
		m /= float64(len(xs))
		for _, v := range xs {
			ss += (v - m) * (v - m)
		}
		s := math.Sqrt(ss / float64(len(xs)-1) / float64(len(xs)))
		z := (m - mean) / math.Sqrt(s*s+se*se)
		t.Logf("%s %s: %.3f ± %.3f (reference %.3f ± %.3f), z = %.2f", id, what, m, s, mean, se, z)
		if math.Abs(z) >= 4 {
			t.Errorf("%s %s: %.3f ± %.3f vs reference %.3f ± %.3f: |z| = %.1f >= 4", id, what, m, s, mean, se, math.Abs(z))
		}
	}
	check("length", lens, lenMean, lenSE)
	check("return", rets, retMean, retSE)
}

// sqsiCheckNoAllocs steps random episodes (resets included) after a warm-up
// and requires zero allocations per step.
func sqsiCheckNoAllocs(t *testing.T, id string) {
	t.Helper()
	env, err := New(id)
	if err != nil {
		t.Fatal(err)
	}
	env.Reset(1)
	i := 0
	step := func() {
		i++
		if _, _, term, _ := env.Step((i * 7 / 3) % 6); term {
			env.Reset(int64(i))
		}
	}
	for range 20000 { // let the entity pools grow
		step()
	}
	if allocs := testing.AllocsPerRun(5000, step); allocs != 0 {
		t.Errorf("%s: %v allocations per Step", id, allocs)
	}
}

func sqsiBenchGame(b *testing.B, g game) {
	r := &sqsiXorshift{x: 88172645463325252}
	state := make([]bool, 100*g.channels())
	g.reset(r)
	a := uint64(12345)
	b.ReportAllocs()
	for b.Loop() {
		a = a*6364136223846793005 + 1442695040888963407
		_, term := g.act(int((a>>33)%6), r)
		clear(state)
		g.fill(state)
		if term {
			g.reset(r)
		}
	}
}

// sqsiXorshift is a small Rand for benchmarks.
type sqsiXorshift struct{ x uint64 }

func (r *sqsiXorshift) next() uint64 {
	r.x ^= r.x << 13
	r.x ^= r.x >> 7
	r.x ^= r.x << 17
	return r.x
}

func (r *sqsiXorshift) Float64() float64           { return float64(r.next()>>11) / (1 << 53) }
func (r *sqsiXorshift) IntRange(low, high int) int { return low + int(r.next()%uint64(high-low)) }
