package actors

// Wire codec: ExperienceBatch ⇄ PackedExperience and Weights ⇄ WeightsChunk,
// for the links between hosts, where bandwidth is the scarce thing.
//
// Experience payload (PackedExperience.payload). Integers are little endian,
// "uvarint" is encoding/binary's; c = count, d = obs_size. The layout:
//
//	header     byte layout version (1)
//	           byte flags: bit 0 priorities present; bit 1 observations sequential
//	                (FRAMES only: transition i's observation is frame i); bit 2
//	                reward/discount palette
//	           byte action width w (0..32): bits.Len of the largest action
//	           FRAMES only: uvarint F (distinct rows), uvarint n (stride, 1..64)
//	rows, high R rows of d values: R = F frames with FRAMES (each distinct row,
//	           by float32 bits, once), else R = 2c (the c observations, then the
//	           c next observations). A value is its float32 bits, or with FLOAT16
//	           its IEEE half-float bits (rounded to nearest even). Column by
//	           column, each value is coded as the difference from the value above
//	           it (previous row; row 0 from 0), taken on the bits mapped to
//	           integers in the floats' order (wireOrdered32) and zigzagged,
//	           then split into byte planes, most significant first (value at
//	           row r, column j at j·R + r in each plane). This section holds the
//	           high half of the planes (1 of 2 for half floats, 2 of 4 for float32).
//	obs codes  FRAMES without the sequential flag: c uvarints, 0 = the next
//	           frame no earlier observation used, k+1 = frame k.
//	next codes FRAMES only: c uvarints for transition i's next observation:
//	           0 = the observation frame of transition i+n (the n-step pattern),
//	           1 = the next frame not used before (frames after the observation
//	               frames, in order of first use: batch tails, terminal rows),
//	           2 = transition i−1's next frame (an episode-end burst),
//	           k+3 = frame k. Every frame must be used.
//	actions    c values of w bits, packed LSB first: ⌈c·w/8⌉ bytes
//	rewards,   palette flag: uvarint P (1..min(c,256)), P (reward, discount)
//	discounts      float32 pairs, c bytes of pair index; else c float32 rewards,
//	               c float32 discounts
//	priorities c float32 if flag bit 0
//	rows, low  the low half of the row planes: mantissa noise, last so that
//	           zstd can leave it out
//
// CODEC_ZSTD: the payload is a mode byte, then for mode 0 the whole layout as
// one zstd frame, for mode 1 a uvarint m, a zstd frame of m bytes holding the
// layout up to the low row planes, and those planes raw (zstd has one literal
// entropy table per block, and the noise spoils it for the rest). The packer
// tries both and keeps the smaller. Frames are single-segment, carry their
// content size and no checksum, and leave out the 4-byte magic number (as
// zstd's ZSTD_f_zstd1_magicless does).
//
// A typical n-step batch thus has all-zero codes, a one-entry palette and one
// frame per transition: with FRAMES+FLOAT16+ZSTD a CartPole transition takes
// about 9 bytes on the wire, proto fields included.
//
// Weights payload: chunk i carries parameters [i·S, min((i+1)·S, n)) with
// S = max(1, chunkBytes/4), so each chunk decodes on its own as it arrives
// (a runner does not wait for the last chunk to start decoding, and the
// broadcaster's first chunk leaves before the last is packed): the segment's
// float32 bit patterns, XORed with the base version's (CODEC_DELTA), split
// into 4 byte planes most significant first; with CODEC_ZSTD one magicless
// zstd frame of that. The base of a delta has the chunk's term and version
// base_version.
//
// Decoding never trusts the input: every count and length is checked before
// anything is allocated, zstd output is bounded by what count and obs_size
// can legitimately need (and MaxWireBytes), and errors name the problem.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/qfleet/qfleet/messages"
)

// WireOptions choose the experience codec. Frames and zstd are lossless;
// Float16 is lossy (obs rounded to half precision: ~3 significant digits).
type WireOptions struct{ Frames, Float16, Zstd bool }

// DefaultWireOptions is the codec for experience between hosts.
var DefaultWireOptions = WireOptions{Frames: true, Float16: true, Zstd: true}

const (
	// MaxWireBytes bounds every payload, compressed or decoded.
	MaxWireBytes = 64 << 20
	// MaxWireFloats bounds count·obs_size of an experience batch and
	// num_params of weights.
	MaxWireFloats = 1 << 24
	// MaxWeightsChunks bounds the chunks of one weights version.
	MaxWeightsChunks = 1 << 16

	wireLayout         = 1
	wireMaxStride      = 64
	wireFlagPriorities = 1 << 0
	wireFlagSequential = 1 << 1
	wireFlagPalette    = 1 << 2
	wireMaxPalette     = 256

	wireCodecFrames  = uint32(messages.Codec_CODEC_FRAMES)
	wireCodecFloat16 = uint32(messages.Codec_CODEC_FLOAT16)
	wireCodecZstd    = uint32(messages.Codec_CODEC_ZSTD)
	wireCodecDelta   = uint32(messages.Codec_CODEC_DELTA)
)

// Shared zstd coders: EncodeAll and DecodeAll are safe for concurrent use.
var (
	wireZstdOnce sync.Once
	wireZstdEnc  *zstd.Encoder
	wireZstdDec  *zstd.Decoder
	wireZstdErr  error
)

func wireZstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	wireZstdOnce.Do(func() {
		wireZstdEnc, wireZstdErr = newWireEncoder(zstd.SpeedFastest)
		if wireZstdErr != nil {
			return
		}
		wireZstdDec, wireZstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxWireBytes),
			zstd.WithDecoderMaxWindow(MaxWireBytes),
			zstd.WithDecodeAllCapLimit(true), // output never exceeds cap(dst)
			zstd.WithDecoderConcurrency(0))
	})
	return wireZstdEnc, wireZstdDec, wireZstdErr
}

func newWireEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	// No checksum: 4 bytes per message matter here, and the transport checks.
	// Single segment: the frame header always carries the content size, which
	// the decoder requires (it sizes its output exactly).
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true), zstd.WithEncoderConcurrency(0))
}

// wireZstdMagic starts every zstd frame; payloads leave it out (4 bytes of a
// ~600-byte message), as zstd's own ZSTD_f_zstd1_magicless format does.
var wireZstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// wireZstdPack compresses src into one magicless zstd frame, appended to dst.
func wireZstdPack(dst, src []byte) ([]byte, error) {
	enc, _, err := wireZstdCoders()
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		return dst, nil
	}
	base := len(dst)
	dst = enc.EncodeAll(src, dst)
	if !bytes.HasPrefix(dst[base:], wireZstdMagic) {
		return nil, errors.New("zstd encoder wrote no frame magic")
	}
	return append(dst[:base], dst[base+len(wireZstdMagic):]...), nil
}

var wireZinPool = sync.Pool{New: func() any { return new([]byte) }}

// wireUnzstd decodes one magicless zstd frame (wireZstdPack's) of at most limit
// bytes, reusing dst's storage.
func wireUnzstd(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst[:0], nil // the encoding of nothing
	}
	if len(src) > MaxWireBytes {
		return nil, fmt.Errorf("zstd payload of %d bytes exceeds %d", len(src), MaxWireBytes)
	}
	in := wireZinPool.Get().(*[]byte)
	defer wireZinPool.Put(in)
	*in = append(append((*in)[:0], wireZstdMagic...), src...)
	return wireUnzstdFramed(dst, *in, limit)
}

// wireUnzstdFramed decodes one zstd frame of at most limit bytes, reusing dst's
// storage. The frame must declare its content size (wireZstdPack's do), so that
// the output buffer is exactly as large as the header promises, never as
// large as a hostile count would allow.
func wireUnzstdFramed(dst, src []byte, limit int) ([]byte, error) {
	_, dec, err := wireZstdCoders()
	if err != nil {
		return nil, err
	}
	if len(src) > MaxWireBytes {
		return nil, fmt.Errorf("zstd payload of %d bytes exceeds %d", len(src), MaxWireBytes)
	}
	var h zstd.Header
	switch err := h.Decode(src); {
	case err != nil:
		return nil, fmt.Errorf("zstd payload (%d bytes): %w", len(src), err)
	case h.Skippable || !h.HasFCS:
		return nil, fmt.Errorf("zstd payload (%d bytes): frame without content size", len(src))
	case h.FrameContentSize > uint64(min(limit, MaxWireBytes)):
		return nil, fmt.Errorf("zstd payload (%d bytes): content size %d exceeds the %d bytes the message can need", len(src), h.FrameContentSize, min(limit, MaxWireBytes))
	}
	size := int(h.FrameContentSize)
	if cap(dst) < size {
		dst = make([]byte, 0, size)
	}
	out, err := dec.DecodeAll(src, dst[:0:size])
	if err != nil {
		return nil, fmt.Errorf("zstd payload (%d bytes, content size %d): %w", len(src), size, err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("zstd payload (%d bytes): decoded %d bytes, header says %d", len(src), len(out), size)
	}
	return out, nil
}

// wireScratch is per-call working memory, pooled so that steady-state packing
// allocates little beyond its result.
type wireScratch struct {
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
}

var wireScratchPool = sync.Pool{New: func() any { return new(wireScratch) }}

func wireGrow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n, n+n/4)
}

// PackExperience encodes b for the wire. It copies runner, seq, obs_size,
// count, weights_version and reply_to, and rejects batches whose lengths
// disagree with count and obs_size (or that exceed the wire limits).
func PackExperience(b *messages.ExperienceBatch, o WireOptions) (*messages.PackedExperience, error) {
	if b == nil {
		return nil, errors.New("pack experience: nil batch")
	}
	c, d := int(b.GetCount()), int(b.GetObsSize())
	switch {
	case uint64(c)*uint64(max(d, 1)) > MaxWireFloats:
		return nil, fmt.Errorf("pack experience from %q: %d transitions of %d values exceed %d", b.GetRunner(), c, d, MaxWireFloats)
	case len(b.GetObservations()) != c*d || len(b.GetNextObservations()) != c*d:
		return nil, fmt.Errorf("pack experience from %q: %d/%d observation values for %d transitions of %d", b.GetRunner(), len(b.GetObservations()), len(b.GetNextObservations()), c, d)
	case len(b.GetActions()) != c || len(b.GetRewards()) != c || len(b.GetDiscounts()) != c:
		return nil, fmt.Errorf("pack experience from %q: actions/rewards/discounts lengths %d/%d/%d, count %d", b.GetRunner(), len(b.GetActions()), len(b.GetRewards()), len(b.GetDiscounts()), c)
	case len(b.GetPriorities()) != 0 && len(b.GetPriorities()) != c:
		return nil, fmt.Errorf("pack experience from %q: %d priorities for %d transitions", b.GetRunner(), len(b.GetPriorities()), c)
	}
	s := wireScratchPool.Get().(*wireScratch)
	defer wireScratchPool.Put(s)

	var codec uint32
	var flags byte
	if len(b.GetPriorities()) == c && c > 0 {
		flags |= wireFlagPriorities
	}
	pairs := s.palette(b.GetRewards(), b.GetDiscounts())
	if pairs > 0 {
		flags |= wireFlagPalette
	}
	var maxAction uint32
	for _, a := range b.GetActions() {
		maxAction = max(maxAction, a)
	}
	width := bits.Len32(maxAction)

	raw := s.raw[:0]
	if o.Frames {
		codec |= wireCodecFrames
		nObs, stride := s.dedup(b)
		sequential := true
		for i, f := range s.obsIdx {
			if int(f) != i {
				sequential = false
				break
			}
		}
		if sequential {
			flags |= wireFlagSequential
		}
		raw = append(raw, wireLayout, flags, byte(width))
		raw = binary.AppendUvarint(raw, uint64(len(s.rows)))
		raw = binary.AppendUvarint(raw, uint64(stride))
		raw = s.appendRows(raw, b, o.Float16)
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
	} else {
		raw = append(raw, wireLayout, flags, byte(width))
		s.rows = wireGrow(s.rows, 2*c)
		for i := range s.rows {
			s.rows[i] = int32(i)
		}
		raw = s.appendRows(raw, b, o.Float16)
	}
	if o.Float16 {
		codec |= wireCodecFloat16
	}
	raw = wireAppendActions(raw, b.GetActions(), width)
	if pairs > 0 {
		raw = binary.AppendUvarint(raw, uint64(pairs))
		for _, k := range s.pairs[:pairs] {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(b.Rewards[k]))
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(b.Discounts[k]))
		}
		for _, k := range s.pairIdx {
			raw = append(raw, k)
		}
	} else {
		raw = wireAppendFloats(raw, b.GetRewards())
		raw = wireAppendFloats(raw, b.GetDiscounts())
	}
	if flags&wireFlagPriorities != 0 {
		raw = wireAppendFloats(raw, b.GetPriorities())
	}
	raw = append(raw, s.low...)
	s.raw = raw
	if len(raw) > MaxWireBytes {
		return nil, fmt.Errorf("pack experience from %q: payload of %d bytes exceeds %d", b.GetRunner(), len(raw), MaxWireBytes)
	}

	payload := raw
	if o.Zstd {
		codec |= wireCodecZstd
		var err error
		if payload, err = s.compress(raw, len(s.low)); err != nil {
			return nil, err
		}
	}
	payload = bytes.Clone(payload)
	return &messages.PackedExperience{
		Runner: b.GetRunner(), Seq: b.GetSeq(), ObsSize: uint32(d), Count: uint32(c),
		Codec: codec, Payload: payload, WeightsVersion: b.GetWeightsVersion(), ReplyTo: b.GetReplyTo(),
		SentBefore: b.GetSentBefore(), RunnerIncarnation: b.GetRunnerIncarnation(),
	}, nil
}

// Experience payloads with CODEC_ZSTD start with a mode byte.
const (
	wireZstdWhole = 0 // the layout is one zstd frame
	wireZstdSplit = 1 // uvarint n, a zstd frame of n bytes holding the layout up to the low row bytes, then those raw
)

// compress zstd-compresses the layout raw, whose last tail bytes are the
// low row bytes. With a tail it compresses only the part before it and
// leaves the low bytes raw (mode split): mantissa noise does not compress,
// and zstd's literal coder shares one table per block, so the noise would
// spoil the rest. One zstd pass per batch: packing runs on the runner's
// goroutine and is what limits a runner→replay stream (BENCHMARKS.md).
func (s *wireScratch) compress(raw []byte, tail int) ([]byte, error) {
	if tail == 0 {
		whole, err := wireZstdPack(append(s.zwhole[:0], wireZstdWhole), raw)
		if err != nil {
			return nil, err
		}
		s.zwhole = whole
		return whole, nil
	}
	frame, err := wireZstdPack(s.zframe[:0], raw[:len(raw)-tail])
	if err != nil {
		return nil, err
	}
	s.zframe = frame
	split := append(s.zsplit[:0], wireZstdSplit)
	split = binary.AppendUvarint(split, uint64(len(frame)))
	split = append(append(split, frame...), raw[len(raw)-tail:]...)
	s.zsplit = split
	return split, nil
}

// wireSourceRow is row r of the batch: observation r for r < c, else next
// observation r−c.
func wireSourceRow(b *messages.ExperienceBatch, r, c, d int) []float32 {
	if r < c {
		return b.Observations[r*d : (r+1)*d]
	}
	r -= c
	return b.NextObservations[r*d : (r+1)*d]
}

func wireRowHash(row []float32) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range row {
		h = (h ^ uint64(math.Float32bits(v))) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h
}

func wireSameBits(a, b []float32) bool {
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
func (s *wireScratch) dedup(b *messages.ExperienceBatch) (nObs, stride int) {
	c, d := int(b.GetCount()), int(b.GetObsSize())
	size := 16
	for size < 4*c {
		size <<= 1
	}
	s.slots = wireGrow(s.slots, size)
	clear(s.slots)
	mask := uint64(size - 1)
	s.rows = s.rows[:0]
	s.obsIdx = wireGrow(s.obsIdx, c)
	s.nextIdx = wireGrow(s.nextIdx, c)
	for r := 0; r < 2*c; r++ {
		row := wireSourceRow(b, r, c, d)
		h := wireRowHash(row) & mask
		var f int32
		for {
			slot := s.slots[h]
			if slot == 0 {
				f = int32(len(s.rows))
				s.rows = append(s.rows, int32(r))
				s.slots[h] = f + 1
				break
			}
			if wireSameBits(wireSourceRow(b, int(s.rows[slot-1]), c, d), row) {
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
	// Stride: the most common distance from a transition to the one whose
	// observation is its next observation.
	s.first = wireGrow(s.first, nObs)
	for i := range s.first {
		s.first[i] = -1
	}
	for i := c - 1; i >= 0; i-- {
		s.first[s.obsIdx[i]] = int32(i)
	}
	var hist [wireMaxStride + 1]int
	for i, f := range s.nextIdx {
		if int(f) < nObs {
			if k := int(s.first[f]) - i; k >= 1 && k <= wireMaxStride {
				hist[k]++
			}
		}
	}
	stride = 1
	for k := 2; k <= wireMaxStride; k++ {
		if hist[k] > hist[stride] {
			stride = k
		}
	}
	return nObs, stride
}

// appendRows appends the high byte planes of the rows s.rows of b in the
// transposed, delta-coded layout, and leaves the low planes in s.low.
func (s *wireScratch) appendRows(dst []byte, b *messages.ExperienceBatch, half bool) []byte {
	c, d := int(b.GetCount()), int(b.GetObsSize())
	R := len(s.rows)
	n := R * d
	base := len(dst)
	if half {
		dst = slices.Grow(dst, n)[:base+n]
		s.low = wireGrow(s.low, n)
		hi, lo := dst[base:base+n], s.low
		for j := 0; j < d; j++ {
			var prev uint16
			for r, src := range s.rows {
				v := wireOrdered16(f32ToF16(wireSourceRow(b, int(src), c, d)[j]))
				x := wireZigzag16(v - prev)
				prev = v
				hi[j*R+r], lo[j*R+r] = byte(x>>8), byte(x)
			}
		}
		return dst
	}
	dst = slices.Grow(dst, 2*n)[:base+2*n]
	s.low = wireGrow(s.low, 2*n)
	p0, p1, p2, p3 := dst[base:base+n], dst[base+n:base+2*n], s.low[:n], s.low[n:]
	for j := 0; j < d; j++ {
		var prev uint32
		for r, src := range s.rows {
			v := wireOrdered32(math.Float32bits(wireSourceRow(b, int(src), c, d)[j]))
			x := wireZigzag32(v - prev)
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
// wireMaxPalette entries).
func (s *wireScratch) palette(rewards, discounts []float32) int {
	c := len(rewards)
	s.pairs = s.pairs[:0]
	s.pairIdx = wireGrow(s.pairIdx, c)
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
		if len(s.pairs) == wireMaxPalette || 8*(len(s.pairs)+1)+c >= 8*c {
			return 0
		}
		s.pairIdx[i] = byte(len(s.pairs))
		s.pairs = append(s.pairs, int32(i))
	}
	return len(s.pairs)
}

func wireAppendActions(dst []byte, actions []uint32, width int) []byte {
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

func wireAppendFloats(dst []byte, v []float32) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}

// wireReader reads a decoded payload; the first error sticks.
type wireReader struct {
	buf []byte
	off int
	err error
}

func (r *wireReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *wireReader) left() int { return len(r.buf) - r.off }

func (r *wireReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.left() < 1 {
		r.fail("payload truncated at %s (offset %d)", what, r.off)
		return 0
	}
	r.off++
	return r.buf[r.off-1]
}

func (r *wireReader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	if n <= 0 {
		r.fail("payload: bad or truncated varint for %s (offset %d)", what, r.off)
		return 0
	}
	if v > limit {
		r.fail("payload: %s %d exceeds %d (offset %d)", what, v, limit, r.off)
		return 0
	}
	r.off += n
	return v
}

func (r *wireReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.left() < n {
		r.fail("payload truncated in %s: need %d bytes at offset %d, have %d", what, n, r.off, r.left())
		return nil
	}
	r.off += n
	return r.buf[r.off-n : r.off]
}

func (r *wireReader) floats(what string, n int) []float32 {
	p := r.bytes(what, 4*n)
	if p == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return out
}

// UnpackExperience decodes a PackedExperience into the batch that was packed
// (exactly, unless CODEC_FLOAT16 rounded the observations). It never panics:
// hostile or corrupt input gives an error naming the problem.
func UnpackExperience(p *messages.PackedExperience) (*messages.ExperienceBatch, error) {
	if p == nil {
		return nil, errors.New("unpack experience: nil message")
	}
	b, err := unpackExperience(p)
	if err != nil {
		return nil, fmt.Errorf("unpack experience from %q seq %d (count %d, obs_size %d, codec %#x): %w", p.GetRunner(), p.GetSeq(), p.GetCount(), p.GetObsSize(), p.GetCodec(), err)
	}
	return b, nil
}

func unpackExperience(p *messages.PackedExperience) (*messages.ExperienceBatch, error) {
	codec := p.GetCodec()
	if unknown := codec &^ (wireCodecFrames | wireCodecFloat16 | wireCodecZstd); unknown != 0 {
		return nil, fmt.Errorf("unknown codec flags %#x", unknown)
	}
	c, d := int(p.GetCount()), int(p.GetObsSize())
	if uint64(c)*uint64(max(d, 1)) > MaxWireFloats {
		return nil, fmt.Errorf("%d transitions of %d values exceed %d", c, d, MaxWireFloats)
	}
	frames, half := codec&wireCodecFrames != 0, codec&wireCodecFloat16 != 0
	B := 4
	if half {
		B = 2
	}
	s := wireScratchPool.Get().(*wireScratch)
	defer wireScratchPool.Put(s)
	raw := p.GetPayload()
	if codec&wireCodecZstd != 0 {
		// The largest layout count and obs_size allow: header, 2c rows,
		// 5-byte codes, 32-bit actions and three float columns.
		limit := 3 + 2*binary.MaxVarintLen64 + 2*c*d*B + 2*c*binary.MaxVarintLen32 + 4*c + 12*c
		if len(raw) == 0 {
			return nil, errors.New("empty zstd payload")
		}
		var err error
		switch mode, rest := raw[0], raw[1:]; mode {
		case wireZstdWhole:
			raw, err = wireUnzstd(s.raw, rest, limit)
		case wireZstdSplit:
			n, k := binary.Uvarint(rest)
			if k <= 0 || n > uint64(len(rest)-k) {
				return nil, fmt.Errorf("split zstd payload: bad frame length (%d of %d bytes)", n, len(rest))
			}
			frame, tail := rest[k:k+int(n)], rest[k+int(n):]
			if len(tail) > limit {
				return nil, fmt.Errorf("split zstd payload: %d raw bytes exceed the %d the message can need", len(tail), limit)
			}
			if raw, err = wireUnzstd(s.raw, frame, limit-len(tail)); err == nil {
				raw = append(raw, tail...)
			}
		default:
			return nil, fmt.Errorf("unknown zstd payload mode %d", mode)
		}
		if err != nil {
			return nil, err
		}
		s.raw = raw
	}
	if len(raw) > MaxWireBytes {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d", len(raw), MaxWireBytes)
	}
	r := &wireReader{buf: raw}
	if v := r.byte("layout version"); r.err == nil && v != wireLayout {
		return nil, fmt.Errorf("payload layout version %d, want %d", v, wireLayout)
	}
	flags := r.byte("flags")
	width := int(r.byte("action width"))
	if r.err != nil {
		return nil, r.err
	}
	if flags&^(wireFlagPriorities|wireFlagSequential|wireFlagPalette) != 0 {
		return nil, fmt.Errorf("unknown payload flags %#x", flags)
	}
	if width > 32 {
		return nil, fmt.Errorf("action width %d bits exceeds 32", width)
	}
	sequential := flags&wireFlagSequential != 0
	if sequential && !frames {
		return nil, errors.New("sequential-observations flag without CODEC_FRAMES")
	}
	R, stride := 2*c, 0
	if frames {
		R = int(r.uvarint("frame count", uint64(2*c)))
		stride = int(r.uvarint("stride", wireMaxStride))
		if r.err == nil && stride < 1 {
			return nil, errors.New("stride 0")
		}
		if r.err == nil && sequential && R < c {
			return nil, fmt.Errorf("sequential observations need %d frames, have %d", c, R)
		}
		if r.err == nil && c > 0 && R == 0 {
			return nil, fmt.Errorf("no frames for %d transitions", c)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	// Everything that scales with c must fit in what is left before we
	// allocate for it (codes take at least one byte each).
	need := R*d*B + (c*width+7)/8
	if flags&wireFlagPalette != 0 {
		need += c + 8 // indices and at least one entry
	} else {
		need += 8 * c
	}
	if frames {
		need += c
		if !sequential {
			need += c
		}
	}
	if flags&wireFlagPriorities != 0 {
		need += 4 * c
	}
	if r.left() < need {
		return nil, fmt.Errorf("payload truncated: %d bytes left, %d transitions need at least %d", r.left(), c, need)
	}
	high := r.bytes("rows", R*d*B/2)

	out := &messages.ExperienceBatch{
		Runner: p.GetRunner(), Seq: p.GetSeq(), ObsSize: uint32(d), Count: uint32(c),
		WeightsVersion: p.GetWeightsVersion(), ReplyTo: p.GetReplyTo(),
		SentBefore: p.GetSentBefore(), RunnerIncarnation: p.GetRunnerIncarnation(),
	}
	if frames {
		s.obsIdx = wireGrow(s.obsIdx, c)
		s.nextIdx = wireGrow(s.nextIdx, c)
		obsNew := 0
		for i := range c {
			if sequential {
				s.obsIdx[i] = int32(i)
				continue
			}
			code := r.uvarint("observation code", uint64(R))
			if r.err != nil {
				return nil, r.err
			}
			if code == 0 {
				if obsNew >= R {
					return nil, fmt.Errorf("observation %d: new frame %d beyond %d frames", i, obsNew, R)
				}
				s.obsIdx[i] = int32(obsNew)
				obsNew++
			} else {
				s.obsIdx[i] = int32(code - 1)
			}
		}
		if sequential {
			obsNew = c
		}
		nextNew := obsNew
		for i := range c {
			code := r.uvarint("next-observation code", uint64(R)+2)
			if r.err != nil {
				return nil, r.err
			}
			var f int
			switch code {
			case 0:
				if i+stride >= c {
					return nil, fmt.Errorf("next observation %d: stride %d points past %d transitions", i, stride, c)
				}
				f = int(s.obsIdx[i+stride])
			case 1:
				if nextNew >= R {
					return nil, fmt.Errorf("next observation %d: new frame %d beyond %d frames", i, nextNew, R)
				}
				f = nextNew
				nextNew++
			case 2:
				if i == 0 {
					return nil, errors.New("next observation 0: refers to a previous one")
				}
				f = int(s.nextIdx[i-1])
			default:
				f = int(code - 3)
				if f >= R {
					return nil, fmt.Errorf("next observation %d: frame %d beyond %d frames", i, f, R)
				}
			}
			s.nextIdx[i] = int32(f)
		}
		if nextNew != R {
			return nil, fmt.Errorf("%d frames, %d of them used", R, nextNew)
		}
	}
	packed := r.bytes("actions", (c*width+7)/8)
	if flags&wireFlagPalette != 0 {
		pairs := int(r.uvarint("palette size", uint64(min(c, wireMaxPalette))))
		if r.err == nil && pairs == 0 {
			return nil, errors.New("empty reward/discount palette")
		}
		entries := r.bytes("palette", 8*pairs)
		idx := r.bytes("palette indices", c)
		if r.err != nil {
			return nil, r.err
		}
		out.Rewards, out.Discounts = make([]float32, c), make([]float32, c)
		for i, k := range idx {
			if int(k) >= pairs {
				return nil, fmt.Errorf("transition %d: palette entry %d of %d", i, k, pairs)
			}
			out.Rewards[i] = math.Float32frombits(binary.LittleEndian.Uint32(entries[8*int(k):]))
			out.Discounts[i] = math.Float32frombits(binary.LittleEndian.Uint32(entries[8*int(k)+4:]))
		}
	} else {
		out.Rewards = r.floats("rewards", c)
		out.Discounts = r.floats("discounts", c)
	}
	if flags&wireFlagPriorities != 0 {
		out.Priorities = r.floats("priorities", c)
	}
	low := r.bytes("rows (low bytes)", R*d*B/2)
	if r.err != nil {
		return nil, r.err
	}
	if r.left() != 0 {
		return nil, fmt.Errorf("%d trailing payload bytes", r.left())
	}
	if frames {
		s.floats = wireGrow(s.floats, R*d)
		wireDecodeRows(s.floats, high, low, R, d, half)
		both := make([]float32, 2*c*d)
		out.Observations, out.NextObservations = both[:c*d:c*d], both[c*d:]
		for i := range c {
			copy(out.Observations[i*d:(i+1)*d], s.floats[int(s.obsIdx[i])*d:])
			copy(out.NextObservations[i*d:(i+1)*d], s.floats[int(s.nextIdx[i])*d:])
		}
	} else {
		rows := make([]float32, R*d)
		wireDecodeRows(rows, high, low, R, d, half)
		out.Observations, out.NextObservations = rows[:c*d:c*d], rows[c*d:]
	}
	out.Actions = make([]uint32, c)
	var acc uint64
	var nb, pos int
	mask := uint64(1)<<width - 1
	for i := range out.Actions {
		for nb < width {
			acc |= uint64(packed[pos]) << nb
			pos++
			nb += 8
		}
		out.Actions[i] = uint32(acc & mask)
		acc >>= width
		nb -= width
	}
	return out, nil
}

// wireDecodeRows inverts appendRows: the high and low planes of R rows of d
// values into rows (row-major, len R·d).
func wireDecodeRows(rows []float32, high, low []byte, R, d int, half bool) {
	n := R * d
	if half {
		hi, lo := high[:n], low[:n]
		for j := 0; j < d; j++ {
			var prev uint16
			for r := 0; r < R; r++ {
				k := j*R + r
				prev += wireUnzigzag16(uint16(hi[k])<<8 | uint16(lo[k]))
				rows[r*d+j] = f16ToF32(wireOrdered16(prev))
			}
		}
		return
	}
	p0, p1, p2, p3 := high[:n], high[n:2*n], low[:n], low[n:2*n]
	for j := 0; j < d; j++ {
		var prev uint32
		for r := 0; r < R; r++ {
			k := j*R + r
			prev += wireUnzigzag32(uint32(p0[k])<<24 | uint32(p1[k])<<16 | uint32(p2[k])<<8 | uint32(p3[k]))
			rows[r*d+j] = math.Float32frombits(wireOrdered32(prev))
		}
	}
}

// wireOrdered32 maps float bits to integers in the floats' order (negative
// floats get their magnitude bits flipped), so that close values have close
// integers; it is its own inverse.
func wireOrdered32(v uint32) uint32 {
	if v&0x80000000 != 0 {
		return v ^ 0x7fffffff
	}
	return v
}

func wireOrdered16(v uint16) uint16 {
	if v&0x8000 != 0 {
		return v ^ 0x7fff
	}
	return v
}

// zigzag maps small differences of either sign to small unsigned values.
func wireZigzag32(v uint32) uint32   { return v<<1 ^ uint32(int32(v)>>31) }
func wireUnzigzag32(v uint32) uint32 { return v>>1 ^ -(v & 1) }
func wireZigzag16(v uint16) uint16   { return v<<1 ^ uint16(int16(v)>>15) }
func wireUnzigzag16(v uint16) uint16 { return v>>1 ^ -(v & 1) }

// f32ToF16 rounds f to the nearest IEEE 754 half float (ties to even);
// overflow gives ±Inf, NaN stays NaN.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7c00 | 0x200 | uint16(mant>>13) // quiet NaN, top payload bits kept
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // half subnormal (or zero)
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to ±0
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		q := m >> shift
		rem, halfway := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > halfway || (rem == halfway && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | mant>>13
	if rem := mant & 0x1fff; rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // a carry into the exponent is right, up to and including Inf
	}
	return sign | uint16(q)
}

// f16ToF32 converts a half float exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// wireWorthCompressing compresses a sample of the planes (the first 16k
// parameters) and says whether zstd saves at least 10%.
func wireWorthCompressing(params, base []float32) bool {
	k := min(len(params), 16<<10)
	if k == 0 {
		return true
	}
	planes := wirePlanes(make([]byte, 4*k), params[:k], sliceOrNil(base, 0, k))
	packed, err := wireZstdPack(make([]byte, 0, len(planes)), planes)
	return err == nil && len(packed) < len(planes)*9/10
}

// PackWeights packs w into chunks of at most chunkBytes raw bytes (see the
// payload layout above), as a delta against base when base is given (same
// term, older version, same size), zstd-compressed when compress is set and
// a sample shows it pays.
func PackWeights(w *messages.Weights, base *messages.Weights, chunkBytes int, compress bool) ([]*messages.WeightsChunk, error) {
	pk, err := NewWeightsPacker(w, base, chunkBytes, compress)
	if err != nil {
		return nil, err
	}
	chunks := make([]*messages.WeightsChunk, pk.Total())
	for i := range chunks {
		if chunks[i], err = pk.Chunk(i); err != nil {
			return nil, err
		}
	}
	return chunks, nil
}

// WeightsPacker packs the chunks of one weights version lazily, each the
// first time it is asked for, so that the first chunk can leave before the
// last is packed. One goroutine at a time.
type WeightsPacker struct {
	w           *messages.Weights
	base        []float32
	baseVersion uint64
	seg, total  int
	codec       uint32
	chunks      []*messages.WeightsChunk
	raw         []byte
}

// NewWeightsPacker checks the arguments as PackWeights does.
func NewWeightsPacker(w *messages.Weights, base *messages.Weights, chunkBytes int, compress bool) (*WeightsPacker, error) {
	if w == nil {
		return nil, errors.New("pack weights: nil weights")
	}
	if chunkBytes < 1 {
		return nil, fmt.Errorf("pack weights %d/%d: chunk size %d", w.GetTerm(), w.GetVersion(), chunkBytes)
	}
	params := w.GetParams()
	n := len(params)
	if n > MaxWireFloats {
		return nil, fmt.Errorf("pack weights %d/%d: %d params exceed %d", w.GetTerm(), w.GetVersion(), n, MaxWireFloats)
	}
	pk := &WeightsPacker{w: w}
	if base != nil {
		switch {
		case len(base.GetParams()) != n:
			return nil, fmt.Errorf("pack weights %d/%d: base %d/%d has %d params, want %d", w.GetTerm(), w.GetVersion(), base.GetTerm(), base.GetVersion(), len(base.GetParams()), n)
		case base.GetTerm() != w.GetTerm():
			return nil, fmt.Errorf("pack weights %d/%d: base of another term (%d)", w.GetTerm(), w.GetVersion(), base.GetTerm())
		case base.GetVersion() >= w.GetVersion():
			return nil, fmt.Errorf("pack weights %d/%d: base version %d is not older", w.GetTerm(), w.GetVersion(), base.GetVersion())
		}
		pk.codec |= wireCodecDelta
		pk.base, pk.baseVersion = base.GetParams(), base.GetVersion()
	}
	pk.seg = max(1, chunkBytes/4)
	pk.total = max(1, (n+pk.seg-1)/pk.seg)
	if pk.total > MaxWeightsChunks {
		return nil, fmt.Errorf("pack weights %d/%d: %d chunks of %d params exceed %d", w.GetTerm(), w.GetVersion(), pk.total, pk.seg, MaxWeightsChunks)
	}
	// zstd costs more time than the bytes it saves on dense updates of a
	// large net (a few % for tens of ms per 1M params): a sample decides.
	if compress && wireWorthCompressing(params, pk.base) {
		pk.codec |= wireCodecZstd
	}
	pk.chunks = make([]*messages.WeightsChunk, pk.total)
	pk.raw = make([]byte, 4*min(pk.seg, max(n, 1)))
	return pk, nil
}

// Total is the number of chunks.
func (pk *WeightsPacker) Total() int { return pk.total }

// Chunk returns chunk i, packing it on first use.
func (pk *WeightsPacker) Chunk(i int) (*messages.WeightsChunk, error) {
	if c := pk.chunks[i]; c != nil {
		return c, nil
	}
	params := pk.w.GetParams()
	n := len(params)
	lo, hi := min(i*pk.seg, n), min((i+1)*pk.seg, n)
	planes := wirePlanes(pk.raw[:4*(hi-lo)], params[lo:hi], sliceOrNil(pk.base, lo, hi))
	payload := append([]byte(nil), planes...)
	if pk.codec&wireCodecZstd != 0 {
		var err error
		if payload, err = wireZstdPack(make([]byte, 0, len(planes)/2+64), planes); err != nil {
			return nil, err
		}
	}
	c := &messages.WeightsChunk{
		Version: pk.w.GetVersion(), Term: pk.w.GetTerm(), Index: uint32(i), Total: uint32(pk.total),
		NumParams: uint32(n), Codec: pk.codec, Payload: payload,
		LearnerUpdates: pk.w.GetLearnerUpdates(), SegmentParams: uint32(pk.seg), BaseVersion: pk.baseVersion,
		EnvSteps: pk.w.GetEnvSteps(),
	}
	pk.chunks[i] = c
	return c, nil
}

// wirePlanes writes params (XORed with base if given) into dst as 4 byte
// planes, most significant first, and returns dst.
func wirePlanes(dst []byte, params, base []float32) []byte {
	n := len(params)
	p0, p1, p2, p3 := dst[:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n]
	for i, v := range params {
		x := math.Float32bits(v)
		if base != nil {
			x ^= math.Float32bits(base[i])
		}
		p0[i], p1[i], p2[i], p3[i] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
	}
	return dst
}

func sliceOrNil(v []float32, lo, hi int) []float32 {
	if v == nil {
		return nil
	}
	return v[lo:hi]
}

// WeightsAssembler puts chunked weights back together on the runner side. It
// collects the chunks of one (term, version) in any order and returns the
// whole Weights when the last one arrives. A chunk of a newer version discards
// a partial older one; chunks of versions older than the one being collected,
// or not newer than the last completed one, are ignored. Not safe for
// concurrent use (the runner actor owns it).
type WeightsAssembler struct {
	// Base returns the weights of (version, term), the base of a delta, or
	// nil. If it is nil or returns nil, the last completed weights serve
	// when their version matches.
	Base func(version, term uint64) *messages.Weights

	last    *messages.Weights // last completed; callers must not modify its params
	lastKey weightsKey
	cur     *wirePartialWeights
}

type wirePartialWeights struct {
	key        weightsKey
	meta       *messages.WeightsChunk // first chunk seen, for consistency checks
	params     []float32              // decoded so far
	base       []float32              // of a delta
	sums       []uint32               // CRC-32 of each chunk's payload, to tell duplicates from conflicts
	got        []bool
	have, size int
}

// Last is the last completed weights, or nil.
func (a *WeightsAssembler) Last() *messages.Weights { return a.last }

// Add takes one chunk. It returns the complete weights when c was the last
// missing chunk of its version, nil otherwise (also for ignored chunks), and
// an error for a chunk that contradicts the others of its version (the
// partial version is then dropped) or that cannot be decoded.
func (a *WeightsAssembler) Add(c *messages.WeightsChunk) (*messages.Weights, error) {
	if c == nil {
		return nil, errors.New("weights chunk: nil")
	}
	k := weightsKey{term: c.GetTerm(), version: c.GetVersion()}
	if a.last != nil && !k.newerThan(a.lastKey) {
		return nil, nil
	}
	if a.cur != nil {
		switch {
		case a.cur.key.newerThan(k):
			return nil, nil
		case k.newerThan(a.cur.key):
			a.cur = nil
		}
	}
	where := fmt.Sprintf("weights chunk %d/%d of %d/%d", c.GetIndex(), c.GetTotal(), c.GetTerm(), c.GetVersion())
	switch {
	case c.GetTotal() < 1 || c.GetTotal() > MaxWeightsChunks:
		return nil, fmt.Errorf("%s: total %d outside 1..%d", where, c.GetTotal(), MaxWeightsChunks)
	case c.GetIndex() >= c.GetTotal():
		return nil, fmt.Errorf("%s: index out of range", where)
	case c.GetNumParams() > MaxWireFloats:
		return nil, fmt.Errorf("%s: %d params exceed %d", where, c.GetNumParams(), MaxWireFloats)
	case c.GetCodec()&^(wireCodecZstd|wireCodecDelta) != 0:
		return nil, fmt.Errorf("%s: unknown codec flags %#x", where, c.GetCodec()&^(wireCodecZstd|wireCodecDelta))
	case c.GetCodec()&wireCodecDelta != 0 && c.GetBaseVersion() >= c.GetVersion():
		return nil, fmt.Errorf("%s: delta base version %d is not older", where, c.GetBaseVersion())
	case len(c.GetPayload()) > MaxWireBytes:
		return nil, fmt.Errorf("%s: payload of %d bytes exceeds %d", where, len(c.GetPayload()), MaxWireBytes)
	}
	n, seg := int(c.GetNumParams()), int(c.GetSegmentParams())
	if a.cur == nil {
		if seg < 1 || (n+seg-1)/seg != int(c.GetTotal()) && !(n == 0 && c.GetTotal() == 1) {
			return nil, fmt.Errorf("%s: %d params in segments of %d do not make %d chunks", where, n, seg, c.GetTotal())
		}
		var bp []float32
		if c.GetCodec()&wireCodecDelta != 0 {
			var err error
			if bp, err = a.base(c, n); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		a.cur = &wirePartialWeights{key: k, meta: c, params: make([]float32, n), base: bp,
			sums: make([]uint32, c.GetTotal()), got: make([]bool, c.GetTotal())}
	}
	p := a.cur
	if m := p.meta; m.GetTotal() != c.GetTotal() || m.GetNumParams() != c.GetNumParams() || m.GetCodec() != c.GetCodec() ||
		m.GetBaseVersion() != c.GetBaseVersion() || m.GetLearnerUpdates() != c.GetLearnerUpdates() || m.GetSegmentParams() != c.GetSegmentParams() {
		a.cur = nil
		return nil, fmt.Errorf("%s: inconsistent with chunk %d (total %d/%d, params %d/%d, codec %#x/%#x, base %d/%d, updates %d/%d); version dropped",
			where, m.GetIndex(), c.GetTotal(), m.GetTotal(), c.GetNumParams(), m.GetNumParams(), c.GetCodec(), m.GetCodec(),
			c.GetBaseVersion(), m.GetBaseVersion(), c.GetLearnerUpdates(), m.GetLearnerUpdates())
	}
	i := c.GetIndex()
	sum := crc32.ChecksumIEEE(c.GetPayload())
	if p.got[i] {
		if p.sums[i] == sum {
			return nil, nil // a duplicate
		}
		a.cur = nil
		return nil, fmt.Errorf("%s: received twice with different payloads; version dropped", where)
	}
	if p.size += len(c.GetPayload()); p.size > MaxWireBytes {
		a.cur = nil
		return nil, fmt.Errorf("%s: payload exceeds %d bytes; version dropped", where, MaxWireBytes)
	}
	// Decode this chunk now: the work spreads over the transfer instead of
	// piling up at its last chunk.
	lo, hi := min(int(i)*seg, n), min((int(i)+1)*seg, n)
	if err := wireDecodeSegment(p.params[lo:hi], sliceOrNil(p.base, lo, hi), c); err != nil {
		a.cur = nil
		return nil, fmt.Errorf("%s: %w; version dropped", where, err)
	}
	p.got[i], p.sums[i] = true, sum
	p.have++
	if p.have < len(p.got) {
		return nil, nil
	}
	a.cur = nil
	w := &messages.Weights{Version: c.GetVersion(), Term: c.GetTerm(), Params: p.params, LearnerUpdates: c.GetLearnerUpdates(), EnvSteps: c.GetEnvSteps()}
	a.last, a.lastKey = w, k
	return w, nil
}

// base finds the weights a delta chunk is against.
func (a *WeightsAssembler) base(c *messages.WeightsChunk, n int) ([]float32, error) {
	var base *messages.Weights
	if a.Base != nil {
		base = a.Base(c.GetBaseVersion(), c.GetTerm())
	}
	if base == nil && a.last != nil && a.lastKey == (weightsKey{term: c.GetTerm(), version: c.GetBaseVersion()}) {
		base = a.last
	}
	switch {
	case base == nil:
		return nil, fmt.Errorf("delta against %d/%d: base weights not available", c.GetTerm(), c.GetBaseVersion())
	case len(base.GetParams()) != n:
		return nil, fmt.Errorf("delta against %d/%d: base has %d params, want %d", c.GetTerm(), c.GetBaseVersion(), len(base.GetParams()), n)
	}
	return base.GetParams(), nil
}

// wireDecodeSegment decodes one chunk's planes into dst (XORed with base).
func wireDecodeSegment(dst, base []float32, c *messages.WeightsChunk) error {
	n := len(dst)
	raw := c.GetPayload()
	if c.GetCodec()&wireCodecZstd != 0 && n > 0 {
		framed := append(append(make([]byte, 0, len(wireZstdMagic)+len(raw)), wireZstdMagic...), raw...)
		var err error
		if raw, err = wireUnzstdFramed(nil, framed, 4*n); err != nil {
			return err
		}
	}
	if len(raw) != 4*n {
		return fmt.Errorf("payload of %d bytes for %d params", len(raw), n)
	}
	p0, p1, p2, p3 := raw[:n], raw[n:2*n], raw[2*n:3*n], raw[3*n:]
	for i := range dst {
		x := uint32(p0[i])<<24 | uint32(p1[i])<<16 | uint32(p2[i])<<8 | uint32(p3[i])
		if base != nil {
			x ^= math.Float32bits(base[i])
		}
		dst[i] = math.Float32frombits(x)
	}
	return nil
}
