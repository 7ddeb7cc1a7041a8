package minatar

// Seaquest's minimal action set is all six actions (seaquest.py:311-313).
func init() {
	register("Seaquest", func(ramping bool) game { return newSeaquest(ramping) }, []int{0, 1, 2, 3, 4, 5})
}

// Constants of seaquest.py:13-21 (ramp_interval and enemy_move_interval are
// defined there but unused).
const (
	sqMaxOxygen         = 200
	sqInitSpawnSpeed    = 20
	sqDiverSpawnSpeed   = 30
	sqInitMoveInterval  = 5
	sqShotCoolDown      = 5
	sqEnemyShotInterval = 10
	sqDiverMoveInterval = 5
	sqMaxDivers         = 6
)

// Channels of the state, seaquest.py:44-55.
const (
	sqChSubFront = iota
	sqChSubBack
	sqChFriendlyBullet
	sqChTrail
	sqChEnemyBullet
	sqChEnemyFish
	sqChEnemySub
	sqChOxygenGauge
	sqChDiverGauge
	sqChDiver
	sqChannels
)

// sqEntity is one Python list of the reference: a bullet [x, y, dir], a
// diver or fish [x, y, lr, move_timer], an enemy sub [x, y, lr, move_timer,
// shot_timer]. Fields a kind does not have stay 0, so struct equality is
// Python's list equality within one list (lists only ever hold one kind).
type sqEntity struct {
	x, y  int
	right bool // moving (bullets: fired) toward +x; the reference's lr / sub_or
	move  int  // move timer (fish, subs, divers)
	shot  int  // shot timer (enemy subs)
}

// step moves e one cell in its direction (`e[0]+=1 if e[2] else -1`).
func (e *sqEntity) step() {
	if e.right {
		e.x++
	} else {
		e.x--
	}
}

func (e *sqEntity) offScreen() bool { return e.x < 0 || e.x > 9 }

// seaquest is MinAtar's seaquest.py (kenjyoung/MinAtar @ 4241f24), line by
// line. Citations (:N) are lines of that file.
//
// The player steers a two-cell submarine, shoots fish and enemy subs (+1
// each), picks up divers and must surface before its oxygen runs out.
// Surfacing with 6 divers pays oxygen*10//200; surfacing with none ends the
// episode. Every surfacing ramps the difficulty up.
//
// The reference keeps its entities in Python lists of lists and updates them
// while iterating with reversed() and removing with list.remove, which
// removes the first element *equal by value*, not necessarily the one in
// hand; CPython's reversed iterator then simply continues from its index in
// the shrunken list, so it can visit an element twice. Whether two entities
// can ever be equal is subtle (none did in the recorded episodes), so rather
// than argue it away the mechanics are copied: entities are pointers (Python
// objects), lists are slices of pointers, remove is by value, and the
// reversed loops are index-based with CPython's bounds check. Forward loops
// all break right after removing, as in the reference.
type seaquest struct {
	ramping bool

	oxygen      int
	diverCount  int // goes negative after surfacing with 6 divers (:213, :218), as in the reference
	subX, subY  int
	subRight    bool // sub_or: false = facing left
	fBullets    []*sqEntity
	eBullets    []*sqEntity
	eFish       []*sqEntity
	eSubs       []*sqEntity
	divers      []*sqEntity
	eSpawnSpeed int
	eSpawnTimer int
	dSpawnTimer int
	moveSpeed   int
	rampIndex   int
	shotTimer   int
	surface     bool
	terminal    bool

	// free holds entities no list refers to any more, for reuse by later
	// spawns, so steady-state steps allocate nothing. Entities removed
	// during a step go to dead first and join free only when the step ends:
	// the reference keeps using a removed object in the same loop iteration
	// (a sub shot down at :146 still fires at :152-154), and an enemy bullet
	// spawned in that iteration must not reuse its memory.
	free []*sqEntity
	dead []*sqEntity
}

func newSeaquest(ramping bool) *seaquest {
	g := &seaquest{ramping: ramping}
	g.reset(nil)
	return g
}

func (g *seaquest) channels() int { return sqChannels }

// reset is seaquest.py:285-304. It draws nothing.
func (g *seaquest) reset(Rand) {
	g.oxygen = sqMaxOxygen
	g.diverCount = 0
	g.subX, g.subY = 5, 0
	g.subRight = false
	for _, l := range [...]*[]*sqEntity{&g.fBullets, &g.eBullets, &g.eFish, &g.eSubs, &g.divers} {
		g.free = append(g.free, *l...)
		clear(*l)
		*l = (*l)[:0]
	}
	g.free = append(g.free, g.dead...)
	clear(g.dead)
	g.dead = g.dead[:0]
	g.eSpawnSpeed = sqInitSpawnSpeed
	g.eSpawnTimer = g.eSpawnSpeed
	g.dSpawnTimer = sqDiverSpawnSpeed
	g.moveSpeed = sqInitMoveInterval
	g.rampIndex = 0
	g.shotTimer = 0
	g.surface = true
	g.terminal = false
}

// spawn returns a new entity with the given fields, reusing a freed one.
func (g *seaquest) spawn(e sqEntity) *sqEntity {
	var p *sqEntity
	if n := len(g.free); n > 0 {
		p = g.free[n-1]
		g.free = g.free[:n-1]
	} else {
		p = new(sqEntity)
	}
	*p = e
	return p
}

// remove is Python's list.remove(e): it deletes the first element equal to
// *e by value (which may be another object than e) and keeps the order.
func (g *seaquest) remove(l []*sqEntity, e *sqEntity) []*sqEntity {
	for i, p := range l {
		if *p == *e {
			copy(l[i:], l[i+1:])
			l[len(l)-1] = nil
			g.dead = append(g.dead, p)
			return l[:len(l)-1]
		}
	}
	panic("minatar: seaquest: list.remove(x): x not in list") // the reference would raise ValueError
}

// at reports whether e sits on the player's sub (`e[0:2]==[sub_x,sub_y]`).
func (g *seaquest) at(e *sqEntity) bool { return e.x == g.subX && e.y == g.subY }

// act is seaquest.py:62-205.
func (g *seaquest) act(a int, r Rand) (float64, bool) {
	if g.terminal {
		return 0, true
	}
	g.spawnAll(r)
	g.movePlayer(a)
	reward := g.moveFriendlyBullets()
	g.moveDivers()
	reward += g.moveEnemySubs()
	g.moveEnemyBullets()
	reward += g.moveFish()
	reward += g.tick()
	g.free = append(g.free, g.dead...)
	clear(g.dead)
	g.dead = g.dead[:0]
	return float64(reward), g.terminal
}

// spawnAll spawns (:70-76): the enemy's draws come before the diver's.
func (g *seaquest) spawnAll(r Rand) {
	if g.eSpawnTimer == 0 {
		g.spawnEnemy(r)
		g.eSpawnTimer = g.eSpawnSpeed
	}
	if g.dSpawnTimer == 0 {
		g.spawnDiver(r)
		g.dSpawnTimer = sqDiverSpawnSpeed
	}
}

// movePlayer is the player's action (:79-91). Fire during the cooldown does
// nothing at all.
func (g *seaquest) movePlayer(a int) {
	switch {
	case a == actFire && g.shotTimer == 0:
		g.fBullets = append(g.fBullets, g.spawn(sqEntity{x: g.subX, y: g.subY, right: g.subRight}))
		g.shotTimer = sqShotCoolDown
	case a == actLeft:
		g.subX = max(0, g.subX-1)
		g.subRight = false
	case a == actRight:
		g.subX = min(9, g.subX+1)
		g.subRight = true
	case a == actUp:
		g.subY = max(0, g.subY-1)
	case a == actDown:
		g.subY = min(8, g.subY+1)
	}
}

// moveFriendlyBullets moves the friendly bullets (:94-113) and returns the
// kills: move, then leave the screen or hit the first fish, else the first
// enemy sub, in list order.
func (g *seaquest) moveFriendlyBullets() int {
	reward := 0
	for i := len(g.fBullets) - 1; i >= 0 && i < len(g.fBullets); i-- {
		b := g.fBullets[i]
		b.step()
		if b.offScreen() {
			g.fBullets = g.remove(g.fBullets, b)
			continue
		}
		removed := false
		for _, f := range g.eFish {
			if f.x == b.x && f.y == b.y {
				g.eFish = g.remove(g.eFish, f)
				g.fBullets = g.remove(g.fBullets, b)
				reward++
				removed = true
				break
			}
		}
		if !removed {
			for _, s := range g.eSubs {
				if s.x == b.x && s.y == b.y {
					g.eSubs = g.remove(g.eSubs, s)
					g.fBullets = g.remove(g.fBullets, b)
					reward++
					break
				}
			}
		}
	}
	return reward
}

// moveDivers moves the divers (:116-130): picked up when on the sub (before
// or after moving) while fewer than 6 are aboard. Note diver_count < 6 also
// holds when it has gone negative.
func (g *seaquest) moveDivers() {
	for i := len(g.divers) - 1; i >= 0 && i < len(g.divers); i-- {
		d := g.divers[i]
		if g.at(d) && g.diverCount < sqMaxDivers {
			g.divers = g.remove(g.divers, d)
			g.diverCount++
			continue
		}
		if d.move != 0 {
			d.move--
			continue
		}
		d.move = sqDiverMoveInterval
		d.step()
		if d.offScreen() {
			g.divers = g.remove(g.divers, d)
		} else if g.at(d) && g.diverCount < sqMaxDivers {
			g.divers = g.remove(g.divers, d)
			g.diverCount++
		}
	}
}

// moveEnemySubs moves the enemy subs (:133-156) and returns the kills.
func (g *seaquest) moveEnemySubs() int {
	reward := 0
	for i := len(g.eSubs) - 1; i >= 0 && i < len(g.eSubs); i-- {
		s := g.eSubs[i]
		if g.at(s) {
			g.terminal = true
		}
		if s.move == 0 {
			s.move = g.moveSpeed
			s.step()
			if s.offScreen() {
				g.eSubs = g.remove(g.eSubs, s)
			} else if g.at(s) {
				g.terminal = true
			} else {
				for _, b := range g.fBullets {
					if b.x == s.x && b.y == s.y {
						g.eSubs = g.remove(g.eSubs, s)
						g.fBullets = g.remove(g.fBullets, b)
						reward++
						break
					}
				}
			}
		} else {
			s.move--
		}
		// A sub just removed (off screen or shot) still runs this, as in
		// the reference: it can fire one last bullet from where it died.
		// Both branches of :154 give sub[0], so the bullet starts on the sub.
		if s.shot == 0 {
			s.shot = sqEnemyShotInterval
			g.eBullets = append(g.eBullets, g.spawn(sqEntity{x: s.x, y: s.y, right: s.right}))
		} else {
			s.shot--
		}
	}
	return reward
}

// moveEnemyBullets moves the enemy bullets (:159-167): fatal on the sub
// before or after moving.
func (g *seaquest) moveEnemyBullets() {
	for i := len(g.eBullets) - 1; i >= 0 && i < len(g.eBullets); i-- {
		b := g.eBullets[i]
		if g.at(b) {
			g.terminal = true
		}
		b.step()
		if b.offScreen() {
			g.eBullets = g.remove(g.eBullets, b)
		} else if g.at(b) {
			g.terminal = true
		}
	}
}

// moveFish moves the enemy fish (:170-188), like subs without shooting, and
// returns the kills.
func (g *seaquest) moveFish() int {
	reward := 0
	for i := len(g.eFish) - 1; i >= 0 && i < len(g.eFish); i-- {
		f := g.eFish[i]
		if g.at(f) {
			g.terminal = true
		}
		if f.move != 0 {
			f.move--
			continue
		}
		f.move = g.moveSpeed
		f.step()
		if f.offScreen() {
			g.eFish = g.remove(g.eFish, f)
		} else if g.at(f) {
			g.terminal = true
		} else {
			for _, b := range g.fBullets {
				if b.x == f.x && b.y == f.y {
					g.eFish = g.remove(g.eFish, f)
					g.fBullets = g.remove(g.fBullets, b)
					reward++
					break
				}
			}
		}
	}
	return reward
}

// tick runs the timers, oxygen and surfacing (:191-204) and returns the
// surfacing reward. Oxygen is checked before it drops, so the step after it
// reaches 0 underwater is terminal.
func (g *seaquest) tick() int {
	reward := 0
	if g.eSpawnTimer > 0 {
		g.eSpawnTimer--
	}
	if g.dSpawnTimer > 0 {
		g.dSpawnTimer--
	}
	if g.shotTimer > 0 {
		g.shotTimer--
	}
	if g.oxygen <= 0 {
		g.terminal = true
	}
	if g.subY > 0 {
		g.oxygen--
		g.surface = false
	} else if !g.surface {
		if g.diverCount == 0 {
			g.terminal = true
		} else {
			reward += g.surfaceSub()
		}
	}
	return reward
}

// surfaceSub is _surface (:210-225). With 6 divers it pays the oxygen bonus
// and zeroes the count, and then, in every case, one diver is taken away:
// so a full surfacing leaves diver_count at -1, and later surfacings keep
// lowering it without ending the episode (only exactly 0 is fatal).
func (g *seaquest) surfaceSub() int {
	g.surface = true
	r := 0
	if g.diverCount == sqMaxDivers {
		g.diverCount = 0
		r = g.oxygen * 10 / sqMaxOxygen // oxygen > 0 here, so / is Python's //
	}
	g.oxygen = sqMaxOxygen
	g.diverCount--
	if g.ramping && (g.eSpawnSpeed > 1 || g.moveSpeed > 2) {
		if g.moveSpeed > 2 && g.rampIndex%2 == 1 {
			g.moveSpeed--
		}
		if g.eSpawnSpeed > 1 {
			g.eSpawnSpeed--
		}
		g.rampIndex++
	}
	return r
}

// spawnEnemy is _spawn_enemy (:229-241): rand() for the direction, rand()
// for sub-or-fish and randint(1, 9) for the row are always drawn, even when
// the spawn is then dropped because an enemy in that row moves the other way.
func (g *seaquest) spawnEnemy(r Rand) {
	lr := r.Float64() < 1.0/2
	isSub := r.Float64() < 1.0/3
	x := 9
	if lr {
		x = 0
	}
	y := r.IntRange(1, 9)
	for _, l := range [2][]*sqEntity{g.eSubs, g.eFish} {
		for _, z := range l {
			if z.y == y && z.right != lr {
				return
			}
		}
	}
	if isSub {
		g.eSubs = append(g.eSubs, g.spawn(sqEntity{x: x, y: y, right: lr, move: g.moveSpeed, shot: sqEnemyShotInterval}))
	} else {
		g.eFish = append(g.eFish, g.spawn(sqEntity{x: x, y: y, right: lr, move: g.moveSpeed}))
	}
}

// spawnDiver is _spawn_diver (:244-248): rand() for the direction, then
// randint(1, 9) for the row.
func (g *seaquest) spawnDiver(r Rand) {
	lr := r.Float64() < 1.0/2
	x := 9
	if lr {
		x = 0
	}
	y := r.IntRange(1, 9)
	g.divers = append(g.divers, g.spawn(sqEntity{x: x, y: y, right: lr, move: sqDiverMoveInterval}))
}

// fill is state() (:255-282).
func (g *seaquest) fill(s []bool) {
	set := func(y, x, c int) { s[(y*10+x)*sqChannels+c] = true }
	set(g.subY, g.subX, sqChSubFront)
	backX := g.subX + 1
	if g.subRight {
		backX = g.subX - 1
	}
	// The sub faces right only after a right move, so x >= 1, and left
	// only at x <= 8: the back is always on screen.
	set(g.subY, backX, sqChSubBack)
	for x := 0; x < max(0, g.oxygen)*10/sqMaxOxygen; x++ {
		set(9, x, sqChOxygenGauge)
	}
	// state[9, 9-diver_count:9]: empty when the count is 0 or negative.
	for x := 9 - g.diverCount; x < 9; x++ {
		set(9, x, sqChDiverGauge)
	}
	for _, b := range g.fBullets {
		set(b.y, b.x, sqChFriendlyBullet)
	}
	for _, b := range g.eBullets {
		set(b.y, b.x, sqChEnemyBullet)
	}
	trail := func(e *sqEntity) {
		backX := e.x + 1
		if e.right {
			backX = e.x - 1
		}
		if backX >= 0 && backX <= 9 {
			set(e.y, backX, sqChTrail)
		}
	}
	for _, f := range g.eFish {
		set(f.y, f.x, sqChEnemyFish)
		trail(f)
	}
	for _, sub := range g.eSubs {
		set(sub.y, sub.x, sqChEnemySub)
		trail(sub)
	}
	for _, d := range g.divers {
		set(d.y, d.x, sqChDiver)
		trail(d)
	}
}
