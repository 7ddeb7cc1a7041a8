package actors

// streamBook is the replay's ledger of each runner stream: how far it has
// received, and the gaps (ranges of transitions sent but never received)
// that a late batch may still fill.
//
// A runner never sends a range twice, so a batch over a range already
// received, or not entirely inside a gap, is a duplicate: an old message
// replayed by a peer, or a bug. Inserting it would store its transitions
// twice, fill a gap that is still open (the accounting would go wrong) and
// credit the runner twice (its window would grow past the limit).
type streamBook struct {
	streams map[streamKey]*streamState
}

type streamState struct {
	next uint64 // transitions of this stream received or counted lost so far
	gaps []span // ranges counted lost, oldest first; a late batch fills one
}

// span is the transitions [from, to) of a stream.
type span struct{ from, to uint64 }

const (
	// maxStreamGaps bounds a stream's open gaps; the oldest is forgotten
	// first (a batch for it, if it ever comes, is then a duplicate and the
	// gap stays counted lost, which keeps the accounting exact).
	maxStreamGaps = 64
	// maxStreams bounds the ledger against a peer that invents runner
	// names: when full, an arbitrary stream is dropped (if it sends again,
	// it starts over and its sent-before shows as a gap).
	maxStreams = 4096
)

func newStreamBook() *streamBook { return &streamBook{streams: map[streamKey]*streamState{}} }

// outcome of a batch for the ledger.
type streamOutcome int

const (
	streamInOrder   streamOutcome = iota // at or after next; gap = transitions skipped
	streamLate                           // inside a gap: fills it (gap < 0)
	streamDuplicate                      // already received: refuse it
)

// record books the batch of n transitions sent after before others of
// stream k and returns what it is and the change to the lost count.
func (sb *streamBook) record(k streamKey, before, n uint64) (streamOutcome, int64) {
	st := sb.streams[k]
	if st == nil {
		if len(sb.streams) >= maxStreams {
			for old := range sb.streams {
				delete(sb.streams, old)
				break
			}
		}
		st = &streamState{}
		sb.streams[k] = st
	}
	if before >= st.next {
		gap := before - st.next
		if gap > 0 {
			st.gaps = append(st.gaps, span{st.next, before})
			if len(st.gaps) > maxStreamGaps {
				st.gaps = st.gaps[1:]
			}
		}
		st.next = before + n
		return streamInOrder, int64(gap)
	}
	end := before + n
	for i, g := range st.gaps {
		if before < g.from || end > g.to {
			continue
		}
		// Split the gap around the batch.
		var rest []span
		if g.from < before {
			rest = append(rest, span{g.from, before})
		}
		if end < g.to {
			rest = append(rest, span{end, g.to})
		}
		st.gaps = append(st.gaps[:i], append(rest, st.gaps[i+1:]...)...)
		return streamLate, -int64(n)
	}
	return streamDuplicate, 0
}

// received is what snapshots keep of each stream: how far it got. Gaps are
// not kept; a late batch after a restore is refused as a duplicate and its
// transitions stay counted lost.
func (sb *streamBook) received() map[streamKey]uint64 {
	out := make(map[streamKey]uint64, len(sb.streams))
	for k, st := range sb.streams {
		out[k] = st.next
	}
	return out
}

// restore sets a stream's received count from a snapshot.
func (sb *streamBook) restore(k streamKey, received uint64) {
	sb.streams[k] = &streamState{next: received}
}
