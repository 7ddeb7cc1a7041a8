package minatar

import (
	"slices"
	"testing"
)

// Rule edges of freeway.py, on the game struct directly.

// freewayReset resets g with speeds 1..5,1,2,3 and directions +,-,+,-,...
func freewayReset(t *testing.T, g *freeway) *scriptedRand {
	t.Helper()
	r := &scriptedRand{t: t,
		ints:   []int{1, 2, 3, 4, 5, 1, 2, 3},
		floats: []float64{0.9, 0.1, 0.6, 0.4, 0.99, 0.0, 0.51, 0.49}}
	g.reset(r)
	if r.n != 16 || len(r.ints)+len(r.floats) != 0 {
		t.Fatalf("reset made %d draws, want 8 IntRange(1,6) then 8 Float64", r.n)
	}
	return r
}

func TestFreewayReset(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	wantV := []int{1, -2, 3, -4, 5, -1, 2, -3}
	for i, c := range g.cars {
		if c.x != 0 || c.y != i+1 || c.v != wantV[i] || c.timer != freewayAbs(wantV[i]) {
			t.Fatalf("car %d: %+v, want x 0 y %d v %d timer |v|", i, c, i+1, wantV[i])
		}
	}
	if g.pos != 9 || g.moveTimer != 3 || g.terminateTimer != 2500 || g.terminal {
		t.Fatalf("reset: %+v", g)
	}
	// The order matters: all speeds first, then all directions.
	r := &scriptedRand{t: t, floats: make([]float64, 8)}
	r.ints = []int{5, 5, 5, 5, 5, 5, 5, 5}
	g.reset(r)
	if g.cars[7].v != -5 {
		t.Fatalf("rand() = 0 gives direction %d, want -1", g.cars[7].v)
	}
}

func TestFreewayHalfIsSpeedZero(t *testing.T) {
	g := &freeway{}
	floats := []float64{0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5}
	g.reset(&scriptedRand{t: t, ints: []int{3, 3, 3, 3, 3, 3, 3, 3}, floats: floats})
	if g.cars[0].v != 0 || g.cars[7].v != 0 {
		t.Fatalf("np.sign(0.5-0.5) = 0 should give speed 0: %+v", g.cars)
	}
	// A speed-0 car moves left every step and, for the first car, has no
	// trail; car 7 borrows car 6's trail channel (speed 3), as in Python.
	g.act(actNoop, nil)
	g.act(actNoop, nil)
	if g.cars[0].x != 8 {
		t.Fatalf("speed-0 car at x %d after 2 steps, want 8", g.cars[0].x)
	}
	s := make([]bool, 700)
	g.fill(s)
	if !s[(8*10+9)*7+4] {
		t.Fatal("speed-0 car 7 should reuse the speed-3 trail channel")
	}
	for c := 2; c < 7; c++ {
		if s[(1*10+9)*7+c] || s[(1*10+7)*7+c] {
			t.Fatal("speed-0 first car drew a trail")
		}
	}
}

func TestFreewayCarPeriod(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	g.pos = 9
	var moves [8][]int
	last := g.cars
	for step := 1; step <= 12; step++ {
		g.act(actNoop, nil)
		for i := range g.cars {
			if g.cars[i].x != last[i].x {
				moves[i] = append(moves[i], step)
			}
		}
		last = g.cars
	}
	// Speed s moves every s+1 steps, the first time on step s+1.
	if !slices.Equal(moves[0], []int{2, 4, 6, 8, 10, 12}) || !slices.Equal(moves[4], []int{6, 12}) ||
		!slices.Equal(moves[3], []int{5, 10}) {
		t.Fatalf("move steps %v", moves)
	}
	// Wrap-around: car 1 (speed -2) went 0 -> 9 -> 8 -> 7 -> 6.
	if g.cars[1].x != 6 || g.cars[0].x != 6 {
		t.Fatalf("car positions %d, %d; want 6, 6", g.cars[0].x, g.cars[1].x)
	}
}

func TestFreewayChickenTiming(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	for i := range g.cars { // cars far from column 4, frozen
		g.cars[i].x, g.cars[i].timer, g.cars[i].v = 9, 1000, 5
	}
	var moved []int
	pos := g.pos
	for step := 1; step <= 13; step++ {
		g.act(actUp, nil)
		if g.pos != pos {
			moved = append(moved, step)
			pos = g.pos
		}
	}
	if !slices.Equal(moved, []int{4, 7, 10, 13}) {
		t.Fatalf("chicken moved on %v, want [4 7 10 13]", moved)
	}
	// Down is clamped at row 9 but still spends the move.
	g.pos = 9
	g.moveTimer = 0
	g.act(actDown, nil)
	if g.pos != 9 || g.moveTimer != 2 {
		t.Fatalf("down at the bottom: pos %d timer %d", g.pos, g.moveTimer)
	}
}

func TestFreewayCrossing(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	for i := range g.cars {
		g.cars[i].x = 9
	}
	g.pos, g.moveTimer = 1, 0
	r := &scriptedRand{t: t, ints: []int{5, 5, 5, 5, 5, 5, 5, 5}, floats: []float64{0, 0, 0, 0, 0, 0, 0, 0}}
	rew, term := g.act(actUp, r)
	if rew != 1 || term || g.pos != 9 || r.n != 16 {
		t.Fatalf("crossing: reward %v terminal %v pos %d draws %d", rew, term, g.pos, r.n)
	}
	for i, c := range g.cars {
		// New speed -5 and timer 5 (set by the redraw, before this step's
		// car update, which then leaves it at 4); position kept.
		if c.v != -5 || c.x != 9 || c.y != i+1 || c.timer != 4 {
			t.Fatalf("car %d after crossing: %+v", i, c)
		}
	}
}

func TestFreewayHit(t *testing.T) {
	// A car already on the chicken's cell.
	g := &freeway{}
	freewayReset(t, g)
	g.cars[4].x, g.cars[4].timer = 4, 3 // row 5
	g.pos, g.moveTimer = 5, 2
	if rew, term := g.act(actNoop, nil); rew != 0 || term || g.pos != 9 {
		t.Fatalf("hit: reward %v terminal %v pos %d", rew, term, g.pos)
	}
	// A car moving onto the chicken.
	freewayReset(t, g)
	g.cars[2].x, g.cars[2].timer, g.cars[2].v = 3, 0, 3 // row 3, moves right now
	g.pos, g.moveTimer = 3, 2
	g.act(actNoop, nil)
	if g.pos != 9 {
		t.Fatalf("car moving onto the chicken: pos %d", g.pos)
	}
	// The chicken stepping into a car's cell.
	freewayReset(t, g)
	g.cars[6].x, g.cars[6].timer = 4, 3 // row 7
	g.pos, g.moveTimer = 8, 0
	g.act(actUp, nil)
	if g.pos != 9 {
		t.Fatalf("chicken walking into a car: pos %d", g.pos)
	}
}

func TestFreewayTimeLimit(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	steps := 0
	for {
		steps++
		_, term := g.act(actNoop, nil)
		if term {
			break
		}
		if steps > 3000 {
			t.Fatal("no termination")
		}
	}
	if steps != 2501 {
		t.Fatalf("episode of %d steps, want 2501", steps)
	}
	if r, term := g.act(actUp, nil); r != 0 || !term {
		t.Fatal("act after terminal")
	}
}

func TestFreewayTrails(t *testing.T) {
	g := &freeway{}
	freewayReset(t, g)
	s := make([]bool, 700)
	g.fill(s)
	at := func(x, y, c int) bool { return s[(y*10+x)*7+c] }
	// All cars at x=0: a right-moving car's trail wraps to x=9, a
	// left-moving one's is at x=1; channel 1+|v|.
	if !at(4, 9, 0) || !at(0, 1, 1) || !at(9, 1, 2) || !at(1, 2, 3) || !at(9, 5, 6) || !at(1, 6, 2) {
		t.Fatal("chicken, car or trail cells wrong")
	}
}
