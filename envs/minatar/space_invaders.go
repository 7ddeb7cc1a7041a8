package minatar

import "math/bits"

// Space Invaders' minimal action set is no-op, left, right, fire
// (space_invaders.py:155-157): up and down do nothing.
func init() {
	register("SpaceInvaders", func(ramping bool) game { return newSpaceInvaders(ramping) }, []int{0, 1, 3, 5})
}

// Constants of space_invaders.py:13-15.
const (
	siShotCoolDown      = 5
	siEnemyMoveInterval = 12
	siEnemyShotInterval = 10
	siMinMoveInterval   = 6 // ramping stops once enemy_move_interval is 6 (:103)
)

// Channels of the state, space_invaders.py:33-40.
const (
	siChCannon = iota
	siChAlien
	siChAlienLeft
	siChAlienRight
	siChFriendlyBullet
	siChEnemyBullet
	siChannels
)

// siMap is a 10x10 0/1 map: siMap[y] has bit x set for cell (y, x).
type siMap [10]uint16

const (
	siRowMask = 1<<10 - 1
	siCol0    = 1 << 0
	siCol9    = 1 << 9
)

func (m *siMap) count() int {
	n := 0
	for _, row := range m {
		n += bits.OnesCount16(row)
	}
	return n
}

// rollDown is np.roll(m, 1, axis=0): every row moves down one, row 9 wraps
// to row 0.
func (m *siMap) rollDown() {
	last := m[9]
	copy(m[1:], m[:9])
	m[0] = last
}

// rollUp is np.roll(m, -1, axis=0): row 0 wraps to row 9.
func (m *siMap) rollUp() {
	first := m[0]
	copy(m[:9], m[1:])
	m[9] = first
}

// rollX is np.roll(m, dir, axis=1) for dir = +1 or -1, with wrap-around.
func (m *siMap) rollX(dir int) {
	for y, row := range m {
		if dir > 0 {
			m[y] = (row<<1 | row>>9) & siRowMask
		} else {
			m[y] = (row>>1 | row<<9) & siRowMask
		}
	}
}

// colAny reports whether any cell of the column mask col is set
// (np.sum(m[:, i]) > 0).
func (m *siMap) colAny(col uint16) bool {
	for _, row := range m {
		if row&col != 0 {
			return true
		}
	}
	return false
}

// addWave is alien_map[0:4, 2:8] = 1.
func (m *siMap) addWave() {
	const wave = 0b0011111100 // columns 2..7
	for y := 0; y < 4; y++ {
		m[y] |= wave
	}
}

// spaceInvaders is MinAtar's space_invaders.py (kenjyoung/MinAtar @
// 4241f24), line by line. Citations (:N) are lines of that file.
//
// The player's cannon in row 9 shoots up at a block of aliens that sweeps
// sideways, stepping down and turning at the edges, and shoots back. +1 per
// alien; an alien or an enemy bullet reaching the cannon ends the episode.
// A cleared wave is replaced at once by a new one that moves a little
// faster. The game draws no random numbers at all.
//
// The reference keeps three 10x10 numpy maps and moves them with np.roll,
// which wraps around. Here each map is ten row bitmasks (bit x = column x),
// and every roll keeps numpy's wrap-around, even where the reference then
// clears the wrapped row or cannot wrap in practice.
type spaceInvaders struct {
	ramping bool

	pos               int // cannon column
	fBullets          siMap
	eBullets          siMap
	aliens            siMap
	alienDir          int // -1 left, +1 right
	enemyMoveInterval int
	alienMoveTimer    int
	alienShotTimer    int
	rampIndex         int
	shotTimer         int
	terminal          bool
}

func newSpaceInvaders(ramping bool) *spaceInvaders {
	g := &spaceInvaders{ramping: ramping}
	g.reset(nil)
	return g
}

func (g *spaceInvaders) channels() int { return siChannels }

// reset is space_invaders.py:136-148. It draws nothing.
func (g *spaceInvaders) reset(Rand) {
	g.pos = 5
	g.fBullets = siMap{}
	g.eBullets = siMap{}
	g.aliens = siMap{}
	g.aliens.addWave()
	g.alienDir = -1
	g.enemyMoveInterval = siEnemyMoveInterval
	g.alienMoveTimer = g.enemyMoveInterval
	g.alienShotTimer = siEnemyShotInterval
	g.rampIndex = 0
	g.shotTimer = 0
	g.terminal = false
}

// act is space_invaders.py:47-107. Once terminal is set the rest of the
// step still runs (aliens move, shoot and die), as in the reference.
func (g *spaceInvaders) act(a int, _ Rand) (float64, bool) {
	if g.terminal {
		return 0, true
	}
	cannon := uint16(1) << g.pos

	// Player action (:55-61). Fire during the cooldown does nothing.
	switch {
	case a == actFire && g.shotTimer == 0:
		g.fBullets[9] |= cannon
		g.shotTimer = siShotCoolDown
	case a == actLeft:
		g.pos = max(0, g.pos-1)
	case a == actRight:
		g.pos = min(9, g.pos+1)
	}
	cannon = uint16(1) << g.pos

	// Bullets (:64-71). A friendly bullet leaving row 0 wraps to row 9 and
	// is cleared there, so one fired this step is already in row 8; an
	// enemy bullet leaving row 9 wraps to row 0 and is cleared.
	g.fBullets.rollUp()
	g.fBullets[9] = 0
	g.eBullets.rollDown()
	g.eBullets[0] = 0
	if g.eBullets[9]&cannon != 0 {
		g.terminal = true
	}

	// Aliens (:74-86). The move timer restarts at min(#aliens, interval),
	// so the last few aliens speed up. On turning, the block moves down
	// with np.roll, so aliens already in row 9 wrap to row 0 (the step is
	// terminal then anyway).
	if g.aliens[9]&cannon != 0 {
		g.terminal = true
	}
	if g.alienMoveTimer == 0 {
		g.alienMoveTimer = min(g.aliens.count(), g.enemyMoveInterval)
		if (g.aliens.colAny(siCol0) && g.alienDir < 0) || (g.aliens.colAny(siCol9) && g.alienDir > 0) {
			g.alienDir = -g.alienDir
			if g.aliens[9] != 0 {
				g.terminal = true
			}
			g.aliens.rollDown()
		} else {
			g.aliens.rollX(g.alienDir)
		}
		if g.aliens[9]&cannon != 0 {
			g.terminal = true
		}
	}

	// Alien fire (:87-90): the lowest alien of the column nearest the
	// cannon (ties to the lower column) puts a bullet on its own cell; it
	// moves down from the next step on.
	if g.alienShotTimer == 0 {
		g.alienShotTimer = siEnemyShotInterval
		// _nearest_alien returns None, and the reference crashes, when no
		// alien is left; that cannot happen here because an empty map is
		// refilled at the end of every step.
		if y, x, ok := g.nearestAlien(); ok {
			g.eBullets[y] |= 1 << x
		}
	}

	// Kills (:92-95): cells holding both an alien and a friendly bullet.
	// They are only found here, after both moved, so a bullet and an
	// alien can swap cells without a hit.
	reward := 0
	for y := range g.aliens {
		hit := g.aliens[y] & g.fBullets[y]
		if hit != 0 {
			reward += bits.OnesCount16(hit)
			g.aliens[y] &^= hit
			g.fBullets[y] &^= hit
		}
	}

	// Timers and a new wave (:99-106). The wave keeps alien_dir and the
	// running move timer; only enemy_move_interval ramps (floor 6).
	if g.shotTimer > 0 {
		g.shotTimer--
	}
	g.alienMoveTimer--
	g.alienShotTimer--
	if g.aliens.count() == 0 {
		if g.enemyMoveInterval > siMinMoveInterval && g.ramping {
			g.enemyMoveInterval--
			g.rampIndex++
		}
		g.aliens.addWave()
	}
	return float64(reward), g.terminal
}

// nearestAlien is _nearest_alien (:110-116): columns in order of |x-pos|,
// a stable sort of 0..9, so pos, pos-1, pos+1, pos-2, pos+2, ...; in the
// first column holding an alien, the lowest (largest y) one.
func (g *spaceInvaders) nearestAlien() (y, x int, ok bool) {
	for d := 0; d < 10; d++ {
		cols := [2]int{g.pos - d, g.pos + d}
		n := 2
		if d == 0 {
			n = 1 // pos itself, once
		}
		for _, x := range cols[:n] {
			if x < 0 || x > 9 {
				continue
			}
			col := uint16(1) << x
			for y := 9; y >= 0; y-- {
				if g.aliens[y]&col != 0 {
					return y, x, true
				}
			}
		}
	}
	return 0, 0, false
}

// fill is state() (:123-133).
func (g *spaceInvaders) fill(s []bool) {
	s[(9*10+g.pos)*siChannels+siChCannon] = true
	dirCh := siChAlienRight
	if g.alienDir < 0 {
		dirCh = siChAlienLeft
	}
	for y := 0; y < 10; y++ {
		a, f, e := g.aliens[y], g.fBullets[y], g.eBullets[y]
		if a|f|e == 0 {
			continue
		}
		for x := 0; x < 10; x++ {
			bit := uint16(1) << x
			i := (y*10 + x) * siChannels
			if a&bit != 0 {
				s[i+siChAlien] = true
				s[i+dirCh] = true
			}
			if f&bit != 0 {
				s[i+siChFriendlyBullet] = true
			}
			if e&bit != 0 {
				s[i+siChEnemyBullet] = true
			}
		}
	}
}
