package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/qfleet/qfleet/messages"
)

// The stacked-frames codec (CODEC_STACKED_FRAMES; the layout is in the
// package doc). A batch of stacked pixel observations repeats each frame up
// to 2k times (k slots of obs, k of the next obs n steps later), and every
// stacked row is distinct, so the float layout's whole-row deduplication
// finds nothing: this codec takes each stack apart into its frames, sends
// each distinct frame once, coded against the frame before it in its env's
// stream, and the stacks as references to frames.

// Frame transforms: how a frame's bytes are coded against its base frame.
const (
	transformPlain = 0 // the bytes themselves
	transformSub   = 1 // the byte minus the base's, mod 256
	transformXor   = 2 // the byte XOR the base's
	numTransforms  = 3
)

// Reference codes of a stack slot (see the package doc).
const (
	refNew   = 0 // the next frame not used before
	refLeft  = 1 // slot j−1 of this stack
	refShift = 2 // slot j+1 of the stack s before, in the same column
	refAbove = 3 // slot j of the stack before, in the same column
	refLater = 4 // next observations: slot j of observation i+n
	refFrame = 5 // 5+x: frame x
)

const (
	stackedLayoutVersion = 1
	maxFrameStack        = 64 // a deeper stack is a config typo (envs.MaxFrameStack is 16)
	maxChannels          = 64 // channels a frame the packer looks for
)

// stackedTransform and stackedLevel are the codec's choices, measured on
// CartPolePixels-v1 (BENCHMARKS.md, "Pixels on the wire"); the test
// measuring them changes them through export_test.go.
var (
	stackedTransform byte = transformXor
	stackedLevel          = stackedZstdLevel
)

var frameSeed = maphash.MakeSeed()

// stackScratch is the stacked-frames codec's part of scratch.
type stackScratch struct {
	frames []byte   // the 2c stacks' frames, slot q = t·k+j at [q·f, (q+1)·f); stack t < c is obs t, else next t−c
	same   []int32  // stack -> the first stack equal to it
	ids    []int32  // slot -> frame
	first  []int32  // frame -> slot of its first use
	table  []int32  // open addressing (0 = empty): stack+1 in splitFrames, frame+1 in dedupFrames
	codes  []byte   // decoding: stack -> stackBuild, stackLater or stackAbove
	stack  [][]byte // decoding: the frames of the stack being built
}

// stackedShape is what a stacked batch's layout depends on.
type stackedShape struct {
	c, d, k  int // transitions, values an observation, frames a stack
	f, C     int // values a frame, channels a frame
	shift    int // s: stack i is usually stack i−s shifted by one frame
	nextSkip int // n: next observation i is usually observation i+n
	frames   int // F: distinct frames
}

// canStack says whether PackExperience may use the stacked-frames codec
// for b: frames asked for, stacked observations, at least one transition.
// The values are checked while the frames are taken apart.
func canStack(b *messages.ExperienceBatch, o Options) bool {
	k, c, d := int(b.GetFrameStack()), int(b.GetCount()), int(b.GetObsSize())
	return o.Frames && k > 1 && k <= maxFrameStack && c > 0 && d > 0 && d%k == 0
}

// packStacked writes b's stacked-frames layout into s.raw and returns it,
// or ok false when some observation value is not a whole number 0..255
// (the caller falls back to the float codecs).
func (s *scratch) packStacked(b *messages.ExperienceBatch) (raw []byte, ok bool) {
	c, d, k := int(b.GetCount()), int(b.GetObsSize()), int(b.GetFrameStack())
	h := stackedShape{c: c, d: d, k: k, f: d / k}
	h.C = detectChannels(b, h)
	if !s.splitFrames(b, h) {
		return nil, false
	}
	h.frames = s.dedupFrames(h)
	h.shift, h.nextSkip = s.stackStrides(h)

	flags, pairs, width := s.columns(b)

	raw = append(s.raw[:0], stackedLayoutVersion, flags, byte(width), stackedTransform)
	raw = binary.AppendUvarint(raw, uint64(h.C))
	raw = binary.AppendUvarint(raw, uint64(h.frames))
	raw = binary.AppendUvarint(raw, uint64(h.shift))
	raw = binary.AppendUvarint(raw, uint64(h.nextSkip))
	raw = s.appendRefs(raw, h)
	raw = s.appendFrameBytes(raw, h, stackedTransform)
	raw = appendActions(raw, b.GetActions(), width)
	raw = s.appendRewards(raw, b, pairs)
	if flags&flagPriorities != 0 {
		raw = appendFloats(raw, b.GetPriorities())
	}
	s.raw = raw
	return raw, true
}

// detectChannels finds C, the channels of one frame, which the batch does
// not carry (a stack of H×W×C frames is H×W×kC either way) but which
// decides where the frames are: the smallest C dividing the frame for which
// a later stack of the batch holds the first observation's frames shifted,
// as consecutive stacks of one env do. Any C decodes exactly; a wrong one
// only finds fewer shared frames. 1 when nothing shows.
func detectChannels(b *messages.ExperienceBatch, h stackedShape) int {
	c, d, k := h.c, h.d, h.k
	first := sourceRow(b, 0, c, d)
	for C := 1; C <= min(h.f, maxChannels); C++ {
		if h.f%C != 0 {
			continue
		}
		for i := 1; i < min(c, 9); i++ {
			if shiftedBy(first, sourceRow(b, i, c, d), k, C, 1) {
				return C
			}
		}
		for by := 1; by < k; by++ {
			if shiftedBy(first, sourceRow(b, c, c, d), k, C, by) {
				return C
			}
		}
	}
	return 1
}

// shiftedBy says whether frames by..k−1 of stack a are frames 0..k−1−by of
// stack b, for frames of C channels.
func shiftedBy(a, b []float32, k, C, by int) bool {
	g, w := k*C, (k-by)*C
	for p := 0; p+g <= len(a); p += g {
		if !sameBits(a[p+by*C:p+g], b[p:p+w]) {
			return false
		}
	}
	return true
}

// splitFrames copies the frames of the 2c stacks into s.st.frames as
// bytes, and says whether every value was a whole number 0..255 (as
// float32 bits: −0 is not 0, so that the round trip stays exact). A stack
// equal to an earlier one (a next observation is an observation n steps
// on) is found by content and not taken apart again: s.st.same[t] is the
// first stack equal to stack t.
func (s *scratch) splitFrames(b *messages.ExperienceBatch, h stackedShape) bool {
	c, d := h.c, h.d
	st := &s.st
	st.frames = grow(st.frames, 2*c*d)
	st.same = grow(st.same, 2*c)
	size := 16
	for size < 4*c {
		size <<= 1
	}
	st.table = grow(st.table, size)
	clear(st.table)
	mask := uint64(size - 1)
	for t := range 2 * c {
		row := sourceRow(b, t, c, d)
		raw := floatBytes(row)
		at := maphash.Bytes(frameSeed, raw) & mask
		for {
			e := st.table[at]
			if e == 0 {
				st.table[at] = int32(t) + 1
				st.same[t] = int32(t)
				if !splitStack(st.frames[t*d:(t+1)*d], row, h) {
					return false
				}
				break
			}
			if bytes.Equal(floatBytes(sourceRow(b, int(e-1), c, d)), raw) {
				st.same[t] = e - 1
				break
			}
			at = (at + 1) & mask
		}
	}
	return true
}

// floatBytes is v's memory: the float32 bit patterns, for hashing and
// comparing rows at memory speed.
func floatBytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// splitStack writes the k frames of the stack row, one after the other,
// into out as bytes, and says whether every value was a whole number
// 0..255 with those bits. int32(v) is any value for NaN or out of range,
// but then its float32 is not v. The check is branch-free (bad collects
// any set bit): this loop is most of the packer's time.
func splitStack(out []byte, row []float32, h stackedShape) bool {
	k, f, C := h.k, h.f, h.C
	var bad uint32
	check := func(v float32) uint8 {
		iv := int32(v)
		bad |= uint32(iv)>>8 | math.Float32bits(float32(iv)) ^ math.Float32bits(v)
		return uint8(iv)
	}
	switch {
	case C == 1 && k == 4: // gray frames stacked 4 deep (DQN's Atari): unrolled
		o0, o1, o2, o3 := out[:f], out[f:2*f], out[2*f:3*f], out[3*f:4*f]
		for p := range o0 {
			r := row[4*p : 4*p+4 : 4*p+4]
			o0[p], o1[p], o2[p], o3[p] = check(r[0]), check(r[1]), check(r[2]), check(r[3])
		}
	case C == 1: // one value a pixel (gray): read the row in order
		for p := range f {
			for j, v := range row[p*k : (p+1)*k] {
				out[j*f+p] = check(v)
			}
		}
	default:
		for p, at := 0, 0; at < len(row); p += C {
			for j := range k {
				dst := out[j*f+p : j*f+p+C]
				for i, v := range row[at : at+C] {
					dst[i] = check(v)
				}
				at += C
			}
		}
	}
	return bad == 0
}

// dedupFrames gives each slot its frame (s.st.ids), the frames numbered in
// order of first use, found by content (hash, then compare), and records
// each frame's first slot (s.st.first). It returns the number of frames.
func (s *scratch) dedupFrames(h stackedShape) int {
	st := &s.st
	k, f := h.k, h.f
	nSlots := 2 * h.c * k
	size := 16
	for size < 2*nSlots {
		size <<= 1
	}
	st.table = grow(st.table, size)
	clear(st.table)
	mask := uint64(size - 1)
	st.ids = grow(st.ids, nSlots)
	st.first = st.first[:0]
	for q := range nSlots {
		if t := q / k; int(st.same[t]) != t {
			st.ids[q] = st.ids[int(st.same[t])*k+q%k] // a copy of an earlier stack
			continue
		}
		frame := st.frames[q*f : (q+1)*f]
		at := maphash.Bytes(frameSeed, frame) & mask
		for {
			e := st.table[at]
			if e == 0 {
				st.ids[q] = int32(len(st.first))
				st.table[at] = int32(len(st.first)) + 1
				st.first = append(st.first, int32(q))
				break
			}
			if q0 := int(st.first[e-1]); bytes.Equal(st.frames[q0*f:(q0+1)*f], frame) {
				st.ids[q] = e - 1
				break
			}
			at = (at + 1) & mask
		}
	}
	return len(st.first)
}

// stackStrides finds the most common s such that observation i's stack is
// observation i−s's shifted by one frame (the runner's envs take turns, so
// s is the number of envs), and the most common n such that next
// observation i is observation i+n (n-step returns: n times the envs).
func (s *scratch) stackStrides(h stackedShape) (shift, next int) {
	c, k, ids := h.c, h.k, s.st.ids
	var shiftHist, nextHist [maxStride + 1]int
	for i := range c {
		for by := 1; by <= min(maxStride, i); by++ {
			if ids[i*k] == ids[(i-by)*k+1] {
				shiftHist[by]++
			}
		}
		nxt := ids[(c+i)*k : (c+i+1)*k]
		for by := 1; by <= min(maxStride, c-1-i); by++ {
			if equalIDs(nxt, ids[(i+by)*k:(i+by+1)*k]) {
				nextHist[by]++
			}
		}
	}
	return mostCommon(shiftHist[:]), mostCommon(nextHist[:])
}

func equalIDs(a, b []int32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mostCommon is the index ≥ 1 with the largest count (the smallest on ties).
func mostCommon(hist []int) int {
	best := 1
	for i := 2; i < len(hist); i++ {
		if hist[i] > hist[best] {
			best = i
		}
	}
	return best
}

// appendRefs appends each slot's reference code, preferring the codes the
// runner's stream makes common (one repeated byte pattern costs zstd almost
// nothing) over explicit frame numbers.
func (s *scratch) appendRefs(raw []byte, h stackedShape) []byte {
	c, k, ids, first := h.c, h.k, s.st.ids, s.st.first
	for t := range 2 * c {
		col := 0 // the column's first stack: obs at 0, next at c
		if t >= c {
			col = c
		}
		for j := range k {
			q := t*k + j
			id := ids[q]
			switch {
			case int(first[id]) == q:
				raw = append(raw, refNew)
			case t >= c && t-c+h.nextSkip < c && ids[(t-c+h.nextSkip)*k+j] == id:
				raw = append(raw, refLater)
			case j < k-1 && t-h.shift >= col && ids[(t-h.shift)*k+j+1] == id:
				raw = append(raw, refShift)
			case t-1 >= col && ids[(t-1)*k+j] == id:
				raw = append(raw, refAbove)
			case j > 0 && ids[q-1] == id:
				raw = append(raw, refLeft)
			default:
				raw = binary.AppendUvarint(raw, uint64(id)+refFrame)
			}
		}
	}
	return raw
}

// baseOf is the frame frame x is coded against, or -1 (zeros): the frame
// before it in the stack where it is first used (its env's previous frame),
// else the previous frame of the batch.
func baseOf(x int, first, ids []int32, k int) int {
	if q := int(first[x]); q%k > 0 {
		return int(ids[q-1])
	}
	return x - 1
}

// appendFrameBytes appends every frame once, in order, coded against its
// base with transform tr.
func (s *scratch) appendFrameBytes(raw []byte, h stackedShape, tr byte) []byte {
	f, k, st := h.f, h.k, &s.st
	for x := range h.frames {
		q := int(st.first[x])
		cur := st.frames[q*f : (q+1)*f]
		b := baseOf(x, st.first, st.ids, k)
		if tr == transformPlain || b < 0 {
			raw = append(raw, cur...)
			continue
		}
		qb := int(st.first[b])
		base := st.frames[qb*f : (qb+1)*f]
		at := len(raw)
		raw = append(raw, cur...)
		dst := raw[at:]
		if tr == transformSub {
			for i, v := range base {
				dst[i] -= v
			}
		} else {
			for i, v := range base {
				dst[i] ^= v
			}
		}
	}
	return raw
}

// stackedZstdLevel compresses stacked-frames payloads: a batch is a few
// hundred kilobytes of mostly-zero frame differences, and on the slow links
// pixels are for, bytes cost more than the encoder's time. Measured on
// CartPolePixels-v1 batches of 32 (BENCHMARKS.md, "Pixels on the wire"):
// 11% fewer bytes than SpeedDefault for ~0.35 ms more a batch (a tenth of
// packing, which taking the stacks apart dominates).
const stackedZstdLevel = zstd.SpeedBetterCompression

var stackedEncoders sync.Map // zstd.EncoderLevel -> *zstd.Encoder

func stackedEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	if enc, ok := stackedEncoders.Load(level); ok {
		return enc.(*zstd.Encoder), nil
	}
	enc, err := newEncoder(level)
	if err != nil {
		return nil, err
	}
	actual, _ := stackedEncoders.LoadOrStore(level, enc)
	return actual.(*zstd.Encoder), nil
}

// compressStacked is CODEC_ZSTD for a stacked-frames layout: a mode byte
// (whole) and one magicless zstd frame at stackedLevel.
func (s *scratch) compressStacked(raw []byte) ([]byte, error) {
	enc, err := stackedEncoder(stackedLevel)
	if err != nil {
		return nil, err
	}
	out := append(s.zwhole[:0], zstdWhole)
	out = enc.EncodeAll(raw, out)
	if !bytes.HasPrefix(out[1:], zstdMagic) {
		return nil, errors.New("zstd encoder wrote no frame magic")
	}
	out = append(out[:1], out[1+len(zstdMagic):]...)
	s.zwhole = out
	return out, nil
}
