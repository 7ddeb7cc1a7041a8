package actors

import "testing"

// The ledger tells in-order batches, late batches that fill a gap and
// duplicates (replayed messages) apart, and the lost count follows.
func TestStreamBookDuplicatesAndLateBatches(t *testing.T) {
	sb := newStreamBook()
	k := streamKey{"B/runner-0", 7}
	steps := []struct {
		before, n uint64
		want      streamOutcome
		gap       int64
	}{
		{0, 32, streamInOrder, 0},
		{32, 32, streamInOrder, 0},
		{32, 32, streamDuplicate, 0}, // the same batch again
		{0, 64, streamDuplicate, 0},  // a range already received
		{128, 32, streamInOrder, 64}, // [64, 128) lost on the way
		{96, 32, streamLate, -32},    // fills the end of the gap
		{96, 32, streamDuplicate, 0}, // and only once
		{48, 32, streamDuplicate, 0}, // overlaps received and gap
		{64, 32, streamLate, -32},    // the rest of the gap
		{160, 32, streamInOrder, 0},
		{100, 4, streamDuplicate, 0}, // inside a filled gap
	}
	var lost int64
	for i, s := range steps {
		got, gap := sb.record(k, s.before, s.n)
		if got != s.want || gap != s.gap {
			t.Fatalf("step %d (%d+%d): outcome %d gap %d, want %d %d", i, s.before, s.n, got, gap, s.want, s.gap)
		}
		lost += gap
	}
	if lost != 0 || len(sb.streams[k].gaps) != 0 {
		t.Fatalf("lost %d, open gaps %v: want 0, none", lost, sb.streams[k].gaps)
	}
}

// A peer inventing runner names or opening gaps cannot grow the ledger
// without bound.
func TestStreamBookBounded(t *testing.T) {
	sb := newStreamBook()
	for i := 0; i < 3*maxStreams; i++ {
		sb.record(streamKey{"r", uint64(i)}, 0, 1)
	}
	if len(sb.streams) > maxStreams {
		t.Fatalf("%d streams kept, want at most %d", len(sb.streams), maxStreams)
	}
	k := streamKey{"g", 1}
	for i := uint64(0); i < 10*maxStreamGaps; i++ {
		sb.record(k, 2*i+1, 1) // a gap of one before each batch
	}
	if n := len(sb.streams[k].gaps); n != maxStreamGaps {
		t.Fatalf("%d gaps kept, want %d", n, maxStreamGaps)
	}
}
