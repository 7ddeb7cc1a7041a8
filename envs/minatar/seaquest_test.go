package minatar

import (
	"testing"
)

// The recorded reference sessions (seaquest_golden_test.go, written by
// testdata/gen_golden_seaquest_si.py) replayed step by step (sqsi_test.go).
func TestSeaquestGolden(t *testing.T) {
	t.Logf("%d resets and steps replayed", replaySqsi(t, "Seaquest", seaquestGoldens))
}

// ---- Rules at their edges (expected values checked against seaquest.py) ----

// sqRand is a Rand for driving the game directly: Float64 returns f, IntRange
// returns row; it counts calls in order ("f" or "i").
type sqRand struct {
	t     testing.TB
	f     float64
	row   int
	calls string
}

func (r *sqRand) Float64() float64 { r.calls += "f"; return r.f }
func (r *sqRand) IntRange(low, high int) int {
	if low != 1 || high != 9 {
		r.t.Fatalf("IntRange(%d, %d), want (1, 9)", low, high)
	}
	r.calls += "i"
	return r.row
}

// quietSeaquest is a fresh game whose spawn timers are far off, so a test
// controls every entity.
func quietSeaquest(ramping bool) *seaquest {
	g := newSeaquest(ramping)
	g.eSpawnTimer, g.dSpawnTimer = 1<<30, 1<<30
	return g
}

func sqState(g *seaquest) []bool {
	s := make([]bool, 100*sqChannels)
	g.fill(s)
	return s
}

func sqAt(s []bool, y, x, c int) bool { return s[(y*10+x)*sqChannels+c] }

func sqMustAct(t *testing.T, g *seaquest, a int, wantR float64, wantT bool) {
	t.Helper()
	r, term := g.act(a, &sqRand{t: t, f: 0.9, row: 4})
	if r != wantR || term != wantT {
		t.Fatalf("act(%d) = (%v, %v), want (%v, %v)", a, r, term, wantR, wantT)
	}
}

func TestSeaquestReset(t *testing.T) {
	g := newSeaquest(true)
	g.act(actDown, &sqRand{t: t})
	g.reset(nil)
	s := sqState(g)
	if !sqAt(s, 0, 5, sqChSubFront) || !sqAt(s, 0, 6, sqChSubBack) {
		t.Error("sub should start at (x=5, y=0) facing left")
	}
	for x := 0; x < 10; x++ {
		if sqAt(s, 9, x, sqChOxygenGauge) != true {
			t.Errorf("full oxygen gauge: column %d off", x)
		}
		if sqAt(s, 9, x, sqChDiverGauge) {
			t.Errorf("empty diver gauge: column %d on", x)
		}
	}
	if g.eSpawnTimer != 20 || g.dSpawnTimer != 30 || g.moveSpeed != 5 || g.oxygen != 200 || !g.surface {
		t.Errorf("reset state %+v", g)
	}
}

// Oxygen drops by one per underwater step and is checked before it drops:
// the step that starts with 0 oxygen is terminal (step 201 after diving).
func TestSeaquestOxygenRunsOut(t *testing.T) {
	g := quietSeaquest(true)
	sqMustAct(t, g, actDown, 0, false)
	for i := 2; i <= 200; i++ {
		sqMustAct(t, g, actNoop, 0, false)
	}
	if g.oxygen != 0 {
		t.Fatalf("oxygen %d after 200 underwater steps, want 0", g.oxygen)
	}
	s := sqState(g)
	for x := 0; x < 10; x++ {
		if sqAt(s, 9, x, sqChOxygenGauge) {
			t.Fatalf("empty gauge shows column %d", x)
		}
	}
	sqMustAct(t, g, actNoop, 0, true)
	if g.oxygen != -1 {
		t.Errorf("oxygen %d, want -1 (it still drops on the terminal step)", g.oxygen)
	}
	sqMustAct(t, g, actUp, 0, true) // terminal sticks, nothing changes
	if g.subY != 1 {
		t.Error("act after terminal moved the sub")
	}
}

// Oxygen gauge: oxygen*10//200 cells, so 199 shows 9 and 19 shows 0.
func TestSeaquestOxygenGauge(t *testing.T) {
	for _, c := range []struct{ oxygen, cells int }{{200, 10}, {199, 9}, {20, 1}, {19, 0}, {0, 0}, {-1, 0}} {
		g := quietSeaquest(true)
		g.oxygen = c.oxygen
		s := sqState(g)
		n := 0
		for x := 0; x < 10; x++ {
			if sqAt(s, 9, x, sqChOxygenGauge) {
				n++
				if x >= c.cells {
					t.Errorf("oxygen %d: cell %d set", c.oxygen, x)
				}
			}
		}
		if n != c.cells {
			t.Errorf("oxygen %d: %d gauge cells, want %d", c.oxygen, n, c.cells)
		}
	}
}

func TestSeaquestSurfacing(t *testing.T) {
	// Staying at the surface from the start is fine (surface starts true).
	g := quietSeaquest(true)
	for i := 0; i < 5; i++ {
		sqMustAct(t, g, actUp, 0, false)
	}

	// Surfacing with no divers ends the episode.
	g = quietSeaquest(true)
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actUp, 0, true)

	// With 3 divers: one is lost, oxygen refills, difficulty ramps.
	g = quietSeaquest(true)
	g.diverCount = 3
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actUp, 0, false)
	sqMustAct(t, g, actUp, 0, false)
	if g.diverCount != 2 || g.oxygen != 200 || g.eSpawnSpeed != 19 || g.moveSpeed != 5 || g.rampIndex != 1 {
		t.Errorf("after surfacing with 3: divers %d oxygen %d spawn %d move %d ramp %d, want 2 200 19 5 1",
			g.diverCount, g.oxygen, g.eSpawnSpeed, g.moveSpeed, g.rampIndex)
	}
	// Staying up does not surface again.
	sqMustAct(t, g, actNoop, 0, false)
	if g.diverCount != 2 || g.rampIndex != 1 {
		t.Error("staying at the surface surfaced again")
	}

	// With 6: reward oxygen*10//200 (oxygen 200-3 = 197 -> 9), count 6 -> 0 -> -1.
	g = quietSeaquest(true)
	g.diverCount = 6
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actNoop, 0, false)
	sqMustAct(t, g, actNoop, 0, false)
	sqMustAct(t, g, actUp, 9, false)
	if g.diverCount != -1 || g.oxygen != 200 {
		t.Errorf("after surfacing with 6: divers %d oxygen %d, want -1 200", g.diverCount, g.oxygen)
	}
	s := sqState(g)
	for x := 0; x < 10; x++ {
		if sqAt(s, 9, x, sqChDiverGauge) {
			t.Errorf("diver gauge with -1 divers shows column %d", x)
		}
	}
	// -1 is not 0: surfacing again is safe and goes to -2.
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actUp, 0, false)
	if g.diverCount != -2 {
		t.Errorf("divers %d, want -2", g.diverCount)
	}
	// Only exactly 0 is fatal: two pickups bring it to 0.
	g.diverCount = 0
	sqMustAct(t, g, actDown, 0, false)
	sqMustAct(t, g, actUp, 0, true)
}

// Ramping on each surfacing: move_speed drops on odd ramp indices down to 2,
// e_spawn_speed drops to 1, and ramping stops once both are at their floor.
func TestSeaquestRampSchedule(t *testing.T) {
	g := quietSeaquest(true)
	type st struct{ spawn, move, ramp int }
	var got []st
	for i := 0; i < 22; i++ {
		g.diverCount = 1
		g.surface = false
		g.surfaceSub()
		got = append(got, st{g.eSpawnSpeed, g.moveSpeed, g.rampIndex})
	}
	want := []st{{19, 5, 1}, {18, 4, 2}, {17, 4, 3}, {16, 3, 4}, {15, 3, 5}, {14, 2, 6}}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("surfacing %d: %+v, want %+v", i+1, got[i], w)
		}
	}
	if last := got[len(got)-1]; last != (st{1, 2, 19}) {
		t.Errorf("final %+v, want {1 2 19}", last)
	}

	g = quietSeaquest(false)
	g.diverCount = 1
	g.surfaceSub()
	if g.eSpawnSpeed != 20 || g.moveSpeed != 5 || g.rampIndex != 0 {
		t.Error("ramping off still ramped")
	}
}

func TestSeaquestMovementBounds(t *testing.T) {
	g := quietSeaquest(true)
	sqMustAct(t, g, actUp, 0, false)
	if g.subY != 0 {
		t.Error("up from row 0")
	}
	for i := 0; i < 12; i++ {
		sqMustAct(t, g, actDown, 0, false)
	}
	if g.subY != 8 {
		t.Errorf("sub row %d after many downs, want 8 (row 9 holds the gauges)", g.subY)
	}
	for i := 0; i < 12; i++ {
		sqMustAct(t, g, actRight, 0, false)
	}
	s := sqState(g)
	if g.subX != 9 || !g.subRight || !sqAt(s, 8, 8, sqChSubBack) {
		t.Error("right: sub at x=9 facing right with its back at x=8")
	}
	sqMustAct(t, g, actLeft, 0, false)
	s = sqState(g)
	if g.subX != 8 || g.subRight || !sqAt(s, 8, 9, sqChSubBack) {
		t.Error("left turns the sub and moves it")
	}
}

func TestSeaquestShotCooldown(t *testing.T) {
	g := quietSeaquest(true)
	g.subX, g.subY, g.subRight = 1, 3, true
	sqMustAct(t, g, actFire, 0, false)
	if len(g.fBullets) != 1 || *g.fBullets[0] != (sqEntity{x: 2, y: 3, right: true}) {
		t.Fatalf("bullet fired right from x=1 should be at x=2 after its first move: %v", g.fBullets)
	}
	// Fire during the cooldown neither fires nor moves; the shot is ready
	// again on the 6th step.
	for i := 2; i <= 5; i++ {
		sqMustAct(t, g, actFire, 0, false)
		if len(g.fBullets) != 1 {
			t.Fatalf("step %d: fired during cooldown", i)
		}
	}
	sqMustAct(t, g, actFire, 0, false)
	if len(g.fBullets) != 2 {
		t.Fatal("no shot after the 5-step cooldown")
	}
	// Bullets leave the screen at the edge.
	for i := 0; i < 10; i++ {
		sqMustAct(t, g, actNoop, 0, false)
	}
	if len(g.fBullets) != 0 {
		t.Error("bullets should have left the screen")
	}
}

func TestSeaquestBulletKills(t *testing.T) {
	// The bullet loop checks fish before subs; a kill is +1 and removes both.
	g := quietSeaquest(true)
	g.subY = 4
	g.eFish = append(g.eFish, g.spawn(sqEntity{x: 3, y: 4, right: true, move: 3}))
	g.eSubs = append(g.eSubs, g.spawn(sqEntity{x: 3, y: 4, right: true, move: 3, shot: 5}))
	g.fBullets = append(g.fBullets, g.spawn(sqEntity{x: 2, y: 4, right: true}))
	sqMustAct(t, g, actNoop, 1, false)
	if len(g.eFish) != 0 || len(g.eSubs) != 1 || len(g.fBullets) != 0 {
		t.Errorf("fish %d subs %d bullets %d, want 0 1 0", len(g.eFish), len(g.eSubs), len(g.fBullets))
	}

	// An enemy moving onto a bullet dies in its own loop.
	g = quietSeaquest(true)
	g.subY = 1
	g.eFish = append(g.eFish, g.spawn(sqEntity{x: 6, y: 4, right: false, move: 0}))
	g.fBullets = append(g.fBullets, g.spawn(sqEntity{x: 4, y: 4, right: true}))
	sqMustAct(t, g, actNoop, 1, false)
	if len(g.eFish) != 0 || len(g.fBullets) != 0 {
		t.Error("fish moving onto a bullet should die")
	}
}

// A sub shot down on the step its shot timer runs out still fires (the
// reference keeps using the removed object, seaquest.py:146-154).
func TestSeaquestKilledSubStillFires(t *testing.T) {
	g := quietSeaquest(true)
	g.subY = 1
	g.eSubs = append(g.eSubs, g.spawn(sqEntity{x: 3, y: 4, right: false, move: 0, shot: 0}))
	g.fBullets = append(g.fBullets, g.spawn(sqEntity{x: 1, y: 4, right: true}))
	sqMustAct(t, g, actNoop, 1, false)
	if len(g.eSubs) != 0 || len(g.fBullets) != 0 {
		t.Fatalf("subs %d bullets %d, want 0 0", len(g.eSubs), len(g.fBullets))
	}
	// The bullet starts on the dead sub's cell (x=2) and moves left at once.
	if len(g.eBullets) != 1 || *g.eBullets[0] != (sqEntity{x: 1, y: 4, right: false}) {
		t.Fatalf("enemy bullets %v, want one at (1,4) moving left", g.eBullets)
	}
}

func TestSeaquestCollisions(t *testing.T) {
	cases := []struct {
		name string
		set  func(g *seaquest)
	}{
		{"fish already on the sub", func(g *seaquest) {
			g.eFish = append(g.eFish, g.spawn(sqEntity{x: 5, y: 3, right: true, move: 3}))
		}},
		{"fish moves onto the sub", func(g *seaquest) {
			g.eFish = append(g.eFish, g.spawn(sqEntity{x: 4, y: 3, right: true, move: 0}))
		}},
		{"sub moves onto the sub", func(g *seaquest) {
			g.eSubs = append(g.eSubs, g.spawn(sqEntity{x: 6, y: 3, right: false, move: 0, shot: 4}))
		}},
		{"enemy bullet on the sub before moving", func(g *seaquest) {
			g.eBullets = append(g.eBullets, g.spawn(sqEntity{x: 5, y: 3, right: true}))
		}},
		{"enemy bullet moves onto the sub", func(g *seaquest) {
			g.eBullets = append(g.eBullets, g.spawn(sqEntity{x: 6, y: 3, right: false}))
		}},
		{"enemy sub fires point blank", func(g *seaquest) {
			g.eSubs = append(g.eSubs, g.spawn(sqEntity{x: 4, y: 3, right: true, move: 3, shot: 0}))
		}},
	}
	for _, c := range cases {
		g := quietSeaquest(true)
		g.subY = 3
		g.surface = false
		c.set(g)
		if r, term := g.act(actNoop, &sqRand{t: t}); r != 0 || !term {
			t.Errorf("%s: act = (%v, %v), want (0, true)", c.name, r, term)
		}
	}
	// Enemies that pass the sub's row elsewhere are harmless; an enemy bullet
	// flying away from the sub is too.
	g := quietSeaquest(true)
	g.subY = 3
	g.eBullets = append(g.eBullets, g.spawn(sqEntity{x: 6, y: 3, right: true}))
	g.eFish = append(g.eFish, g.spawn(sqEntity{x: 5, y: 4, right: true, move: 0}))
	if _, term := g.act(actNoop, &sqRand{t: t}); term {
		t.Error("no collision expected")
	}
}

func TestSeaquestDivers(t *testing.T) {
	// Divers move every 6th step and are picked up on contact (while < 6).
	g := quietSeaquest(true)
	g.subX, g.subY = 2, 5
	g.divers = append(g.divers, g.spawn(sqEntity{x: 0, y: 5, right: true, move: 5}))
	for i := 1; i <= 5; i++ {
		sqMustAct(t, g, actNoop, 0, false)
		if g.divers[0].x != 0 {
			t.Fatalf("step %d: diver moved early", i)
		}
	}
	sqMustAct(t, g, actNoop, 0, false)
	if g.divers[0].x != 1 || g.divers[0].move != 5 {
		t.Fatalf("diver %+v, want x=1 timer 5", *g.divers[0])
	}
	for i := 0; i < 6; i++ {
		sqMustAct(t, g, actNoop, 0, false)
	}
	if len(g.divers) != 0 || g.diverCount != 1 {
		t.Fatalf("diver not picked up on moving onto the sub: %d divers, count %d", len(g.divers), g.diverCount)
	}
	s := sqState(g)
	if !sqAt(s, 9, 8, sqChDiverGauge) || sqAt(s, 9, 7, sqChDiverGauge) {
		t.Error("diver gauge should show one cell at x=8")
	}

	// With 6 aboard a diver passes through the sub.
	g = quietSeaquest(true)
	g.subX, g.subY = 1, 5
	g.diverCount = 6
	g.divers = append(g.divers, g.spawn(sqEntity{x: 1, y: 5, right: true, move: 0}))
	sqMustAct(t, g, actNoop, 0, false)
	if len(g.divers) != 1 || g.divers[0].x != 2 || g.diverCount != 6 {
		t.Error("a full sub must not pick up divers")
	}
	// And leaves the screen at the edge.
	g.divers[0].x, g.divers[0].move = 9, 0
	sqMustAct(t, g, actNoop, 0, false)
	if len(g.divers) != 0 {
		t.Error("diver should have left the screen")
	}
}

// Spawning: the enemy spawns on the 21st step, draws rand, rand, randint
// (1, 9) even when the row is blocked, and comes before the diver's rand,
// randint on the 31st step.
func TestSeaquestSpawnDraws(t *testing.T) {
	g := newSeaquest(true)
	g.subY = 1 // stay out of the way; oxygen is plenty
	r := &sqRand{t: t, f: 0.2, row: 3}
	for i := 1; i <= 20; i++ {
		g.act(actNoop, r)
	}
	if r.calls != "" {
		t.Fatalf("draws before step 21: %q", r.calls)
	}
	g.act(actNoop, r)
	// f=0.2: lr true (x=0), sub (0.2 < 1/3); row 3.
	if r.calls != "ffi" || len(g.eSubs) != 1 || g.eSubs[0].x != 0 || g.eSubs[0].y != 3 || !g.eSubs[0].right {
		t.Fatalf("step 21: draws %q, subs %v", r.calls, g.eSubs)
	}
	// The next enemy spawn is 20 steps later, at step 41; the first diver at step 31.
	for i := 22; i <= 31; i++ {
		g.act(actNoop, r)
	}
	if r.calls != "ffifi" || len(g.divers) != 1 || *g.divers[0] != (sqEntity{x: 0, y: 3, right: true, move: 4}) {
		t.Fatalf("step 31: draws %q divers %v", r.calls, g.divers)
	}
	// A spawn in a row with an enemy moving the other way is dropped after
	// all three draws.
	g.eSpawnTimer = 0
	r.f = 0.7 // left-moving fish
	g.act(actNoop, r)
	if r.calls != "ffififfi" || len(g.eFish) != 0 {
		t.Fatalf("blocked spawn: draws %q fish %d", r.calls, len(g.eFish))
	}
	// Same direction in the row is fine; the enemy spawn draws before the diver's.
	g.eSpawnTimer, g.dSpawnTimer = 0, 0
	r.f, r.row = 0.4, 3
	g.act(actNoop, r)
	if r.calls != "ffififfiffifi" || len(g.eFish) != 1 {
		t.Fatalf("draws %q fish %d", r.calls, len(g.eFish))
	}
}

// Python's list.remove deletes the first *equal* element; with two equal
// entities the reference removes the earlier one and its reversed loop
// visits the current one again. remove must do the same.
func TestSeaquestRemoveIsByValue(t *testing.T) {
	g := quietSeaquest(true)
	a := g.spawn(sqEntity{x: 4, y: 3, right: true, move: 2})
	b := g.spawn(sqEntity{x: 1, y: 3, right: true, move: 2})
	c := g.spawn(sqEntity{x: 4, y: 3, right: true, move: 2})
	l := g.remove([]*sqEntity{a, b, c}, c)
	if len(l) != 2 || l[0] != b || l[1] != c {
		t.Fatalf("remove(c) with a == c should drop a: got %v", l)
	}
}

// TestSeaquestRandomPolicyStatistics compares random play under the default
// Rand with the reference's 20k-episode statistics (reference/minatar.md:
// sticky 0.1, uniform over all 6 actions; length 30.62 ± 0.26, return 0.104
// ± 0.003) by a z-test, |z| < 4.
func TestSeaquestRandomPolicyStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	sqsiCheckRandomPolicy(t, "MinAtar/Seaquest-v0", 2000, 30.62, 0.26, 0.104, 0.003)
}

func TestSeaquestStepDoesNotAllocate(t *testing.T) {
	sqsiCheckNoAllocs(t, "MinAtar/Seaquest-v0")
}
func BenchmarkSeaquestStep(b *testing.B) { benchEnvStep(b, "MinAtar/Seaquest-v0") }

// BenchmarkSeaquestGameStep is the game's own share of a step (act and
// fill, no sticky draw or float32 observation).
func BenchmarkSeaquestGameStep(b *testing.B) { sqsiBenchGame(b, newSeaquest(true)) }
