package actors

import (
	"encoding/binary"
	"fmt"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
)

// Snapshots of a table of stacked frames keep each frame once, as the table
// does: a list of frames and, per row, 2k indices into it (ReplaySnapshot's
// frames and frame_refs). Written as whole stacks they would take 56 KB a
// row for Atari's 84×84×4, and the copy a snapshot is written from would
// need 56 GB for a table of a million.

// captureStacked appends rows [lo, hi) of a stacked table to the capture.
func (c *tableCapture) captureStacked(t *Table, lo, hi int) {
	if c.frameIndex == nil {
		c.frameStack, c.frameIndex = t.stack, map[uint64]uint32{}
	}
	ref := func(id uint64) {
		i, ok := c.frameIndex[id]
		if !ok {
			i = uint32(len(c.frameIndex))
			c.frameIndex[id] = i
			c.frames = append(c.frames, t.frames.frame(id)...)
		}
		c.frameRefs = binary.LittleEndian.AppendUint32(c.frameRefs, i)
	}
	k := t.stack
	for r := lo; r < hi; r++ {
		for _, ids := range [][]uint64{t.obsFrame[r*k : (r+1)*k], t.nextFrame[r*k : (r+1)*k]} {
			for _, id := range ids {
				ref(id)
			}
		}
	}
}

// checkStackedSnapshot checks a stacked snapshot's frames and references:
// whole frames, 2k references a row, each naming a frame it holds.
func checkStackedSnapshot(s *messages.ReplaySnapshot, bytesPerFrame int) error {
	n, k := int(s.GetSize()), int(s.GetFrameStack())
	switch {
	case k > envs.MaxFrameStack:
		return fmt.Errorf("replay snapshot of %d stacked frames: at most %d", k, envs.MaxFrameStack)
	case int(s.GetObsSize())%k != 0:
		return fmt.Errorf("replay snapshot of %d stacked frames has observations of %d values", k, s.GetObsSize())
	case len(s.GetFrames())%bytesPerFrame != 0:
		return fmt.Errorf("replay snapshot has %d bytes of frames, not a whole number of %d-byte frames", len(s.GetFrames()), bytesPerFrame)
	case len(s.GetFrameRefs()) != 4*2*k*n:
		return fmt.Errorf("replay snapshot of %d transitions has %d bytes of frame references, want %d", n, len(s.GetFrameRefs()), 4*2*k*n)
	case len(s.GetObservations())+len(s.GetNextObservations())+len(s.GetPackedObservations())+len(s.GetPackedNextObservations()) != 0:
		return fmt.Errorf("replay snapshot of stacked frames also has whole observations")
	}
	count := uint32(len(s.GetFrames()) / bytesPerFrame)
	refs := s.GetFrameRefs()
	for i := 0; i < len(refs); i += 4 {
		if f := binary.LittleEndian.Uint32(refs[i:]); f >= count {
			return fmt.Errorf("replay snapshot row %d refers to frame %d of %d", i/(8*k), f, count)
		}
	}
	return nil
}

// checkStackedFrames refuses a stacked snapshot into a table that is not
// one of the same depth, and frames of a wider dtype whose values the
// table's does not hold.
func (t *Table) checkStackedFrames(s *messages.ReplaySnapshot, dtype envs.ObsDType) error {
	if t.frames == nil || t.stack != int(s.GetFrameStack()) {
		return fmt.Errorf("replay snapshot of observations of %d stacked frames, the table holds stacks of %d", s.GetFrameStack(), max(t.stack, 1))
	}
	if dtypeFits(dtype, t.frames.dtype) {
		return nil
	}
	cells := int(s.GetObsSize()) / t.stack
	bytesPer := frameBytes(dtype, cells)
	row := make([]float32, cells)
	for i := 0; i < len(s.GetFrames()); i += bytesPer {
		unpackFrame(dtype, row, s.GetFrames()[i:i+bytesPer])
		if err := t.frames.check(row); err != nil {
			return fmt.Errorf("replay snapshot: frame %d: %w", i/bytesPer, err)
		}
	}
	return nil
}

// restoreStackedRow stores row i of a stacked snapshot as row r, each of
// its frames found again by content (as an insert finds it) or stored.
func (t *Table) restoreStackedRow(r int, s *messages.ReplaySnapshot, i int, dtype envs.ObsDType) {
	k, f := t.stack, t.frames
	cells := t.obsSize / k
	bytesPer := frameBytes(dtype, cells)
	t.floor[r] = f.floor()
	refs := s.GetFrameRefs()[4*2*k*i:]
	for j := range 2 * k {
		src := s.GetFrames()[int(binary.LittleEndian.Uint32(refs[4*j:]))*bytesPer:][:bytesPer]
		if dtype == f.dtype {
			copy(f.packed, src)
		} else {
			unpackFrame(dtype, t.frame, src)
			f.packFrame(f.packed, t.frame)
		}
		id := f.internPacked()
		if j < k {
			t.obsFrame[r*k+j] = id
		} else {
			t.nextFrame[r*k+j-k] = id
		}
	}
}
