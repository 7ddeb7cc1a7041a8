package actors

import "github.com/qfleet/qfleet/envs"

// Stacked frames (frame_stack > 1). Each observation is the env's last k
// frames, stacked channel-last by the runner (envs.FrameStack), so that a
// frame is in k consecutive observations and in next observations too:
// stored whole, a 84×84×4 pixel transition would take 56 KB. The table
// stores each frame once instead: a row holds k frame ids for its
// observation and k for its next, found by content among the recent frames
// (frameStore.intern), and a sample rebuilds the stacks from them. In a
// runner's stream each step brings one new frame (and an episode's end one
// more, its first frame), so a row costs about one frame: 7 KB for Atari's
// 84×84 instead of 56.
//
// The ring therefore holds about one frame a row (stackedSlots), not the
// two a row that make overwriting impossible for single frames. A stream
// that brings more (frames that never repeat: a runner without stacking, a
// broken env) overwrites frames that old rows still hold; those rows are
// dropped (evictOverwritten) before they could be sampled, and counted.

// stackedSlots is the frame ring's size for a table of capacity rows: one
// frame a row, a sixteenth more for episode starts (episodes of 16 steps
// or more fit), and the window within which frames are deduplicated. Envs
// whose frames often repeat (CartPolePixels-v1 under random play: 0.3 new
// frames a row) use less of it.
func stackedSlots(capacity, stack int) uint64 {
	return uint64(capacity + capacity/16 + recentFrames + 2*stack)
}

// setStackedRow stores row r's observations as frame ids.
func (t *Table) setStackedRow(r int, obs, nextObs []float32) {
	k := t.stack
	t.floor[r] = t.frames.floor()
	for j := range k {
		t.obsFrame[r*k+j] = t.internFrame(obs, j)
		t.nextFrame[r*k+j] = t.internFrame(nextObs, j)
	}
}

// internFrame stores frame j of the stack (unless it is held already) and
// returns its id. Pixels are gathered straight into their bytes.
func (t *Table) internFrame(stack []float32, j int) uint64 {
	f := t.frames
	if f.dtype != envs.Uint8 {
		envs.StackFrame(t.frame, stack, t.stack, t.channels, j)
		return f.intern(t.frame)
	}
	envs.StackFrame(f.packed, stack, t.stack, t.channels, j)
	return f.internPacked()
}

// readStackedRow rebuilds row r's stacked observations.
func (t *Table) readStackedRow(r int, obs, nextObs []float32) {
	k := t.stack
	for j := range k {
		t.unstack(obs, t.obsFrame[r*k+j], j)
		t.unstack(nextObs, t.nextFrame[r*k+j], j)
	}
}

// unstack writes frame id as frame j of the stack dst; pixels straight
// from their bytes.
func (t *Table) unstack(dst []float32, id uint64, j int) {
	if t.frames.dtype == envs.Uint8 {
		envs.UnstackFrame(dst, t.frames.frame(id), t.stack, t.channels, j)
		return
	}
	t.frames.unpack(t.frame, id)
	envs.UnstackFrame(dst, t.frame, t.stack, t.channels, j)
}

// evictOverwritten drops the oldest rows while the frames they may hold
// have been overwritten in the ring. Rows' floors grow in insert order, so
// the rows kept are exactly those whose frames are all still there.
func (t *Table) evictOverwritten() {
	f := t.frames
	if f.inserted <= f.slots {
		return
	}
	for t.size > 0 {
		r := t.tail()
		if t.floor[r] >= f.inserted-f.slots {
			return
		}
		if t.prio != nil {
			t.prio.Set(r, 0)
		}
		t.size--
		t.evicted++
	}
}
