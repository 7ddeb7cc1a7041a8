package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/qfleet/qfleet/messages"
)

// scratch is per-call working memory, pooled so that steady-state packing
// allocates little beyond its result.
type scratch struct {
	slots   []int32 // open-addressing table of frame+1 (0 = empty)
	rows    []int32 // frame -> source row: observation i is row i, next observation i is row c+i
	first   []int32 // frame -> first transition whose observation it is, or -1
	obsIdx  []int32
	nextIdx []int32
	pairs   []int32 // palette entry -> first transition with that (reward, discount)
	pairIdx []byte  // transition -> palette entry
	raw     []byte
	low     []byte // low bytes of the row values: the end of the layout
	zwhole  []byte
	zframe  []byte
	zsplit  []byte
	floats  []float32
	st      stackScratch // the stacked-frames codec's
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n, n+n/4)
}

// PackExperience encodes b for the wire. It copies runner, seq, obs_size,
// count, weights_version and reply_to, and rejects batches whose lengths
// disagree with count and obs_size (or that exceed the wire limits).
func PackExperience(b *messages.ExperienceBatch, o Options) (*messages.PackedExperience, error) {
	if b == nil {
		return nil, errors.New("pack experience: nil batch")
	}
	c, d := int(b.GetCount()), int(b.GetObsSize())
	if err := checkBatch(b, c, d); err != nil {
		return nil, err
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)

	// Stacked pixel frames go as frames (when they are bytes); anything
	// else, stacked or not, as float rows.
	var raw []byte
	var codec uint32
	stacked := false
	if canStack(b, o) {
		raw, stacked = s.packStacked(b)
		codec = codecStacked
	}
	if !stacked {
		raw, codec = s.layout(b, o)
	}
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("pack experience from %q: payload of %d bytes exceeds %d", b.GetRunner(), len(raw), MaxBytes)
	}
	payload := raw
	if o.Zstd {
		codec |= codecZstd
		var err error
		if stacked {
			payload, err = s.compressStacked(raw)
		} else {
			payload, err = s.compress(raw, len(s.low))
		}
		if err != nil {
			return nil, err
		}
	}
	payload = bytes.Clone(payload)
	return &messages.PackedExperience{
		Runner: b.GetRunner(), Seq: b.GetSeq(), ObsSize: uint32(d), Count: uint32(c),
		Codec: codec, Payload: payload, WeightsVersion: b.GetWeightsVersion(), ReplyTo: b.GetReplyTo(),
		SentBefore: b.GetSentBefore(), RunnerIncarnation: b.GetRunnerIncarnation(), FrameStack: b.GetFrameStack(),
	}, nil
}

// checkBatch refuses a batch of c transitions of d values whose columns
// disagree with those counts, or that exceeds the wire limits.
func checkBatch(b *messages.ExperienceBatch, c, d int) error {
	switch {
	case uint64(c)*uint64(max(d, 1)) > MaxFloats:
		return fmt.Errorf("pack experience from %q: %d transitions of %d values exceed %d", b.GetRunner(), c, d, MaxFloats)
	case len(b.GetObservations()) != c*d || len(b.GetNextObservations()) != c*d:
		return fmt.Errorf("pack experience from %q: %d/%d observation values for %d transitions of %d", b.GetRunner(), len(b.GetObservations()), len(b.GetNextObservations()), c, d)
	case len(b.GetActions()) != c || len(b.GetRewards()) != c || len(b.GetDiscounts()) != c:
		return fmt.Errorf("pack experience from %q: actions/rewards/discounts lengths %d/%d/%d, count %d", b.GetRunner(), len(b.GetActions()), len(b.GetRewards()), len(b.GetDiscounts()), c)
	case len(b.GetPriorities()) != 0 && len(b.GetPriorities()) != c:
		return fmt.Errorf("pack experience from %q: %d priorities for %d transitions", b.GetRunner(), len(b.GetPriorities()), c)
	}
	return nil
}

// columns are what every layout's header says of b's columns: the flags
// (priorities present, a reward/discount palette), the palette's size
// (s.palette) and the width of the actions in bits.
func (s *scratch) columns(b *messages.ExperienceBatch) (flags byte, pairs, width int) {
	if c := int(b.GetCount()); len(b.GetPriorities()) == c && c > 0 {
		flags |= flagPriorities
	}
	pairs = s.palette(b.GetRewards(), b.GetDiscounts())
	if pairs > 0 {
		flags |= flagPalette
	}
	var maxAction uint32
	for _, a := range b.GetActions() {
		maxAction = max(maxAction, a)
	}
	return flags, pairs, bits.Len32(maxAction)
}

// layout writes the uncompressed payload of b (the layout in the package
// doc, section by section) into s.raw, and returns it with its codec flags
// but CODEC_ZSTD.
func (s *scratch) layout(b *messages.ExperienceBatch, o Options) ([]byte, uint32) {
	c := int(b.GetCount())
	var codec uint32
	flags, pairs, width := s.columns(b)

	raw := s.raw[:0]
	if o.Frames {
		codec |= codecFrames
		raw = s.appendFrames(raw, b, flags, width, o.Float16)
	} else {
		raw = append(raw, layoutVersion, flags, byte(width))
		s.rows = grow(s.rows, 2*c)
		for i := range s.rows {
			s.rows[i] = int32(i)
		}
		raw = s.appendRows(raw, b, o.Float16)
	}
	if o.Float16 {
		codec |= codecFloat16
	}
	raw = appendActions(raw, b.GetActions(), width)
	raw = s.appendRewards(raw, b, pairs)
	if flags&flagPriorities != 0 {
		raw = appendFloats(raw, b.GetPriorities())
	}
	raw = append(raw, s.low...)
	s.raw = raw
	return raw, codec
}

// appendFrames appends the header, the high row planes and the observation
// and next-observation codes of the FRAMES layout: each distinct row once.
func (s *scratch) appendFrames(raw []byte, b *messages.ExperienceBatch, flags byte, width int, half bool) []byte {
	c := int(b.GetCount())
	nObs, stride := s.dedup(b)
	sequential := true
	for i, f := range s.obsIdx {
		if int(f) != i {
			sequential = false
			break
		}
	}
	if sequential {
		flags |= flagSequential
	}
	raw = append(raw, layoutVersion, flags, byte(width))
	raw = binary.AppendUvarint(raw, uint64(len(s.rows)))
	raw = binary.AppendUvarint(raw, uint64(stride))
	raw = s.appendRows(raw, b, half)
	if !sequential {
		obsNew := int32(0)
		for _, f := range s.obsIdx {
			if f == obsNew {
				raw = append(raw, 0)
				obsNew++
			} else {
				raw = binary.AppendUvarint(raw, uint64(f)+1)
			}
		}
	}
	nextNew := int32(nObs)
	for i, f := range s.nextIdx {
		switch {
		case i+stride < c && s.obsIdx[i+stride] == f:
			raw = append(raw, 0)
		case f == nextNew:
			raw = append(raw, 1)
			nextNew++
		case i > 0 && s.nextIdx[i-1] == f:
			raw = append(raw, 2)
		default:
			raw = binary.AppendUvarint(raw, uint64(f)+3)
		}
	}
	return raw
}

// appendRewards appends the rewards and discounts: as a palette of the
// pairs entries s.palette found, or (pairs 0) as two float columns.
func (s *scratch) appendRewards(raw []byte, b *messages.ExperienceBatch, pairs int) []byte {
	if pairs == 0 {
		raw = appendFloats(raw, b.GetRewards())
		return appendFloats(raw, b.GetDiscounts())
	}
	raw = binary.AppendUvarint(raw, uint64(pairs))
	for _, k := range s.pairs[:pairs] {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(b.Rewards[k]))
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(b.Discounts[k]))
	}
	return append(raw, s.pairIdx...)
}

// compress zstd-compresses the layout raw, whose last tail bytes are the
// low row bytes. With a tail it compresses only the part before it and
// leaves the low bytes raw (mode split): mantissa noise does not compress,
// and zstd's literal coder shares one table per block, so the noise would
// spoil the rest. One zstd pass per batch: packing runs on the runner's
// goroutine and is what limits a runner→replay stream.
func (s *scratch) compress(raw []byte, tail int) ([]byte, error) {
	if tail == 0 {
		whole, err := zstdPack(append(s.zwhole[:0], zstdWhole), raw)
		if err != nil {
			return nil, err
		}
		s.zwhole = whole
		return whole, nil
	}
	frame, err := zstdPack(s.zframe[:0], raw[:len(raw)-tail])
	if err != nil {
		return nil, err
	}
	s.zframe = frame
	split := append(s.zsplit[:0], zstdSplit)
	split = binary.AppendUvarint(split, uint64(len(frame)))
	split = append(append(split, frame...), raw[len(raw)-tail:]...)
	s.zsplit = split
	return split, nil
}

// sourceRow is row r of the batch: observation r for r < c, else next
// observation r−c.
func sourceRow(b *messages.ExperienceBatch, r, c, d int) []float32 {
	if r < c {
		return b.Observations[r*d : (r+1)*d]
	}
	r -= c
	return b.NextObservations[r*d : (r+1)*d]
}

func rowHash(row []float32) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range row {
		h = (h ^ uint64(math.Float32bits(v))) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h
}

func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// dedup fills s.rows (distinct rows, observations first, each in order of
// first use), s.obsIdx and s.nextIdx, and returns the number of frames used
// by observations and the most common stride n with next[i] == obs[i+n].
func (s *scratch) dedup(b *messages.ExperienceBatch) (nObs, stride int) {
	c, d := int(b.GetCount()), int(b.GetObsSize())
	size := 16
	for size < 4*c {
		size <<= 1
	}
	s.slots = grow(s.slots, size)
	clear(s.slots)
	mask := uint64(size - 1)
	s.rows = s.rows[:0]
	s.obsIdx = grow(s.obsIdx, c)
	s.nextIdx = grow(s.nextIdx, c)
	for r := 0; r < 2*c; r++ {
		row := sourceRow(b, r, c, d)
		h := rowHash(row) & mask
		var f int32
		for {
			slot := s.slots[h]
			if slot == 0 {
				f = int32(len(s.rows))
				s.rows = append(s.rows, int32(r))
				s.slots[h] = f + 1
				break
			}
			if sameBits(sourceRow(b, int(s.rows[slot-1]), c, d), row) {
				f = slot - 1
				break
			}
			h = (h + 1) & mask
		}
		if r < c {
			s.obsIdx[r] = f
		} else {
			s.nextIdx[r-c] = f
		}
		if r == c-1 {
			nObs = len(s.rows)
		}
	}
	return nObs, s.stride(nObs)
}

// stride is the most common distance from a transition to the one whose
// observation is its next observation (1 when there is none).
func (s *scratch) stride(nObs int) int {
	c := len(s.obsIdx)
	s.first = grow(s.first, nObs)
	for i := range s.first {
		s.first[i] = -1
	}
	for i := c - 1; i >= 0; i-- {
		s.first[s.obsIdx[i]] = int32(i)
	}
	var hist [maxStride + 1]int
	for i, f := range s.nextIdx {
		if int(f) < nObs {
			if k := int(s.first[f]) - i; k >= 1 && k <= maxStride {
				hist[k]++
			}
		}
	}
	stride := 1
	for k := 2; k <= maxStride; k++ {
		if hist[k] > hist[stride] {
			stride = k
		}
	}
	return stride
}

// appendRows appends the high byte planes of the rows s.rows of b in the
// transposed, delta-coded layout, and leaves the low planes in s.low.
func (s *scratch) appendRows(dst []byte, b *messages.ExperienceBatch, half bool) []byte {
	c, d := int(b.GetCount()), int(b.GetObsSize())
	R := len(s.rows)
	n := R * d
	base := len(dst)
	if half {
		dst = slices.Grow(dst, n)[:base+n]
		s.low = grow(s.low, n)
		hi, lo := dst[base:base+n], s.low
		for j := 0; j < d; j++ {
			var prev uint16
			for r, src := range s.rows {
				v := ordered16(f32ToF16(sourceRow(b, int(src), c, d)[j]))
				x := zigzag16(v - prev)
				prev = v
				hi[j*R+r], lo[j*R+r] = byte(x>>8), byte(x)
			}
		}
		return dst
	}
	dst = slices.Grow(dst, 2*n)[:base+2*n]
	s.low = grow(s.low, 2*n)
	p0, p1, p2, p3 := dst[base:base+n], dst[base+n:base+2*n], s.low[:n], s.low[n:]
	for j := 0; j < d; j++ {
		var prev uint32
		for r, src := range s.rows {
			v := ordered32(math.Float32bits(sourceRow(b, int(src), c, d)[j]))
			x := zigzag32(v - prev)
			prev = v
			k := j*R + r
			p0[k], p1[k], p2[k], p3[k] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
		}
	}
	return dst
}

// palette fills s.pairs and s.pairIdx with the distinct (reward, discount)
// bit pairs in order of first use, and returns their number, or 0 when a
// palette would not be smaller than the plain columns (or has more than
// maxPalette entries).
func (s *scratch) palette(rewards, discounts []float32) int {
	c := len(rewards)
	s.pairs = s.pairs[:0]
	s.pairIdx = grow(s.pairIdx, c)
next:
	for i := range c {
		r, d := math.Float32bits(rewards[i]), math.Float32bits(discounts[i])
		// Recent entries first: runs of one pair are the common case.
		for e := len(s.pairs) - 1; e >= 0; e-- {
			k := s.pairs[e]
			if math.Float32bits(rewards[k]) == r && math.Float32bits(discounts[k]) == d {
				s.pairIdx[i] = byte(e)
				continue next
			}
		}
		if len(s.pairs) == maxPalette || 8*(len(s.pairs)+1)+c >= 8*c {
			return 0
		}
		s.pairIdx[i] = byte(len(s.pairs))
		s.pairs = append(s.pairs, int32(i))
	}
	return len(s.pairs)
}

func appendActions(dst []byte, actions []uint32, width int) []byte {
	var acc uint64
	var nb int
	for _, a := range actions {
		acc |= uint64(a) << nb
		nb += width
		for nb >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			nb -= 8
		}
	}
	if nb > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

func appendFloats(dst []byte, v []float32) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}
