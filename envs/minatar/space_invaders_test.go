package minatar

import "testing"

func TestSpaceInvadersGolden(t *testing.T) {
	t.Logf("%d resets and steps replayed", replaySqsi(t, "SpaceInvaders", spaceInvadersGoldens))
}

// ---- Rules at their edges (expected values checked against space_invaders.py) ----

// siNoRand fails the test on any draw: the game draws nothing.
type siNoRand struct{ t testing.TB }

func (r siNoRand) Float64() float64 { r.t.Fatal("space invaders drew Float64"); return 0 }
func (r siNoRand) IntRange(low, high int) int {
	r.t.Fatalf("space invaders drew IntRange(%d, %d)", low, high)
	return 0
}

func siMustAct(t *testing.T, g *spaceInvaders, a int, wantR float64, wantT bool) {
	t.Helper()
	r, term := g.act(a, siNoRand{t})
	if r != wantR || term != wantT {
		t.Fatalf("act(%d) = (%v, %v), want (%v, %v)", a, r, term, wantR, wantT)
	}
}

// siGrid builds a map from rows of '.' and '#', top row first.
func siGrid(rows ...string) siMap {
	var m siMap
	for y, row := range rows {
		for x, c := range row {
			if c == '#' {
				m[y] |= 1 << x
			}
		}
	}
	return m
}

func siState(g *spaceInvaders) []bool {
	s := make([]bool, 100*siChannels)
	g.fill(s)
	return s
}

func TestSpaceInvadersReset(t *testing.T) {
	g := newSpaceInvaders(true)
	s := siState(g)
	n := 0
	for y := 0; y < 10; y++ {
		for x := 0; x < 10; x++ {
			i := (y*10 + x) * siChannels
			alien := y < 4 && x >= 2 && x < 8
			if s[i+siChAlien] != alien || s[i+siChAlienLeft] != alien || s[i+siChAlienRight] {
				t.Fatalf("cell (%d,%d): alien channels wrong", y, x)
			}
			for c := 0; c < siChannels; c++ {
				if s[i+c] {
					n++
				}
			}
		}
	}
	if !s[(9*10+5)*siChannels+siChCannon] || n != 49 {
		t.Errorf("want the cannon at (9,5) and 24 aliens in two channels, %d cells set", n)
	}
}

func TestSpaceInvadersDrawsNothing(t *testing.T) {
	g := newSpaceInvaders(true)
	for i := 0; i < 300 && !g.terminal; i++ {
		g.act(i%6, siNoRand{t})
	}
}

// With 24 aliens they move on steps 13, 25, 37, ...; fewer aliens restart
// the timer at their count, so n aliens move every n steps and a lone alien
// every step.
func TestSpaceInvadersAlienMoveTiming(t *testing.T) {
	g := newSpaceInvaders(true)
	g.alienShotTimer = 1 << 20 // no enemy fire
	start := g.aliens
	var moves []int
	for i := 1; i <= 40; i++ {
		before := g.aliens
		siMustAct(t, g, actNoop, 0, false)
		if g.aliens != before {
			moves = append(moves, i)
		}
	}
	if len(moves) != 3 || moves[0] != 13 || moves[1] != 25 || moves[2] != 37 {
		t.Errorf("aliens moved on steps %v, want [13 25 37]", moves)
	}
	want := start
	want.rollX(-1)
	want.rollX(-1)
	want.rollDown()
	if g.aliens != want || g.alienDir != 1 {
		t.Error("want two moves left, then a turn down at the left edge")
	}

	for _, c := range []struct {
		aliens siMap
		every  int
	}{
		{siGrid("", "....#"), 1},
		{siGrid("", "....#.#"), 2},
		{siGrid("", "...###"), 3},
	} {
		g = newSpaceInvaders(true)
		g.aliens = c.aliens
		g.alienMoveTimer = 0
		moves = moves[:0]
		for i := 1; i <= 9; i++ {
			before := g.aliens
			siMustAct(t, g, actNoop, 0, false)
			if g.aliens != before {
				moves = append(moves, i)
			}
		}
		for k, step := range moves {
			if step != 1+k*c.every {
				t.Errorf("%d aliens moved on steps %v, want every %d from step 1", c.aliens.count(), moves, c.every)
				break
			}
		}
	}
}

func TestSpaceInvadersTurnAndDescend(t *testing.T) {
	g := newSpaceInvaders(true)
	g.aliens = siGrid("", "#.#")
	g.alienMoveTimer = 0
	siMustAct(t, g, actNoop, 0, false)
	if g.alienDir != 1 || g.aliens != siGrid("", "", "#.#") {
		t.Errorf("at the left edge the block turns and moves down: dir %d", g.alienDir)
	}
	g.alienMoveTimer = 0
	siMustAct(t, g, actNoop, 0, false)
	if g.aliens != siGrid("", "", ".#.#") {
		t.Error("then moves right")
	}
}

// An alien reaching the cannon's cell in row 9 ends the episode; so does a
// turn with any alien already in row 9, and that alien wraps to row 0 as
// np.roll does.
func TestSpaceInvadersAlienReachesBottom(t *testing.T) {
	g := newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", "", "", "#....#")
	g.alienMoveTimer = 0
	siMustAct(t, g, actNoop, 0, true) // turns at x=0, row 8 -> 9 at x=5 under the cannon
	if g.aliens != siGrid("", "", "", "", "", "", "", "", "", "#....#") {
		t.Error("aliens should be in row 9")
	}

	g = newSpaceInvaders(true)
	g.pos = 9
	g.aliens = siGrid("", "", "", "", "", "", "", "", "", "#")
	g.alienMoveTimer = 0
	siMustAct(t, g, actNoop, 0, true)
	if g.aliens != siGrid("#") {
		t.Error("an alien moving down from row 9 wraps to row 0")
	}

	// Sideways into the cannon.
	g = newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", "", "", "", "......#")
	g.alienMoveTimer = 0
	siMustAct(t, g, actNoop, 0, true)
	// Already on it at the start of the step.
	g = newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", "", "", "", ".....#")
	siMustAct(t, g, actNoop, 0, true)
	siMustAct(t, g, actLeft, 0, true) // terminal sticks
	if g.pos != 5 {
		t.Error("act after terminal moved the cannon")
	}
}

func TestSpaceInvadersShotCooldown(t *testing.T) {
	g := newSpaceInvaders(true)
	g.aliens = siGrid("#") // out of the way; its shots fall in column 0
	g.alienMoveTimer = 1 << 20
	siMustAct(t, g, actFire, 0, false)
	if g.fBullets != siGrid("", "", "", "", "", "", "", "", ".....#") {
		t.Fatal("a bullet fired this step is already in row 8")
	}
	for i := 2; i <= 5; i++ {
		siMustAct(t, g, actFire, 0, false)
		if g.fBullets[8] != 0 || g.pos != 5 {
			t.Fatalf("step %d: fired or moved during the cooldown", i)
		}
	}
	siMustAct(t, g, actFire, 0, false)
	if g.fBullets[8] != 1<<5 || g.fBullets[3] != 1<<5 {
		t.Fatal("shot ready again on the 6th step")
	}
	// Bullets leaving row 0 are gone (np.roll wraps them to row 9, then row 9 is cleared).
	for i := 0; i < 9; i++ {
		siMustAct(t, g, actNoop, 0, false)
	}
	if g.fBullets != (siMap{}) {
		t.Error("bullets should have left the screen")
	}
}

func TestSpaceInvadersEnemyFire(t *testing.T) {
	// Every 10 steps the lowest alien of the nearest column fires; ties go
	// to the lower column.
	g := newSpaceInvaders(true)
	g.aliens = siGrid("...#...#", "", "...#")
	g.alienMoveTimer = 1 << 20
	for i := 1; i <= 10; i++ {
		siMustAct(t, g, actNoop, 0, false)
	}
	if g.eBullets != (siMap{}) {
		t.Fatal("fired before step 11")
	}
	siMustAct(t, g, actNoop, 0, false)
	if g.eBullets != siGrid("", "", "...#") {
		t.Fatalf("step 11: want a bullet on the lowest alien of column 3 (tie with 7)")
	}
	// It falls one row per step and hits the cannon if it is below.
	g.pos = 3
	for i := 0; i < 6; i++ {
		siMustAct(t, g, actNoop, 0, false)
	}
	siMustAct(t, g, actNoop, 0, true)
	if g.eBullets[9] != 1<<3 {
		t.Error("bullet should be in row 9")
	}

	g = newSpaceInvaders(true)
	g.pos = 0
	g.aliens = siGrid("#########")
	g.alienShotTimer = 0
	g.alienMoveTimer = 1 << 20
	siMustAct(t, g, actNoop, 0, false)
	if g.eBullets != siGrid("#") {
		t.Error("nearest column to pos 0 is column 0")
	}
}

func TestSpaceInvadersKills(t *testing.T) {
	g := newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", ".....##")
	g.alienMoveTimer = 1 << 20
	g.fBullets = siGrid("", "", "", "", "", "", "", ".....#")
	siMustAct(t, g, actNoop, 1, false)
	if g.aliens != siGrid("", "", "", "", "", "", "......#") || g.fBullets != (siMap{}) {
		t.Error("the hit alien and the bullet should be gone")
	}

	// An alien moving sideways onto a bullet's new cell is hit.
	g = newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", "", ".....#")
	g.alienMoveTimer = 0
	g.fBullets = siGrid("", "", "", "", "", "", "", "", "....#") // (8,4) -> (7,4); the alien (7,5) -> (7,4)
	siMustAct(t, g, actNoop, 1, false)

	// An alien stepping down and a bullet going up swap cells without a hit.
	g = newSpaceInvaders(true)
	g.aliens = siGrid("", "", "", "", "", "", "#....#")
	g.alienMoveTimer = 0
	g.fBullets = siGrid("", "", "", "", "", "", "", ".....#")
	siMustAct(t, g, actNoop, 0, false)
	if g.aliens != siGrid("", "", "", "", "", "", "", "#....#") || g.fBullets != siGrid("", "", "", "", "", "", ".....#") {
		t.Error("alien and bullet should have passed each other")
	}
}

// Clearing the wave brings a new one at once, with the direction and the
// move timer left as they were; enemy_move_interval ramps 12 -> 6.
func TestSpaceInvadersWaveReset(t *testing.T) {
	for _, ramping := range []bool{true, false} {
		g := newSpaceInvaders(ramping)
		g.aliens = siGrid("", "", "", "", "", "", "", ".....#")
		g.alienDir = 1
		g.alienMoveTimer = 7
		g.fBullets = siGrid("", "", "", "", "", "", "", "", ".....#")
		siMustAct(t, g, actNoop, 1, false)
		var full siMap
		full.addWave()
		if g.aliens != full || g.alienDir != 1 || g.alienMoveTimer != 6 {
			t.Errorf("ramping %v: new wave %v dir %d timer %d", ramping, g.aliens, g.alienDir, g.alienMoveTimer)
		}
		want := 11
		if !ramping {
			want = 12
		}
		if g.enemyMoveInterval != want {
			t.Errorf("ramping %v: interval %d, want %d", ramping, g.enemyMoveInterval, want)
		}
	}
	g := newSpaceInvaders(true)
	for i := 0; i < 10; i++ {
		g.aliens = siGrid("#")
		g.fBullets = siGrid("", "#")
		g.alienMoveTimer = 1 << 20
		siMustAct(t, g, actNoop, 1, false)
	}
	if g.enemyMoveInterval != 6 || g.rampIndex != 6 {
		t.Errorf("interval %d ramp %d, want the floor 6 after 6 ramps", g.enemyMoveInterval, g.rampIndex)
	}
}

func TestSpaceInvadersCannonBounds(t *testing.T) {
	g := newSpaceInvaders(true)
	for i := 0; i < 8; i++ {
		g.act(actLeft, siNoRand{t})
	}
	if g.pos != 0 {
		t.Errorf("pos %d, want 0", g.pos)
	}
	g.reset(nil)
	for i := 0; i < 8; i++ {
		g.act(actRight, siNoRand{t})
	}
	if g.pos != 9 {
		t.Errorf("pos %d, want 9", g.pos)
	}
	g.reset(nil)
	g.act(actUp, siNoRand{t})
	g.act(actDown, siNoRand{t})
	if g.pos != 5 || g.fBullets != (siMap{}) {
		t.Error("up and down do nothing")
	}
}

func TestSpaceInvadersRandomPolicyStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	// reference/minatar.md: sticky 0.1, uniform over all 6 actions, 20k episodes.
	sqsiCheckRandomPolicy(t, "MinAtar/SpaceInvaders-v0", 1000, 51.94, 0.28, 2.868, 0.016)
}

func TestSpaceInvadersStepDoesNotAllocate(t *testing.T) {
	sqsiCheckNoAllocs(t, "MinAtar/SpaceInvaders-v0")
}

func BenchmarkSpaceInvadersStep(b *testing.B) { benchEnvStep(b, "MinAtar/SpaceInvaders-v0") }

// BenchmarkSpaceInvadersGameStep is the game's own share of a step (act and
// fill, no sticky draw or float32 observation).
func BenchmarkSpaceInvadersGameStep(b *testing.B) { sqsiBenchGame(b, newSpaceInvaders(true)) }

// The -v1 ids use the minimal action sets: all six for Seaquest, no-op,
// left, right, fire for Space Invaders.
func TestSeaquestSpaceInvadersMinimalActions(t *testing.T) {
	for _, c := range []struct {
		id string
		n  int
	}{{"MinAtar/Seaquest-v1", 6}, {"MinAtar/SpaceInvaders-v1", 4}, {"MinAtar/Seaquest-v0", 6}, {"MinAtar/SpaceInvaders-v0", 6}} {
		env, err := New(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if s := env.Spec(); s.NumActions != c.n || len(s.ObsShape) != 3 || s.ObsShape[0] != 10 || s.ObsShape[1] != 10 {
			t.Errorf("%s: spec %+v, want %d actions on 10x10xC", c.id, s, c.n)
		}
	}
	env, _ := New("MinAtar/SpaceInvaders-v1", WithStickyActionProb(0))
	env.Reset(1)
	cannonAt := func(obs []float32) int {
		for x := 0; x < 10; x++ {
			if obs[(9*10+x)*siChannels+siChCannon] == 1 {
				return x
			}
		}
		return -1
	}
	obs, _, _, _ := env.Step(2) // right
	if x := cannonAt(obs); x != 6 {
		t.Fatalf("after v1 action 2 the cannon is at %d, want 6", x)
	}
	obs, _, _, _ = env.Step(1) // left
	if x := cannonAt(obs); x != 5 {
		t.Fatalf("after v1 action 1 the cannon is at %d, want 5", x)
	}
	obs, _, _, _ = env.Step(3) // fire
	if obs[(8*10+5)*siChannels+siChFriendlyBullet] != 1 {
		t.Fatal("v1 action 3 should fire")
	}
}
