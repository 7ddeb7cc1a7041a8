package minatar

// Asterix is MinAtar's asterix.py (kenjyoung/MinAtar @ 4241f24): the player
// moves in four directions between rows 1 and 8; enemies and gold enter
// from the sides, one per row. Gold gives +1; touching an enemy ends the
// episode. With ramping, spawns and moves get faster every 102 steps.
//
// Channels: 0 player, 1 enemy, 2 trail (the cell behind each entity),
// 3 gold. Minimal actions (-v1): no-op, left, up, right, down.
func init() {
	register("Asterix", func(ramping bool) game { return &asterix{ramping: ramping} },
		[]int{actNoop, actLeft, actUp, actRight, actDown})
}

// Constants of asterix.py:13-15 (shot_cool_down is unused there too).
const (
	asterixChannels         = 4
	asterixRampInterval     = 100
	asterixInitSpawnSpeed   = 10
	asterixInitMoveInterval = 5
	asterixSlots            = 8 // slot i is row i+1
)

// asterixEntity is one entry of asterix.py's entities list,
// [x, y, lr, is_gold], or None when !alive.
type asterixEntity struct {
	x, y  int
	right bool // lr: moves right (entered at x=0)
	gold  bool
	alive bool
}

type asterix struct {
	ramping          bool
	playerX, playerY int
	entities         [asterixSlots]asterixEntity
	spawnSpeed       int
	spawnTimer       int
	moveSpeed        int
	moveTimer        int
	rampTimer        int
	rampIndex        int
	terminal         bool
}

func (g *asterix) channels() int { return asterixChannels }

// reset follows asterix.py:136-147; it draws nothing.
func (g *asterix) reset(Rand) {
	g.playerX, g.playerY = 5, 5
	g.entities = [asterixSlots]asterixEntity{}
	g.spawnSpeed = asterixInitSpawnSpeed
	g.spawnTimer = g.spawnSpeed
	g.moveSpeed = asterixInitMoveInterval
	g.moveTimer = g.moveSpeed
	g.rampTimer = asterixRampInterval
	g.rampIndex = 0
	g.terminal = false
}

// act follows asterix.py:42-105, in its order.
func (g *asterix) act(a int, r Rand) (float64, bool) {
	if g.terminal {
		return 0, true
	}
	var reward float64
	if g.spawnTimer == 0 {
		g.spawn(r)
		g.spawnTimer = g.spawnSpeed
	}

	switch a {
	case actLeft:
		g.playerX = max(0, g.playerX-1)
	case actRight:
		g.playerX = min(9, g.playerX+1)
	case actUp:
		g.playerY = max(1, g.playerY-1)
	case actDown:
		g.playerY = min(8, g.playerY+1)
	}

	// Collisions after the player's move. An enemy hit does not stop the
	// step: the entities still move and the timers still run.
	for i := range g.entities {
		reward += g.collide(&g.entities[i])
	}
	if g.moveTimer == 0 {
		g.moveTimer = g.moveSpeed
		for i := range g.entities {
			e := &g.entities[i]
			if !e.alive {
				continue
			}
			if e.right {
				e.x++
			} else {
				e.x--
			}
			if e.x < 0 || e.x > 9 {
				e.alive = false // off screen; it cannot collide either
				continue
			}
			reward += g.collide(e)
		}
	}

	g.spawnTimer--
	g.moveTimer--

	// Ramping (asterix.py:95-104). ramp_timer counts 100 down to -1 before
	// a ramp fires, so ramps come every 102 steps, not every 100.
	if g.ramping && (g.spawnSpeed > 1 || g.moveSpeed > 1) {
		if g.rampTimer >= 0 {
			g.rampTimer--
		} else {
			if g.moveSpeed > 1 && g.rampIndex%2 == 1 {
				g.moveSpeed--
			}
			if g.spawnSpeed > 1 {
				g.spawnSpeed--
			}
			g.rampIndex++
			g.rampTimer = asterixRampInterval
		}
	}
	return reward, g.terminal
}

// collide resolves entity e touching the player: gold is collected (+1)
// and removed, an enemy makes the step terminal and stays.
func (g *asterix) collide(e *asterixEntity) float64 {
	if !e.alive || e.x != g.playerX || e.y != g.playerY {
		return 0
	}
	if e.gold {
		e.alive = false
		return 1
	}
	g.terminal = true
	return 0
}

// spawn follows asterix.py:108-116: direction and kind are drawn even when
// every slot is taken; the slot draw happens only if one is free.
func (g *asterix) spawn(r Rand) {
	right := r.Float64() < 1.0/2
	gold := r.Float64() < 1.0/3
	var free [asterixSlots]int
	n := 0
	for i, e := range g.entities {
		if !e.alive {
			free[n] = i
			n++
		}
	}
	if n == 0 {
		return
	}
	slot := free[r.IntRange(0, n)]
	x := 9
	if right {
		x = 0
	}
	g.entities[slot] = asterixEntity{x: x, y: slot + 1, right: right, gold: gold, alive: true}
}

// fill follows asterix.py:123-133.
func (g *asterix) fill(s []bool) {
	s[(g.playerY*gridSize+g.playerX)*asterixChannels+0] = true
	for _, e := range g.entities {
		if !e.alive {
			continue
		}
		c := 1
		if e.gold {
			c = 3
		}
		s[(e.y*gridSize+e.x)*asterixChannels+c] = true
		back := e.x + 1
		if e.right {
			back = e.x - 1
		}
		if back >= 0 && back <= 9 {
			s[(e.y*gridSize+back)*asterixChannels+2] = true
		}
	}
}
