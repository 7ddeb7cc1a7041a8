package minatar

import (
	"slices"
	"testing"
)

// Rule edges of asterix.py, on the game struct directly.

// asterixRand answers spawns: every Float64 returns f and every IntRange
// returns the lowest value; it counts the draws by kind.
type asterixRand struct {
	f            float64
	floats, ints int
	ranges       [][2]int
}

func (r *asterixRand) Float64() float64 { r.floats++; return r.f }
func (r *asterixRand) IntRange(low, high int) int {
	r.ints++
	r.ranges = append(r.ranges, [2]int{low, high})
	return low
}

func newAsterix(ramping bool) *asterix {
	g := &asterix{ramping: ramping}
	g.reset(nil)
	return g
}

func TestAsterixSpawnTimingAndDraws(t *testing.T) {
	g := newAsterix(true)
	g.playerY = 8 // out of the way of the scripted spawns
	r := &scriptedRand{t: t}
	for step := 1; step <= 10; step++ {
		g.act(actNoop, r) // no draws: r has nothing scripted
	}
	// Step 11 spawns: lr (0.49 < 1/2: moves right, from x=0), gold (0.34:
	// not < 1/3, so an enemy), then the slot among the 8 free ones.
	r.floats = []float64{0.49, 0.34}
	r.ints = []int{3}
	g.act(actNoop, r)
	// Spawns and moves share steps 11, 21, ... at the start (move_timer
	// runs out on steps 6, 11, 16, ...), so a new entity moves at once.
	e := g.entities[3]
	if !e.alive || e.x != 1 || e.y != 4 || !e.right || e.gold || r.n != 3 {
		t.Fatalf("spawn: %+v after %d draws", e, r.n)
	}
	// The next spawn comes spawn_speed = 10 steps later (step 21): 0.5 is
	// not < 1/2 (moves left from x=9); 0.333 < 1/3 is gold; the free slots
	// are 0,1,2,4,..,7 and randint picks index 3 of them: slot 4.
	for step := 12; step <= 20; step++ {
		g.act(actNoop, r)
	}
	r.floats = []float64{0.5, 0.333}
	r.ints = []int{3}
	g.act(actNoop, r)
	e = g.entities[4]
	if !e.alive || e.x != 8 || e.y != 5 || e.right || !e.gold || r.n != 6 {
		t.Fatalf("second spawn: %+v after %d draws", e, r.n)
	}
}

func TestAsterixSpawnWithNoFreeSlot(t *testing.T) {
	g := newAsterix(true)
	for i := range g.entities {
		g.entities[i] = asterixEntity{x: 5, y: i + 1, alive: true, gold: true}
	}
	r := &asterixRand{f: 0.9}
	g.spawn(r)
	if r.floats != 2 || r.ints != 0 {
		t.Fatalf("full slots drew %d floats and %d ints, want 2 and 0", r.floats, r.ints)
	}
	g.entities[6].alive = false
	g.entities[2].alive = false
	g.spawn(r)
	if r.ints != 1 || r.ranges[0] != [2]int{0, 2} || !g.entities[2].alive || g.entities[2].x != 9 {
		t.Fatalf("spawn with slots 2 and 6 free: ranges %v, slot 2 %+v", r.ranges, g.entities[2])
	}
}

func TestAsterixPlayerBounds(t *testing.T) {
	g := newAsterix(false)
	r := &asterixRand{f: 0.9}
	for range 12 {
		g.act(actUp, r)
		g.entities = [8]asterixEntity{}
	}
	if g.playerY != 1 {
		t.Fatalf("up stops at row %d, want 1", g.playerY)
	}
	for range 12 {
		g.act(actDown, r)
		g.entities = [8]asterixEntity{}
	}
	if g.playerY != 8 {
		t.Fatalf("down stops at row %d, want 8", g.playerY)
	}
	for range 12 {
		g.act(actLeft, r)
		g.entities = [8]asterixEntity{}
	}
	if g.playerX != 0 {
		t.Fatalf("left stops at %d", g.playerX)
	}
	for range 12 {
		g.act(actRight, r)
		g.entities = [8]asterixEntity{}
	}
	if g.playerX != 9 {
		t.Fatalf("right stops at %d", g.playerX)
	}
}

func TestAsterixCollisions(t *testing.T) {
	// Gold on the player's new cell: +1, removed.
	g := newAsterix(true)
	g.entities[4] = asterixEntity{x: 6, y: 5, right: false, gold: true, alive: true}
	if r, term := g.act(actRight, nil); r != 1 || term || g.entities[4].alive {
		t.Fatalf("gold: reward %v terminal %v", r, term)
	}
	// Two golds in one step: one met by the move, one moving onto the player.
	g = newAsterix(true)
	g.moveTimer = 0
	g.entities[4] = asterixEntity{x: 5, y: 5, gold: true, alive: true}
	g.entities[5] = asterixEntity{x: 5, y: 6, right: true, gold: true, alive: true}
	g.entities[6] = asterixEntity{x: 4, y: 6, right: true, gold: true, alive: true}
	if r, _ := g.act(actDown, nil); r != 2 {
		t.Fatalf("two golds in a step: reward %v", r)
	}
	// An enemy moving onto the player ends the episode; the step still
	// completes (timers run).
	g = newAsterix(true)
	g.moveTimer = 0
	g.entities[4] = asterixEntity{x: 6, y: 5, alive: true}
	if _, term := g.act(actNoop, nil); !term || g.spawnTimer != 9 || g.moveTimer != 4 {
		t.Fatalf("enemy: terminal %v timers %d %d", term, g.spawnTimer, g.moveTimer)
	}
	// Player and enemy moving toward each other meet in the middle cell.
	g = newAsterix(true)
	g.moveTimer = 0
	g.entities[4] = asterixEntity{x: 7, y: 5, alive: true}
	if _, term := g.act(actRight, nil); !term {
		t.Fatal("player and enemy meeting in a cell did not collide")
	}
}

func TestAsterixMovesAndLeaves(t *testing.T) {
	g := newAsterix(true)
	g.playerY = 8
	g.entities[0] = asterixEntity{x: 9, y: 1, right: true, alive: true}
	g.entities[1] = asterixEntity{x: 3, y: 2, right: false, alive: true, gold: true}
	var moved []int
	for step := 1; step <= 10; step++ {
		x := g.entities[1].x
		g.act(actNoop, nil)
		if g.entities[1].x != x {
			moved = append(moved, step)
		}
	}
	// move_timer starts at 5: entities move on steps 6 and 11, ...
	if !slices.Equal(moved, []int{6}) || g.entities[0].alive {
		t.Fatalf("moved on %v, want [6]; entity leaving the right edge alive %v", moved, g.entities[0].alive)
	}
	s := make([]bool, 400)
	g.fill(s)
	// Gold at (2,2) moving left: trail behind it at (3,2).
	if !s[(2*10+2)*4+3] || !s[(2*10+3)*4+2] || !s[(8*10+5)*4+0] {
		t.Fatal("gold, trail or player missing from the state")
	}
}

func TestAsterixTrailAtEdge(t *testing.T) {
	g := newAsterix(true)
	g.entities[0] = asterixEntity{x: 0, y: 1, right: true, alive: true}
	g.entities[1] = asterixEntity{x: 9, y: 2, right: false, alive: true}
	s := make([]bool, 400)
	g.fill(s)
	n := 0
	for i := 2; i < 400; i += 4 {
		if s[i] {
			n++
		}
	}
	if n != 0 {
		t.Fatalf("%d trail cells for entities just entered; want none (off screen)", n)
	}
}

// TestAsterixRampSchedule checks the measured schedule of
// reference/minatar.md: (step, spawn_speed, move_speed).
func TestAsterixRampSchedule(t *testing.T) {
	g := newAsterix(true)
	r := &asterixRand{f: 0.9}
	type ramp struct{ step, spawn, move int }
	var got []ramp
	for step := 1; step <= 1200; step++ {
		spawn, move := g.spawnSpeed, g.moveSpeed
		g.act(actNoop, r)
		g.entities = [8]asterixEntity{} // keep the player alive
		if g.spawnSpeed != spawn || g.moveSpeed != move {
			got = append(got, ramp{step, g.spawnSpeed, g.moveSpeed})
		}
	}
	want := []ramp{{102, 9, 5}, {204, 8, 4}, {306, 7, 4}, {408, 6, 3}, {510, 5, 3},
		{612, 4, 2}, {714, 3, 2}, {816, 2, 1}, {918, 1, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("ramps %v, want %v", got, want)
	}
	g = newAsterix(false)
	for range 1200 {
		g.act(actNoop, r)
		g.entities = [8]asterixEntity{}
	}
	if g.spawnSpeed != 10 || g.moveSpeed != 5 {
		t.Fatalf("without ramping speeds became %d, %d", g.spawnSpeed, g.moveSpeed)
	}
}
