package minatar

import "testing"

// Rule edges of breakout.py, on the game struct directly. Positions are
// (x, y); directions 0 up-left, 1 up-right, 2 down-right, 3 down-left.

func newBreakoutAt(t *testing.T, start int) *breakout {
	t.Helper()
	b := &breakout{}
	b.reset(&scriptedRand{t: t, ints: []int{start}})
	return b
}

func TestBreakoutReset(t *testing.T) {
	for start, want := range [][3]int{{0, 3, breakoutDownRight}, {9, 3, breakoutDownLeft}} {
		b := newBreakoutAt(t, start)
		if b.ballX != want[0] || b.ballY != want[1] || b.ballDir != want[2] || b.pos != 4 ||
			b.nBricks != 30 || b.lastX != b.ballX || b.lastY != b.ballY || b.strike || b.terminal {
			t.Fatalf("randint %d: %+v", start, b)
		}
		for i, brick := range b.bricks {
			if y := i / gridSize; brick != (y >= 1 && y <= 3) {
				t.Fatalf("brick at row %d = %v", y, brick)
			}
		}
		s := make([]bool, 400)
		b.fill(s)
		at := func(x, y, c int) bool { return s[(y*10+x)*4+c] }
		if !at(b.ballX, 3, 1) || !at(b.ballX, 3, 2) || !at(4, 9, 0) || !at(0, 1, 3) || at(0, 4, 3) {
			t.Fatalf("reset state wrong for start %d", start)
		}
	}
}

func TestBreakoutPaddleClamp(t *testing.T) {
	b := newBreakoutAt(t, 0)
	b.pos = 0
	b.act(actLeft, nil)
	if b.pos != 0 {
		t.Fatalf("paddle left of 0: %d", b.pos)
	}
	b.pos = 9
	b.act(actRight, nil)
	if b.pos != 9 {
		t.Fatalf("paddle right of 9: %d", b.pos)
	}
	for _, a := range []int{actNoop, actUp, actDown, actFire} {
		b.pos = 5
		b.terminal = false
		b.ballX, b.ballY, b.ballDir = 5, 5, breakoutUpRight
		b.act(a, nil)
		if b.pos != 5 {
			t.Fatalf("action %d moved the paddle", a)
		}
	}
}

func TestBreakoutSideWall(t *testing.T) {
	b := newBreakoutAt(t, 0)
	b.ballX, b.ballY, b.ballDir = 9, 5, breakoutUpRight
	b.act(actNoop, nil)
	if b.ballX != 9 || b.ballY != 4 || b.ballDir != breakoutUpLeft {
		t.Fatalf("after the right wall: (%d,%d) dir %d, want (9,4) dir 0", b.ballX, b.ballY, b.ballDir)
	}
	b.ballX, b.ballY, b.ballDir = 0, 5, breakoutDownLeft
	b.act(actNoop, nil)
	if b.ballX != 0 || b.ballY != 6 || b.ballDir != breakoutDownRight {
		t.Fatalf("after the left wall: (%d,%d) dir %d, want (0,6) dir 2", b.ballX, b.ballY, b.ballDir)
	}
}

func TestBreakoutCeilingAndCorner(t *testing.T) {
	b := newBreakoutAt(t, 0)
	b.ballX, b.ballY, b.ballDir = 4, 0, breakoutUpRight
	b.act(actNoop, nil)
	if b.ballX != 5 || b.ballY != 0 || b.ballDir != breakoutDownRight {
		t.Fatalf("ceiling: (%d,%d) dir %d, want (5,0) dir 2", b.ballX, b.ballY, b.ballDir)
	}
	// Corner: both mirrors apply, x first.
	b.ballX, b.ballY, b.ballDir = 9, 0, breakoutUpRight
	b.act(actNoop, nil)
	if b.ballX != 9 || b.ballY != 0 || b.ballDir != breakoutDownLeft {
		t.Fatalf("corner: (%d,%d) dir %d, want (9,0) dir 3", b.ballX, b.ballY, b.ballDir)
	}
}

func TestBreakoutBrickAndStrikeQuirk(t *testing.T) {
	b := newBreakoutAt(t, 0)
	b.ballX, b.ballY, b.ballDir = 5, 4, breakoutUpRight
	r, term := b.act(actNoop, nil)
	if r != 1 || term || b.bricks[3*10+6] || b.nBricks != 29 || b.ballX != 6 || b.ballY != 4 ||
		b.ballDir != breakoutDownRight || !b.strike {
		t.Fatalf("brick hit: reward %v, ball (%d,%d) dir %d, strike %v", r, b.ballX, b.ballY, b.ballDir, b.strike)
	}
	// The step right after a strike: a brick in the way does not bounce the
	// ball; it moves into the brick's cell, no reward, the brick stays.
	b.ballDir = breakoutUpLeft
	r, _ = b.act(actNoop, nil)
	if r != 0 || b.ballX != 5 || b.ballY != 3 || !b.bricks[3*10+5] || b.ballDir != breakoutUpLeft || !b.strike {
		t.Fatalf("strike quirk: reward %v, ball (%d,%d) dir %d, brick %v, strike %v",
			r, b.ballX, b.ballY, b.ballDir, b.bricks[35], b.strike)
	}
	// Inside the brick row, it keeps going while it meets bricks...
	r, _ = b.act(actNoop, nil)
	if r != 0 || b.ballX != 4 || b.ballY != 2 || !b.strike {
		t.Fatalf("second quirk step: reward %v, ball (%d,%d)", r, b.ballX, b.ballY)
	}
	// ... and a step with no brick clears strike.
	b.bricks[1*10+3] = false
	b.nBricks--
	b.act(actNoop, nil)
	if b.strike || b.ballX != 3 || b.ballY != 1 {
		t.Fatalf("strike not cleared: ball (%d,%d) strike %v", b.ballX, b.ballY, b.strike)
	}
	// Now the next brick counts again.
	b.ballDir = breakoutUpRight
	b.bricks[0*10+4] = true
	b.nBricks++
	if r, _ := b.act(actNoop, nil); r != 1 {
		t.Fatalf("brick after a clear step: reward %v", r)
	}
}

func TestBreakoutPaddle(t *testing.T) {
	// Centre hit: the paddle is under the ball's old column.
	b := newBreakoutAt(t, 0)
	b.pos = 5
	b.ballX, b.ballY, b.ballDir = 5, 8, breakoutDownRight
	if _, term := b.act(actNoop, nil); term || b.ballX != 6 || b.ballY != 8 || b.ballDir != breakoutUpRight {
		t.Fatalf("centre: term %v ball (%d,%d) dir %d", term, b.ballX, b.ballY, b.ballDir)
	}
	// Edge hit: the paddle is under the ball's new column: back the way it came.
	b = newBreakoutAt(t, 0)
	b.pos = 6
	b.ballX, b.ballY, b.ballDir = 5, 8, breakoutDownRight
	if _, term := b.act(actNoop, nil); term || b.ballX != 6 || b.ballY != 8 || b.ballDir != breakoutUpLeft {
		t.Fatalf("edge: term %v ball (%d,%d) dir %d", term, b.ballX, b.ballY, b.ballDir)
	}
	// The paddle moves before the ball: moving under it in time saves it.
	b = newBreakoutAt(t, 0)
	b.pos = 4
	b.ballX, b.ballY, b.ballDir = 5, 8, breakoutDownRight
	if _, term := b.act(actRight, nil); term {
		t.Fatal("paddle moved under the ball but the episode ended")
	}
	// Miss: terminal, the ball drawn in row 9.
	b = newBreakoutAt(t, 0)
	b.pos = 2
	b.ballX, b.ballY, b.ballDir = 5, 8, breakoutDownRight
	if _, term := b.act(actNoop, nil); !term || b.ballX != 6 || b.ballY != 9 {
		t.Fatalf("miss: term %v ball (%d,%d)", term, b.ballX, b.ballY)
	}
	if r, term := b.act(actNoop, nil); r != 0 || !term {
		t.Fatal("act after terminal")
	}
}

func TestBreakoutRefill(t *testing.T) {
	// Bricks come back only when the ball reaches row 9 with none left, even
	// when the paddle misses.
	b := newBreakoutAt(t, 0)
	b.bricks = [100]bool{}
	b.nBricks = 0
	b.pos = 0
	b.ballX, b.ballY, b.ballDir = 5, 7, breakoutDownRight
	b.act(actNoop, nil)
	if b.nBricks != 0 {
		t.Fatal("refilled before row 9")
	}
	_, term := b.act(actNoop, nil)
	if !term || b.nBricks != 30 || !b.bricks[10] || !b.bricks[39] || b.bricks[40] {
		t.Fatalf("refill at the bottom: term %v bricks %d", term, b.nBricks)
	}
}

func TestBreakoutTrail(t *testing.T) {
	b := newBreakoutAt(t, 1) // (9,3) heading down-left
	b.act(actNoop, nil)
	s := make([]bool, 400)
	b.fill(s)
	if !s[(4*10+8)*4+1] || !s[(3*10+9)*4+2] {
		t.Fatal("ball at (8,4) with its trail at (9,3) expected")
	}
}
