package actors

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors/sumtree"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
)

// SnapshotFile is the name of the newest replay snapshot in the checkpoint
// directory; the one before it is kept as replay.snap.1.
const SnapshotFile = "replay.snap"

// SnapshotsKept is how many replay snapshots a directory keeps.
const SnapshotsKept = 2

var snapshotMagic = [4]byte{'Q', 'F', 'R', '1'}

// snapshotWrites serialises snapshot files per process: a clean shutdown
// writes one while a periodic one may still be on its way to disk.
var snapshotWrites sync.Mutex

// tableCapture is a copy of a table's rows, oldest first, taken by the
// replay actor between two messages. Copying typed slices is a few memcpys
// (CartPole, 100k transitions: about 4 MB); encoding, compression of the
// file and fsync happen on another goroutine, so inserts and samples are held
// up only for the copy, never for the write.
type tableCapture struct {
	obsSize                     int
	inserted                    uint64
	obs, nextObs                []float32
	actions                     []uint32
	rewards, discounts          []float32
	keys                        []uint64
	priorities                  []float64 // nil for a uniform table
	packedObs, packedNext       []byte    // a packed table's frames per row, instead of obs/nextObs
	packedBytes                 int
	packedDType                 envs.ObsDType
	frameStack                  int               // a stacked table: frames once, 2k refs a row
	frames, frameRefs           []byte            // (see stackedsnapshot.go)
	frameIndex                  map[uint64]uint32 // frame id → its index in frames
	limiterInserted, limiterSmp uint64
	streams                     map[streamKey]uint64
	lost, rejected              uint64
	rng                         []byte
}

// capture copies the table's rows in ring order, oldest first.
func (t *Table) capture() *tableCapture {
	c := &tableCapture{obsSize: t.obsSize, inserted: t.inserted}
	d, n := t.obsSize, t.size
	switch {
	case t.stack > 1:
		c.packedDType = t.frames.dtype
	case t.frames != nil:
		c.packedBytes, c.packedDType = frameBytes(t.frames.dtype, d), t.frames.dtype
		c.packedObs, c.packedNext = make([]byte, 0, n*c.packedBytes), make([]byte, 0, n*c.packedBytes)
	default:
		c.obs, c.nextObs = make([]float32, 0, n*d), make([]float32, 0, n*d)
	}
	c.actions, c.rewards, c.discounts, c.keys = make([]uint32, 0, n), make([]float32, 0, n), make([]float32, 0, n), make([]uint64, 0, n)
	// Rows [tail, tail+size) around the ring, oldest first.
	tail := t.tail()
	for _, span := range [][2]int{{tail, min(tail+n, t.capacity)}, {0, max(0, tail+n-t.capacity)}} {
		lo, hi := span[0], span[1]
		switch {
		case t.stack > 1:
			c.captureStacked(t, lo, hi)
		case t.frames != nil:
			for r := lo; r < hi; r++ {
				c.packedObs = append(c.packedObs, t.frames.frame(t.obsFrame[r])...)
				c.packedNext = append(c.packedNext, t.frames.frame(t.nextFrame[r])...)
			}
		default:
			c.obs = append(c.obs, t.obs[lo*d:hi*d]...)
			c.nextObs = append(c.nextObs, t.nextObs[lo*d:hi*d]...)
		}
		c.actions = append(c.actions, t.actions[lo:hi]...)
		c.rewards = append(c.rewards, t.rewards[lo:hi]...)
		c.discounts = append(c.discounts, t.discounts[lo:hi]...)
		c.keys = append(c.keys, t.keys[lo:hi]...)
		if t.prio != nil {
			for r := lo; r < hi; r++ {
				c.priorities = append(c.priorities, t.prio.Get(r))
			}
		}
	}
	return c
}

// encode turns a capture into the snapshot message (little-endian arrays).
func (c *tableCapture) encode(env string) *messages.ReplaySnapshot {
	s := &messages.ReplaySnapshot{
		Env: env, ObsSize: uint32(c.obsSize), Size: uint32(len(c.actions)), Inserted: c.inserted,
		Observations: appendF32(nil, c.obs), NextObservations: appendF32(nil, c.nextObs),
		PackedObservations: c.packedObs, PackedNextObservations: c.packedNext,
		PackedDtype: packedDTypeName(c), FrameStack: uint32(c.frameStack), Frames: c.frames, FrameRefs: c.frameRefs,
		Rewards: appendF32(nil, c.rewards), Discounts: appendF32(nil, c.discounts),
		LimiterInserted: c.limiterInserted, LimiterSampled: c.limiterSmp,
		Lost: c.lost, Rejected: c.rejected, RngState: c.rng, UnixMillis: time.Now().UnixMilli(),
	}
	s.Actions = make([]byte, 0, 4*len(c.actions))
	for _, a := range c.actions {
		s.Actions = binary.LittleEndian.AppendUint32(s.Actions, a)
	}
	s.Keys = make([]byte, 0, 8*len(c.keys))
	for _, k := range c.keys {
		s.Keys = binary.LittleEndian.AppendUint64(s.Keys, k)
	}
	if c.priorities != nil {
		s.Priorities = make([]byte, 0, 8*len(c.priorities))
		for _, p := range c.priorities {
			s.Priorities = binary.LittleEndian.AppendUint64(s.Priorities, math.Float64bits(p))
		}
	}
	for k, got := range c.streams {
		s.Streams = append(s.Streams, &messages.ReplayStream{Runner: k.runner, Incarnation: k.incarnation, Received: got})
	}
	return s
}

func appendF32(dst []byte, src []float32) []byte {
	if dst == nil {
		dst = make([]byte, 0, 4*len(src))
	}
	for _, x := range src {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

func readF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// WriteSnapshot writes a replay snapshot to dir atomically with a checksum,
// keeping the previous one (see writeDurable).
func WriteSnapshot(dir string, s *messages.ReplaySnapshot) error {
	payload, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("replay snapshot: encode: %w", err)
	}
	snapshotWrites.Lock()
	defer snapshotWrites.Unlock()
	if err := writeDurable(dir, SnapshotFile, snapshotMagic, payload, SnapshotsKept); err != nil {
		return fmt.Errorf("replay snapshot: %w", err)
	}
	return nil
}

// ReadLatestSnapshot loads the newest replay snapshot in dir that passes its
// checksum, falling back to the one before; skipped lists the corrupt ones.
// The error wraps os.ErrNotExist when there is none.
func ReadLatestSnapshot(dir string) (s *messages.ReplaySnapshot, skipped []error, err error) {
	s, _, skipped, err = readLatestSnapshot(dir)
	return s, skipped, err
}

// readLatestSnapshot is ReadLatestSnapshot that also names the file it read.
func readLatestSnapshot(dir string) (s *messages.ReplaySnapshot, path string, skipped []error, err error) {
	skipped, err = readLatestDurable(dir, SnapshotFile, snapshotMagic, SnapshotsKept, func(p string, payload []byte) error {
		s = &messages.ReplaySnapshot{}
		if err := proto.Unmarshal(payload, s); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorruptCheckpoint, p, err)
		}
		path = p
		return nil
	})
	if err != nil {
		return nil, "", skipped, fmt.Errorf("replay snapshot: %w", err)
	}
	return s, path, skipped, nil
}

// restore loads a snapshot's rows into an empty table: the newest ones when
// the table is smaller than the snapshot. It checks every length first and
// changes nothing on error.
func (t *Table) restore(s *messages.ReplaySnapshot) error {
	if err := checkSnapshot(s, t.obsSize); err != nil {
		return err
	}
	n, d := int(s.GetSize()), int(s.GetObsSize())
	dtype, bytesPer, _ := snapshotFrames(s) // checked by checkSnapshot
	packed := len(s.GetPackedObservations()) > 0 || len(s.GetPackedNextObservations()) > 0
	stacked := s.GetFrameStack() > 1
	if stacked {
		if err := t.checkStackedFrames(s, dtype); err != nil {
			return err
		}
	}
	skip := max(0, n-t.capacity)
	var obs, nextObs []float32
	if !packed && !stacked {
		// Float rows into a packed table: checkColumns takes them only if
		// every value is 0 or 1.
		obs, nextObs = readF32(s.GetObservations()), readF32(s.GetNextObservations())
	}
	rewards, discounts := readF32(s.GetRewards()), readF32(s.GetDiscounts())
	actions := make([]uint32, n)
	for i := range actions {
		actions[i] = binary.LittleEndian.Uint32(s.GetActions()[4*i:])
	}
	// A snapshot is a file anyone can write, and its checksum only tells
	// that it is whole: its rows get the checks a batch gets (a NaN reward
	// or an action the env does not have poisons every sample it is drawn
	// into), its keys must be the consecutive ones the table gave its rows
	// (priority updates find a row by its key), and its priorities must be
	// ones the sum tree takes (it panics on others, and samples nothing
	// from zeros).
	if err := t.checkColumns(actions, obs, nextObs, rewards, discounts, nil); err != nil {
		return fmt.Errorf("replay snapshot: %w", err)
	}
	if packed && t.frames != nil && !dtypeFits(dtype, t.frames.dtype) {
		// Frames into a table of a narrower dtype (uint8 into binary):
		// every row is checked before any is stored.
		row := make([]float32, d)
		for _, b := range [][]byte{s.GetPackedObservations(), s.GetPackedNextObservations()} {
			for i := range n {
				unpackFrame(dtype, row, b[i*bytesPer:(i+1)*bytesPer])
				if err := t.frames.check(row); err != nil {
					return fmt.Errorf("replay snapshot: row %d: %w", i, err)
				}
			}
		}
	}
	first := s.GetInserted() - uint64(n)
	for i := range n {
		if k := binary.LittleEndian.Uint64(s.GetKeys()[8*i:]); k != first+uint64(i) {
			return fmt.Errorf("replay snapshot: row %d has key %d, want %d (rows hold the last %d of %d keys, in order)", i, k, first+uint64(i), n, s.GetInserted())
		}
	}
	if t.prio != nil && len(s.GetPriorities()) > 0 {
		for i := range n {
			if p := math.Float64frombits(binary.LittleEndian.Uint64(s.GetPriorities()[8*i:])); !(p >= sumtree.MinPriority && p <= sumtree.MaxPriority) {
				return fmt.Errorf("replay snapshot: row %d has priority %v, outside [%g, %g]", i, p, sumtree.MinPriority, sumtree.MaxPriority)
			}
		}
	}
	rowObs, rowNext := make([]float32, d), make([]float32, d)
	for i := skip; i < n; i++ {
		r := i - skip
		if stacked {
			t.restoreStackedRow(r, s, i, dtype)
		} else if packed {
			unpackFrame(dtype, rowObs, s.GetPackedObservations()[i*bytesPer:(i+1)*bytesPer])
			unpackFrame(dtype, rowNext, s.GetPackedNextObservations()[i*bytesPer:(i+1)*bytesPer])
			t.setRow(r, rowObs, rowNext)
		} else {
			t.setRow(r, obs[i*d:(i+1)*d], nextObs[i*d:(i+1)*d])
		}
		t.actions[r] = actions[i]
		t.rewards[r] = rewards[i]
		t.discounts[r] = discounts[i]
		t.keys[r] = binary.LittleEndian.Uint64(s.GetKeys()[8*i:])
		if t.prio != nil {
			p := 1.0 // a snapshot of a uniform table: every row alike
			if len(s.GetPriorities()) > 0 {
				p = math.Float64frombits(binary.LittleEndian.Uint64(s.GetPriorities()[8*i:]))
			}
			t.prio.Set(r, p)
		}
	}
	t.size = n - skip
	t.next = t.size % t.capacity
	t.inserted = s.GetInserted()
	t.keyBase = t.inserted - uint64(t.size) // the oldest row's key: rows stay consecutive keys
	return nil
}

// dtypeFits says whether every value of dtype from is one of dtype to.
func dtypeFits(from, to envs.ObsDType) bool {
	return from == to || to == envs.Float32 || (from == envs.Binary && to == envs.Uint8)
}

// packedDTypeName is the snapshot's packed_dtype: empty for float rows.
func packedDTypeName(c *tableCapture) string {
	if c.packedObs == nil && c.packedNext == nil && c.frameStack == 0 {
		return ""
	}
	return c.packedDType.String()
}

// snapshotFrames is how a snapshot's packed observations are stored: their
// dtype (binary when it says nothing, as snapshots did before uint8 frames)
// and bytes per observation.
func snapshotFrames(s *messages.ReplaySnapshot) (envs.ObsDType, int, error) {
	dtype := envs.Binary
	if name := s.GetPackedDtype(); name != "" {
		d, err := envs.ParseObsDType(name)
		if err != nil || d == envs.Float32 {
			return 0, 0, fmt.Errorf("replay snapshot: packed observations of dtype %q: want binary or uint8", name)
		}
		dtype = d
	}
	return dtype, frameBytes(dtype, int(s.GetObsSize())), nil
}

// checkSnapshot checks that a snapshot's arrays have the lengths its size
// and observation size say, and that its observations have obsSize values:
// what a table needs to take its rows (the table's capacity is no limit, it
// keeps the newest).
func checkSnapshot(s *messages.ReplaySnapshot, obsSize int) error {
	n, d := int(s.GetSize()), int(s.GetObsSize())
	dtype, bytesPer, err := snapshotFrames(s)
	if err != nil {
		return err
	}
	packed := len(s.GetPackedObservations()) > 0 || len(s.GetPackedNextObservations()) > 0
	stacked := s.GetFrameStack() > 1
	if stacked && d == obsSize {
		if err := checkStackedSnapshot(s, frameBytes(dtype, d/int(s.GetFrameStack()))); err != nil {
			return err
		}
	}
	switch {
	case d != obsSize:
		return fmt.Errorf("replay snapshot holds observations of %d values, the table %d", d, obsSize)
	case stacked:
	case packed && (len(s.GetPackedObservations()) != n*bytesPer || len(s.GetPackedNextObservations()) != n*bytesPer):
		return fmt.Errorf("replay snapshot of %d transitions has packed observations of the wrong length", n)
	case !packed && !stacked && (len(s.GetObservations()) != 4*n*d || len(s.GetNextObservations()) != 4*n*d):
		return fmt.Errorf("replay snapshot of %d transitions has observation arrays of the wrong length", n)
	case len(s.GetActions()) != 4*n || len(s.GetRewards()) != 4*n || len(s.GetDiscounts()) != 4*n || len(s.GetKeys()) != 8*n:
		return fmt.Errorf("replay snapshot of %d transitions has arrays of the wrong length", n)
	case len(s.GetPriorities()) != 0 && len(s.GetPriorities()) != 8*n:
		return fmt.Errorf("replay snapshot of %d transitions has %d bytes of priorities", n, len(s.GetPriorities()))
	case uint64(n) > s.GetInserted():
		return fmt.Errorf("replay snapshot holds %d transitions but says %d were ever inserted", n, s.GetInserted())
	}
	return nil
}
