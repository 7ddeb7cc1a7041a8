package minatar

// Breakout is MinAtar's breakout.py (kenjyoung/MinAtar @ 4241f24): the
// player moves a paddle along the bottom row to keep a ball, which travels
// only along diagonals, bouncing into three rows of bricks (+1 each). The
// episode ends when the ball reaches the bottom row past the paddle.
//
// Channels: 0 paddle, 1 ball, 2 trail (the ball's previous cell), 3 brick.
// Minimal actions (-v1): no-op, left, right.
func init() {
	register("Breakout", func(bool) game { return &breakout{} }, []int{actNoop, actLeft, actRight})
}

const breakoutChannels = 4

// Ball directions, numbered as in breakout.py:48-59.
const (
	breakoutUpLeft    = 0 // (-1,-1)
	breakoutUpRight   = 1 // (+1,-1)
	breakoutDownRight = 2 // (+1,+1)
	breakoutDownLeft  = 3 // (-1,+1)
)

// Direction remaps of breakout.py: a horizontal wall mirrors x, a ceiling or
// brick or the paddle's centre mirrors y, the paddle's edge reverses both.
var (
	breakoutMirrorX = [4]int{1, 0, 3, 2}
	breakoutMirrorY = [4]int{3, 2, 1, 0}
	breakoutReverse = [4]int{2, 3, 0, 1}
)

type breakout struct {
	ballX, ballY int
	ballDir      int
	lastX, lastY int // the ball's cell before the last step: the trail
	pos          int // paddle column, in row 9
	bricks       [gridSize * gridSize]bool
	nBricks      int // number of true cells in bricks, so "all gone" is O(1)
	// strike is set on a step whose ball move hit a brick. On the next step
	// a brick does not bounce the ball: it moves into the brick's cell and
	// the brick stays (breakout.py:71-78).
	strike   bool
	terminal bool
}

func (b *breakout) channels() int { return breakoutChannels }

// reset follows breakout.py:112-122. Its one draw, randint(2), picks the
// ball's start: column 0 heading down-right or column 9 heading down-left.
func (b *breakout) reset(r Rand) {
	b.ballY = 3
	if r.IntRange(0, 2) == 0 {
		b.ballX, b.ballDir = 0, breakoutDownRight
	} else {
		b.ballX, b.ballDir = 9, breakoutDownLeft
	}
	b.pos = 4
	b.bricks = [gridSize * gridSize]bool{}
	b.fillBricks()
	b.strike = false
	b.lastX, b.lastY = b.ballX, b.ballY
	b.terminal = false
}

// fillBricks sets rows 1-3 to bricks (brick_map[1:4,:] = 1).
func (b *breakout) fillBricks() {
	for i := 1 * gridSize; i < 4*gridSize; i++ {
		b.bricks[i] = true
	}
	// Only called with no bricks left or from reset, so the count is exact.
	b.nBricks = 3 * gridSize
}

// act follows breakout.py:32-96, branch for branch. It draws nothing.
func (b *breakout) act(a int, _ Rand) (float64, bool) {
	if b.terminal {
		return 0, true
	}
	var reward float64
	switch a {
	case actLeft:
		b.pos = max(0, b.pos-1)
	case actRight:
		b.pos = min(9, b.pos+1)
	}

	b.lastX, b.lastY = b.ballX, b.ballY
	newX, newY := b.ballX, b.ballY
	switch b.ballDir {
	case breakoutUpLeft:
		newX, newY = newX-1, newY-1
	case breakoutUpRight:
		newX, newY = newX+1, newY-1
	case breakoutDownRight:
		newX, newY = newX+1, newY+1
	case breakoutDownLeft:
		newX, newY = newX-1, newY+1
	}

	strikeToggle := false
	// The side walls are checked first and the remaining branches use the
	// clamped column and the already-mirrored direction (breakout.py:62-67).
	if newX < 0 || newX > 9 {
		newX = min(max(newX, 0), 9)
		b.ballDir = breakoutMirrorX[b.ballDir]
	}
	switch {
	case newY < 0:
		newY = 0
		b.ballDir = breakoutMirrorY[b.ballDir]
	case b.bricks[newY*gridSize+newX]:
		strikeToggle = true
		if !b.strike {
			reward++
			b.strike = true
			b.bricks[newY*gridSize+newX] = false
			b.nBricks--
			newY = b.lastY
			b.ballDir = breakoutMirrorY[b.ballDir]
		}
	case newY == 9:
		// Bricks come back when the ball reaches the bottom row with none
		// left, before it is known whether the paddle saves it.
		if b.nBricks == 0 {
			b.fillBricks()
		}
		switch {
		case b.ballX == b.pos: // the paddle is under the ball's old column
			b.ballDir = breakoutMirrorY[b.ballDir]
			newY = b.lastY
		case newX == b.pos:
			b.ballDir = breakoutReverse[b.ballDir]
			newY = b.lastY
		default:
			b.terminal = true
		}
	}
	if !strikeToggle {
		b.strike = false
	}
	b.ballX, b.ballY = newX, newY
	return reward, b.terminal
}

// fill follows breakout.py:103-109.
func (b *breakout) fill(s []bool) {
	s[(b.ballY*gridSize+b.ballX)*breakoutChannels+1] = true
	s[(9*gridSize+b.pos)*breakoutChannels+0] = true
	s[(b.lastY*gridSize+b.lastX)*breakoutChannels+2] = true
	for i, brick := range b.bricks {
		if brick {
			s[i*breakoutChannels+3] = true
		}
	}
}
