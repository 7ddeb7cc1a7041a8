package actors

import (
	"fmt"

	"github.com/qfleet/qfleet/envs"
)

// frameStore keeps the observations of an env whose spec promises binary
// values (MinAtar's 0/1 grids: packed 8 cells to a byte) or uint8 values
// (pixels: a byte a cell) for the replay table, and each distinct recent
// observation once:
// transition t's next observation s_{t+n} is transition t+n's observation,
// so storing both per row would keep every frame twice. Rows hold frame ids
// instead. A MinAtar Breakout frame (400 cells) takes 50 bytes instead of
// the 1,600 of a float32 row, and about one frame is stored per transition
// instead of two: 100k transitions take ~10 MB instead of 320 MB.
//
// Frames live in a ring of 2·capacity + recentFrames slots. Every inserted
// transition adds at most two frames, so a frame referenced by any row still
// in the table (at most capacity transitions old) is never overwritten; a
// deduplicated frame is at most recentFrames frames older than that.
type frameStore struct {
	dtype           envs.ObsDType // Binary or Uint8
	cells, bytesPer int
	data            []byte // ring of frames, bytesPer each
	slots           uint64
	inserted        uint64 // frames ever stored; a frame's id is its insert index

	// recent maps the packed bytes of the last recentFrames frames to their
	// ids, for deduplication; order is the FIFO of their keys.
	recent map[string]uint64
	order  []string
	head   int
	packed []byte // scratch
}

// recentFrames is how many of the newest frames are candidates for
// deduplication: enough for several runners' interleaved batches.
const recentFrames = 4096

func newFrameStore(dtype envs.ObsDType, cells, capacity int) *frameStore {
	return newFrameStoreSlots(dtype, cells, uint64(2*capacity+recentFrames))
}

// newFrameStoreSlots is a frame store whose ring holds slots frames.
func newFrameStoreSlots(dtype envs.ObsDType, cells int, slots uint64) *frameStore {
	bytesPer := frameBytes(dtype, cells)
	return &frameStore{
		dtype: dtype, cells: cells, bytesPer: bytesPer, data: make([]byte, int(slots)*bytesPer), slots: slots,
		recent: make(map[string]uint64, recentFrames), order: make([]string, recentFrames), packed: make([]byte, bytesPer),
	}
}

// frameBytes is the size of one stored frame of cells values of dtype.
func frameBytes(dtype envs.ObsDType, cells int) int {
	if dtype == envs.Binary {
		return (cells + 7) / 8
	}
	return cells
}

// check reports an observation with a value its dtype does not promise:
// storing it would silently change it.
func (f *frameStore) check(obs []float32) error {
	if f.dtype.Holds(obs) {
		return nil
	}
	for i, x := range obs {
		if !f.dtype.Holds(obs[i : i+1]) {
			return fmt.Errorf("observation value %v at index %d: this table stores %s observations", x, i, f.dtype)
		}
	}
	return nil
}

// pack writes obs (0/1 values) as bits into dst.
func pack(dst []byte, obs []float32) {
	clear(dst)
	for i, x := range obs {
		if x != 0 {
			dst[i>>3] |= 1 << (i & 7)
		}
	}
}

// packFrame writes obs into dst in the store's form.
func (f *frameStore) packFrame(dst []byte, obs []float32) {
	if f.dtype == envs.Binary {
		pack(dst, obs)
		return
	}
	for i, x := range obs {
		dst[i] = byte(x)
	}
}

// intern stores obs (unless an identical recent frame exists) and returns
// its frame id.
func (f *frameStore) intern(obs []float32) uint64 {
	f.packFrame(f.packed, obs)
	return f.internPacked()
}

// internPacked is intern of the frame packed into f.packed.
func (f *frameStore) internPacked() uint64 {
	if id, ok := f.recent[string(f.packed)]; ok {
		return id
	}
	return f.add(f.packed)
}

// add stores one packed frame and makes it a deduplication candidate.
func (f *frameStore) add(packed []byte) uint64 {
	id := f.inserted
	f.inserted++
	copy(f.frame(id), packed)
	key := string(packed)
	if old := f.order[f.head]; old != "" {
		delete(f.recent, old)
	}
	f.order[f.head] = key
	f.head = (f.head + 1) % recentFrames
	f.recent[key] = id
	return id
}

// floor is the oldest id a frame interned from now on can get: a new
// frame's, or one of the recentFrames before (a deduplication hit). A row's
// frames are all at or above the floor when it was stored.
func (f *frameStore) floor() uint64 { return f.inserted - min(f.inserted, recentFrames) }

// frame is the packed storage of frame id.
func (f *frameStore) frame(id uint64) []byte {
	o := int(id%f.slots) * f.bytesPer
	return f.data[o : o+f.bytesPer]
}

// unpack writes frame id as floats into dst (cells long).
func (f *frameStore) unpack(dst []float32, id uint64) { unpackFrame(f.dtype, dst, f.frame(id)) }

// unpackFrame is packFrame's inverse for a frame of dtype.
func unpackFrame(dtype envs.ObsDType, dst []float32, src []byte) {
	if dtype == envs.Binary {
		unpackBits(dst, src)
		return
	}
	for i := range dst {
		dst[i] = float32(src[i])
	}
}

// unpackBits is pack's inverse: bit i of src (bit i&7 of byte i/8) as a
// 0/1 float into dst[i], for len(dst) values.
func unpackBits(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(src[i>>3] >> (i & 7) & 1)
	}
}
