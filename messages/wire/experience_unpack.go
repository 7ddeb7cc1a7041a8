package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/qfleet/qfleet/messages"
)

// reader reads a decoded payload; the first error sticks.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) left() int { return len(r.buf) - r.off }

func (r *reader) byte(what string) byte {
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

func (r *reader) uvarint(what string, limit uint64) uint64 {
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

func (r *reader) bytes(what string, n int) []byte {
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

func (r *reader) floats(what string, n int) []float32 {
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

// shape is what the codec flags, count, obs_size and the payload's header
// say about a packed batch.
type shape struct {
	c, d        int  // transitions, values per observation
	frames      bool // CODEC_FRAMES
	half        bool // CODEC_FLOAT16
	valueBytes  int  // bytes per row value: 2 with half floats, else 4
	flags       byte
	width       int // bits per action
	sequential  bool
	rows        int // R: frames, or 2c without FRAMES
	stride      int // FRAMES only
	priorities  bool
	withPalette bool
}

// unpackExperience reads the payload's sections in the order the package
// doc lays them out, checking each before it allocates for it.
func unpackExperience(p *messages.PackedExperience) (*messages.ExperienceBatch, error) {
	codec := p.GetCodec()
	if codec&codecStacked != 0 {
		return unpackStacked(p)
	}
	if unknown := codec &^ (codecFrames | codecFloat16 | codecZstd); unknown != 0 {
		return nil, fmt.Errorf("unknown codec flags %#x", unknown)
	}
	h := shape{c: int(p.GetCount()), d: int(p.GetObsSize()), frames: codec&codecFrames != 0, half: codec&codecFloat16 != 0, valueBytes: 4}
	if uint64(h.c)*uint64(max(h.d, 1)) > MaxFloats {
		return nil, fmt.Errorf("%d transitions of %d values exceed %d", h.c, h.d, MaxFloats)
	}
	if h.half {
		h.valueBytes = 2
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	raw := p.GetPayload()
	if codec&codecZstd != 0 {
		var err error
		if raw, err = s.decompress(raw, h); err != nil {
			return nil, err
		}
	}
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d", len(raw), MaxBytes)
	}
	r := &reader{buf: raw}
	if err := h.readHeader(r); err != nil {
		return nil, err
	}
	if err := h.checkRoom(r); err != nil {
		return nil, err
	}
	high := r.bytes("rows", h.rows*h.d*h.valueBytes/2)
	out := &messages.ExperienceBatch{
		Runner: p.GetRunner(), Seq: p.GetSeq(), ObsSize: uint32(h.d), Count: uint32(h.c),
		WeightsVersion: p.GetWeightsVersion(), ReplyTo: p.GetReplyTo(),
		SentBefore: p.GetSentBefore(), RunnerIncarnation: p.GetRunnerIncarnation(), FrameStack: p.GetFrameStack(),
	}
	if h.frames {
		if err := s.readCodes(r, h); err != nil {
			return nil, err
		}
	}
	packed := r.bytes("actions", (h.c*h.width+7)/8)
	if err := readRewards(r, h, out); err != nil {
		return nil, err
	}
	if h.priorities {
		out.Priorities = r.floats("priorities", h.c)
	}
	low := r.bytes("rows (low bytes)", h.rows*h.d*h.valueBytes/2)
	if r.err != nil {
		return nil, r.err
	}
	if r.left() != 0 {
		return nil, fmt.Errorf("%d trailing payload bytes", r.left())
	}
	s.observations(out, h, high, low)
	out.Actions = unpackActions(packed, h.c, h.width)
	return out, nil
}

// decompress undoes CODEC_ZSTD (either mode) into s.raw, refusing output
// larger than the layout h.c and h.d can need.
func (s *scratch) decompress(raw []byte, h shape) ([]byte, error) {
	c, d := h.c, h.d
	// The largest layout count and obs_size allow: header, 2c rows,
	// 5-byte codes, 32-bit actions and three float columns.
	limit := 3 + 2*binary.MaxVarintLen64 + 2*c*d*h.valueBytes + 2*c*binary.MaxVarintLen32 + 4*c + 12*c
	return s.decompressUpTo(raw, limit)
}

// decompressUpTo undoes CODEC_ZSTD (either mode) into s.raw, refusing
// output larger than limit bytes.
func (s *scratch) decompressUpTo(raw []byte, limit int) ([]byte, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty zstd payload")
	}
	var err error
	switch mode, rest := raw[0], raw[1:]; mode {
	case zstdWhole:
		raw, err = unzstd(s.raw, rest, limit)
	case zstdSplit:
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, fmt.Errorf("split zstd payload: bad frame length (%d of %d bytes)", n, len(rest))
		}
		frame, tail := rest[k:k+int(n)], rest[k+int(n):]
		if len(tail) > limit {
			return nil, fmt.Errorf("split zstd payload: %d raw bytes exceed the %d the message can need", len(tail), limit)
		}
		if raw, err = unzstd(s.raw, frame, limit-len(tail)); err == nil {
			raw = append(raw, tail...)
		}
	default:
		return nil, fmt.Errorf("unknown zstd payload mode %d", mode)
	}
	if err != nil {
		return nil, err
	}
	s.raw = raw
	return raw, nil
}

// readHeader reads the header section into h: layout version, flags, action
// width and, with FRAMES, the frame count and the stride.
func (h *shape) readHeader(r *reader) error {
	if v := r.byte("layout version"); r.err == nil && v != layoutVersion {
		return fmt.Errorf("payload layout version %d, want %d", v, layoutVersion)
	}
	h.flags = r.byte("flags")
	h.width = int(r.byte("action width"))
	if r.err != nil {
		return r.err
	}
	if h.flags&^(flagPriorities|flagSequential|flagPalette) != 0 {
		return fmt.Errorf("unknown payload flags %#x", h.flags)
	}
	if h.width > 32 {
		return fmt.Errorf("action width %d bits exceeds 32", h.width)
	}
	h.sequential = h.flags&flagSequential != 0
	h.priorities = h.flags&flagPriorities != 0
	h.withPalette = h.flags&flagPalette != 0
	if h.sequential && !h.frames {
		return errors.New("sequential-observations flag without CODEC_FRAMES")
	}
	c := h.c
	h.rows = 2 * c
	if h.frames {
		h.rows = int(r.uvarint("frame count", uint64(2*c)))
		h.stride = int(r.uvarint("stride", maxStride))
		if r.err == nil && h.stride < 1 {
			return errors.New("stride 0")
		}
		if r.err == nil && h.sequential && h.rows < c {
			return fmt.Errorf("sequential observations need %d frames, have %d", c, h.rows)
		}
		if r.err == nil && c > 0 && h.rows == 0 {
			return fmt.Errorf("no frames for %d transitions", c)
		}
	}
	return r.err
}

// checkRoom makes sure that everything that scales with the count fits in
// what is left of the payload before anything is allocated for it (codes
// take at least one byte each).
func (h *shape) checkRoom(r *reader) error {
	c := h.c
	need := h.rows*h.d*h.valueBytes + (c*h.width+7)/8
	if h.withPalette {
		need += c + 8 // indices and at least one entry
	} else {
		need += 8 * c
	}
	if h.frames {
		need += c
		if !h.sequential {
			need += c
		}
	}
	if h.priorities {
		need += 4 * c
	}
	if r.left() < need {
		return fmt.Errorf("payload truncated: %d bytes left, %d transitions need at least %d", r.left(), c, need)
	}
	return nil
}

// readCodes reads the observation and next-observation codes (FRAMES) into
// s.obsIdx and s.nextIdx, and checks that every frame is used.
func (s *scratch) readCodes(r *reader, h shape) error {
	c, R := h.c, h.rows
	s.obsIdx = grow(s.obsIdx, c)
	s.nextIdx = grow(s.nextIdx, c)
	obsNew := c
	if !h.sequential {
		var err error
		if obsNew, err = s.readObsCodes(r, c, R); err != nil {
			return err
		}
	} else {
		for i := range c {
			s.obsIdx[i] = int32(i)
		}
	}
	nextNew := obsNew
	for i := range c {
		code := r.uvarint("next-observation code", uint64(R)+2)
		if r.err != nil {
			return r.err
		}
		var f int
		switch code {
		case 0:
			if i+h.stride >= c {
				return fmt.Errorf("next observation %d: stride %d points past %d transitions", i, h.stride, c)
			}
			f = int(s.obsIdx[i+h.stride])
		case 1:
			if nextNew >= R {
				return fmt.Errorf("next observation %d: new frame %d beyond %d frames", i, nextNew, R)
			}
			f = nextNew
			nextNew++
		case 2:
			if i == 0 {
				return errors.New("next observation 0: refers to a previous one")
			}
			f = int(s.nextIdx[i-1])
		default:
			f = int(code - 3)
			if f >= R {
				return fmt.Errorf("next observation %d: frame %d beyond %d frames", i, f, R)
			}
		}
		s.nextIdx[i] = int32(f)
	}
	if nextNew != R {
		return fmt.Errorf("%d frames, %d of them used", R, nextNew)
	}
	return nil
}

// readObsCodes reads the c observation codes of a non-sequential FRAMES
// payload of R frames into s.obsIdx, and returns how many frames they use.
func (s *scratch) readObsCodes(r *reader, c, R int) (int, error) {
	obsNew := 0
	for i := range c {
		code := r.uvarint("observation code", uint64(R))
		if r.err != nil {
			return 0, r.err
		}
		if code == 0 {
			if obsNew >= R {
				return 0, fmt.Errorf("observation %d: new frame %d beyond %d frames", i, obsNew, R)
			}
			s.obsIdx[i] = int32(obsNew)
			obsNew++
		} else {
			s.obsIdx[i] = int32(code - 1)
		}
	}
	return obsNew, nil
}

// readRewards reads the rewards and discounts section into out: a palette
// and its indices, or two float columns.
func readRewards(r *reader, h shape, out *messages.ExperienceBatch) error {
	c := h.c
	if !h.withPalette {
		out.Rewards = r.floats("rewards", c)
		out.Discounts = r.floats("discounts", c)
		return nil
	}
	pairs := int(r.uvarint("palette size", uint64(min(c, maxPalette))))
	if r.err == nil && pairs == 0 {
		return errors.New("empty reward/discount palette")
	}
	entries := r.bytes("palette", 8*pairs)
	idx := r.bytes("palette indices", c)
	if r.err != nil {
		return r.err
	}
	out.Rewards, out.Discounts = make([]float32, c), make([]float32, c)
	for i, k := range idx {
		if int(k) >= pairs {
			return fmt.Errorf("transition %d: palette entry %d of %d", i, k, pairs)
		}
		out.Rewards[i] = math.Float32frombits(binary.LittleEndian.Uint32(entries[8*int(k):]))
		out.Discounts[i] = math.Float32frombits(binary.LittleEndian.Uint32(entries[8*int(k)+4:]))
	}
	return nil
}

// observations decodes the row planes into out's observations and next
// observations: through the frame indices read by readCodes with FRAMES,
// else the rows are the observations, then the next observations.
func (s *scratch) observations(out *messages.ExperienceBatch, h shape, high, low []byte) {
	c, d, R := h.c, h.d, h.rows
	if !h.frames {
		rows := make([]float32, R*d)
		decodeRows(rows, high, low, R, d, h.half)
		out.Observations, out.NextObservations = rows[:c*d:c*d], rows[c*d:]
		return
	}
	s.floats = grow(s.floats, R*d)
	decodeRows(s.floats, high, low, R, d, h.half)
	both := make([]float32, 2*c*d)
	out.Observations, out.NextObservations = both[:c*d:c*d], both[c*d:]
	for i := range c {
		copy(out.Observations[i*d:(i+1)*d], s.floats[int(s.obsIdx[i])*d:])
		copy(out.NextObservations[i*d:(i+1)*d], s.floats[int(s.nextIdx[i])*d:])
	}
}

// unpackActions reads c actions of width bits, packed LSB first.
func unpackActions(packed []byte, c, width int) []uint32 {
	actions := make([]uint32, c)
	var acc uint64
	var nb, pos int
	mask := uint64(1)<<width - 1
	for i := range actions {
		for nb < width {
			acc |= uint64(packed[pos]) << nb
			pos++
			nb += 8
		}
		actions[i] = uint32(acc & mask)
		acc >>= width
		nb -= width
	}
	return actions
}

// decodeRows inverts appendRows: the high and low planes of R rows of d
// values into rows (row-major, len R·d).
func decodeRows(rows []float32, high, low []byte, R, d int, half bool) {
	n := R * d
	if half {
		hi, lo := high[:n], low[:n]
		for j := 0; j < d; j++ {
			var prev uint16
			for r := 0; r < R; r++ {
				k := j*R + r
				prev += unzigzag16(uint16(hi[k])<<8 | uint16(lo[k]))
				rows[r*d+j] = f16ToF32(ordered16(prev))
			}
		}
		return
	}
	p0, p1, p2, p3 := high[:n], high[n:2*n], low[:n], low[n:2*n]
	for j := 0; j < d; j++ {
		var prev uint32
		for r := 0; r < R; r++ {
			k := j*R + r
			prev += unzigzag32(uint32(p0[k])<<24 | uint32(p1[k])<<16 | uint32(p2[k])<<8 | uint32(p3[k]))
			rows[r*d+j] = math.Float32frombits(ordered32(prev))
		}
	}
}
