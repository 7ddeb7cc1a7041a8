package minatar

// Freeway is MinAtar's freeway.py (kenjyoung/MinAtar @ 4241f24): a chicken
// in column 4 crosses eight lanes of cars from row 9 to row 0 (+1 per
// crossing, then back to row 9 and every car gets a new speed). A car hit
// only sends the chicken back to row 9. Every episode ends, as a
// termination, after exactly 2501 steps. There is no difficulty ramping.
//
// Channels: 0 chicken, 1 car, 2..6 trail of a car with speed 1..5 (the
// cell behind it, wrapping around). Minimal actions (-v1): no-op, up, down.
func init() {
	register("Freeway", func(bool) game { return &freeway{} }, []int{actNoop, actUp, actDown})
}

// Constants of freeway.py:13-14.
const (
	freewayChannels    = 7
	freewayPlayerSpeed = 3    // the chicken may move once every 3 steps
	freewayTimeLimit   = 2500 // terminal when the countdown goes below 0
	freewayCars        = 8    // car i drives in row i+1
)

// freewayCar is one entry of freeway.py's cars list, [x, y, timer, v].
// The car moves when timer is 0, then timer becomes |v|: so a car of speed
// |v| moves every |v|+1 steps (the docstring's "every 1..5 frames" is off
// by one). The sign of v is its direction.
type freewayCar struct {
	x, y  int
	timer int
	v     int
}

type freeway struct {
	cars           [freewayCars]freewayCar
	pos            int // chicken row, in column 4
	moveTimer      int
	terminateTimer int
	terminal       bool
}

func (g *freeway) channels() int { return freewayChannels }

// reset follows freeway.py:131-136.
func (g *freeway) reset(r Rand) {
	g.randomizeCars(r, true)
	g.pos = 9
	g.moveTimer = freewayPlayerSpeed
	g.terminateTimer = freewayTimeLimit
	g.terminal = false
}

// randomizeCars follows freeway.py:118-128: randint(1,6,8) draws the 8
// speeds, then rand(8) the 8 directions as sign(u-0.5). u == 0.5 exactly
// would give a speed-0 car (numpy's sign of 0); it is kept, as in the
// reference, though it never happens in practice (p = 2^-53 per draw).
// Without initialize the cars keep their positions.
func (g *freeway) randomizeCars(r Rand, initialize bool) {
	var speeds [freewayCars]int
	for i := range speeds {
		speeds[i] = r.IntRange(1, 6)
	}
	for i := range speeds {
		switch u := r.Float64(); {
		case u > 0.5:
		case u < 0.5:
			speeds[i] = -speeds[i]
		default:
			speeds[i] = 0
		}
	}
	for i, v := range speeds {
		c := &g.cars[i]
		if initialize {
			c.x, c.y = 0, i+1
		}
		c.timer, c.v = freewayAbs(v), v
	}
}

// act follows freeway.py:46-87, in its order.
func (g *freeway) act(a int, r Rand) (float64, bool) {
	if g.terminal {
		return 0, true
	}
	var reward float64
	switch {
	case a == actUp && g.moveTimer == 0:
		g.moveTimer = freewayPlayerSpeed
		g.pos = max(0, g.pos-1)
	case a == actDown && g.moveTimer == 0:
		g.moveTimer = freewayPlayerSpeed
		g.pos = min(9, g.pos+1)
	}

	if g.pos == 0 { // crossed: new car speeds (draws), chicken back to start
		reward++
		g.randomizeCars(r, false)
		g.pos = 9
	}

	// A car on the chicken, before or after its move, sends it back.
	for i := range g.cars {
		c := &g.cars[i]
		if c.x == 4 && c.y == g.pos {
			g.pos = 9
		}
		if c.timer == 0 {
			c.timer = freewayAbs(c.v)
			if c.v > 0 {
				c.x++
			} else {
				c.x--
			}
			if c.x < 0 {
				c.x = 9
			} else if c.x > 9 {
				c.x = 0
			}
			if c.x == 4 && c.y == g.pos {
				g.pos = 9
			}
		} else {
			c.timer--
		}
	}

	if g.moveTimer > 0 {
		g.moveTimer--
	}
	g.terminateTimer--
	if g.terminateTimer < 0 {
		g.terminal = true
	}
	return reward, g.terminal
}

// fill follows freeway.py:94-115.
func (g *freeway) fill(s []bool) {
	s[(g.pos*gridSize+4)*freewayChannels+0] = true
	trail := 0 // freeway.py's loop variable; 0 while unset
	for _, c := range g.cars {
		s[(c.y*gridSize+c.x)*freewayChannels+1] = true
		back := c.x + 1
		if c.v > 0 {
			back = c.x - 1
		}
		if back < 0 {
			back = 9
		} else if back > 9 {
			back = 0
		}
		// A speed-0 car (see randomizeCars) matches no speed branch, so
		// Python reuses the previous car's trail channel, or raises for
		// the first car; here the first car then draws no trail.
		if sp := freewayAbs(c.v); sp >= 1 && sp <= 5 {
			trail = 1 + sp
		}
		if trail != 0 {
			s[(c.y*gridSize+back)*freewayChannels+trail] = true
		}
	}
}

func freewayAbs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
