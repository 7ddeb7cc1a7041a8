package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/qfleet/qfleet/messages"
)

// unpackStacked decodes a CODEC_STACKED_FRAMES payload, checking every
// count against what is left of the payload before it allocates for it.
func unpackStacked(p *messages.PackedExperience) (*messages.ExperienceBatch, error) {
	codec := p.GetCodec()
	if other := codec &^ (codecStacked | codecZstd); other != 0 {
		return nil, fmt.Errorf("unknown codec flags %#x with CODEC_STACKED_FRAMES (it goes with CODEC_ZSTD only)", other)
	}
	h := stackedShape{c: int(p.GetCount()), d: int(p.GetObsSize()), k: int(p.GetFrameStack())}
	switch {
	case uint64(h.c)*uint64(max(h.d, 1)) > MaxFloats:
		return nil, fmt.Errorf("%d transitions of %d values exceed %d", h.c, h.d, MaxFloats)
	case h.k < 2 || h.k > maxFrameStack:
		return nil, fmt.Errorf("CODEC_STACKED_FRAMES with frame_stack %d: want 2..%d", h.k, maxFrameStack)
	case h.d == 0 || h.d%h.k != 0:
		return nil, fmt.Errorf("CODEC_STACKED_FRAMES: obs_size %d is not %d frames", h.d, h.k)
	case h.c == 0:
		return nil, errors.New("CODEC_STACKED_FRAMES without transitions")
	}
	h.f = h.d / h.k
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	raw := p.GetPayload()
	if codec&codecZstd != 0 {
		// The largest layout count, obs_size and frame_stack allow: header,
		// 5-byte codes, every slot's frame, 32-bit actions, float columns.
		c, nSlots := h.c, 2*h.c*h.k
		limit := 4 + 4*binary.MaxVarintLen64 + nSlots*binary.MaxVarintLen32 + 2*c*h.d + 4*c + 12*c
		var err error
		if raw, err = s.decompressUpTo(raw, limit); err != nil {
			return nil, err
		}
	}
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d", len(raw), MaxBytes)
	}
	r := &reader{buf: raw}
	rh, tr, err := h.readHeader(r)
	if err != nil {
		return nil, err
	}
	if err := h.checkRoom(r, rh); err != nil {
		return nil, err
	}
	if err := s.readRefs(r, h); err != nil {
		return nil, err
	}
	coded := r.bytes("frames", h.frames*h.f)
	out := &messages.ExperienceBatch{
		Runner: p.GetRunner(), Seq: p.GetSeq(), ObsSize: uint32(h.d), Count: uint32(h.c),
		WeightsVersion: p.GetWeightsVersion(), ReplyTo: p.GetReplyTo(),
		SentBefore: p.GetSentBefore(), RunnerIncarnation: p.GetRunnerIncarnation(), FrameStack: p.GetFrameStack(),
	}
	packed := r.bytes("actions", (h.c*rh.width+7)/8)
	if err := readRewards(r, rh, out); err != nil {
		return nil, err
	}
	if rh.priorities {
		out.Priorities = r.floats("priorities", h.c)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.left() != 0 {
		return nil, fmt.Errorf("%d trailing payload bytes", r.left())
	}
	s.decodeFrames(coded, h, tr)
	s.stacks(out, h)
	out.Actions = unpackActions(packed, h.c, rh.width)
	return out, nil
}

// readHeader reads the stacked layout's header into h (channels, frames,
// strides) and returns what the float layout's shape says of the rest
// (flags, action width) and the frame transform.
func (h *stackedShape) readHeader(r *reader) (shape, byte, error) {
	rh := shape{c: h.c}
	if v := r.byte("layout version"); r.err == nil && v != stackedLayoutVersion {
		return rh, 0, fmt.Errorf("stacked-frames layout version %d, want %d", v, stackedLayoutVersion)
	}
	rh.flags = r.byte("flags")
	rh.width = int(r.byte("action width"))
	tr := r.byte("frame transform")
	h.C = int(r.uvarint("channels", uint64(h.f)))
	h.frames = int(r.uvarint("frame count", uint64(2*h.c*h.k)))
	h.shift = int(r.uvarint("shift stride", maxStride))
	h.nextSkip = int(r.uvarint("next stride", maxStride))
	switch {
	case r.err != nil:
		return rh, 0, r.err
	case rh.flags&^(flagPriorities|flagPalette) != 0:
		return rh, 0, fmt.Errorf("unknown payload flags %#x", rh.flags)
	case rh.width > 32:
		return rh, 0, fmt.Errorf("action width %d bits exceeds 32", rh.width)
	case tr >= numTransforms:
		return rh, 0, fmt.Errorf("unknown frame transform %d", tr)
	case h.C == 0 || h.f%h.C != 0:
		return rh, 0, fmt.Errorf("%d channels do not divide a frame of %d values", h.C, h.f)
	case h.frames == 0:
		return rh, 0, fmt.Errorf("no frames for %d transitions", h.c)
	case h.shift == 0 || h.nextSkip == 0:
		return rh, 0, errors.New("stride 0")
	}
	rh.priorities = rh.flags&flagPriorities != 0
	rh.withPalette = rh.flags&flagPalette != 0
	return rh, tr, nil
}

// checkRoom makes sure that everything that scales with the counts fits in
// what is left of the payload (codes take at least a byte each).
func (h *stackedShape) checkRoom(r *reader, rh shape) error {
	c := h.c
	need := 2*c*h.k + h.frames*h.f + (c*rh.width+7)/8
	if rh.withPalette {
		need += c + 8
	} else {
		need += 8 * c
	}
	if rh.priorities {
		need += 4 * c
	}
	if r.left() < need {
		return fmt.Errorf("payload truncated: %d bytes left, %d transitions of %d frames need at least %d", r.left(), c, h.frames, need)
	}
	return nil
}

// readRefs reads every slot's reference code into s.st.ids and each
// frame's first slot into s.st.first, checking that every code refers to a
// frame already used (or the next new one) and that every frame is used.
func (s *scratch) readRefs(r *reader, h stackedShape) error {
	st, c, k := &s.st, h.c, h.k
	st.ids = grow(st.ids, 2*c*k)
	st.first = grow(st.first, h.frames)
	st.codes = grow(st.codes, 2*c)
	used := 0
	for t := range 2 * c {
		col := 0
		if t >= c {
			col = c
		}
		for j := range k {
			q := t*k + j
			code := r.uvarint("frame reference", uint64(h.frames)+refFrame-1)
			if r.err != nil {
				return r.err
			}
			var id int
			switch {
			case code == refNew:
				if used == h.frames {
					return fmt.Errorf("stack %d slot %d: new frame beyond %d frames", t, j, h.frames)
				}
				id = used
				st.first[id] = int32(q)
				used++
			case code == refLeft && j > 0:
				id = int(st.ids[q-1])
			case code == refShift && j < k-1 && t-h.shift >= col:
				id = int(st.ids[(t-h.shift)*k+j+1])
			case code == refAbove && t-1 >= col:
				id = int(st.ids[(t-1)*k+j])
			case code == refLater && t >= c && t-c+h.nextSkip < c:
				id = int(st.ids[(t-c+h.nextSkip)*k+j])
			case code >= refFrame:
				if id = int(code - refFrame); id >= used {
					return fmt.Errorf("stack %d slot %d: frame %d before its first use (%d used)", t, j, id, used)
				}
			default:
				return fmt.Errorf("stack %d slot %d: reference code %d points outside the batch", t, j, code)
			}
			st.ids[q] = int32(id)
		}
		st.codes[t] = stackCopyOf(st.ids, t, c, k, h.nextSkip)
	}
	if used != h.frames {
		return fmt.Errorf("%d frames, %d of them used", h.frames, used)
	}
	return nil
}

// Whole-stack copies the decoder can make instead of assembling a stack
// from its frames.
const (
	stackBuild = 0 // assemble from frames
	stackLater = 1 // next stack i is observation i+n
	stackAbove = 2 // the stack before it in its column
)

func stackCopyOf(ids []int32, t, c, k, n int) byte {
	row := ids[t*k : (t+1)*k]
	switch {
	case t >= c && t-c+n < c && equalIDs(row, ids[(t-c+n)*k:(t-c+n+1)*k]):
		return stackLater
	case t != 0 && t != c && equalIDs(row, ids[(t-1)*k:t*k]):
		return stackAbove
	}
	return stackBuild
}

// decodeFrames undoes the frame transform tr into s.st.frames (frame x at
// [x·f, (x+1)·f)), each frame against its base, which comes before it.
func (s *scratch) decodeFrames(coded []byte, h stackedShape, tr byte) {
	st, f := &s.st, h.f
	st.frames = grow(st.frames, h.frames*f)
	copy(st.frames, coded)
	if tr == transformPlain {
		return
	}
	for x := range h.frames {
		b := baseOf(x, st.first, st.ids, h.k)
		if b < 0 {
			continue
		}
		dst, base := st.frames[x*f:(x+1)*f], st.frames[b*f:(b+1)*f]
		if tr == transformSub {
			for i, v := range base {
				dst[i] += v
			}
		} else {
			for i, v := range base {
				dst[i] ^= v
			}
		}
	}
}

// stacks builds out's observations and next observations from the frames:
// value c of frame j at pixel p at (p·k + j)·C + c.
func (s *scratch) stacks(out *messages.ExperienceBatch, h stackedShape) {
	st, c, d, k, f, C := &s.st, h.c, h.d, h.k, h.f, h.C
	both := make([]float32, 2*c*d)
	out.Observations, out.NextObservations = both[:c*d:c*d], both[c*d:]
	for t := range 2 * c {
		row := both[t*d : (t+1)*d]
		switch st.codes[t] {
		case stackLater:
			u := t - c + h.nextSkip
			copy(row, both[u*d:(u+1)*d])
			continue
		case stackAbove:
			copy(row, both[(t-1)*d:t*d])
			continue
		}
		frs := st.stack[:0]
		for j := range k {
			x := int(st.ids[t*k+j])
			frs = append(frs, st.frames[x*f:(x+1)*f])
		}
		st.stack = frs
		if C == 1 && k == 4 { // gray frames stacked 4 deep (DQN's Atari): unrolled
			f0, f1, f2, f3 := frs[0][:f], frs[1][:f], frs[2][:f], frs[3][:f]
			for p := range f0 {
				r := row[4*p : 4*p+4 : 4*p+4]
				r[0], r[1], r[2], r[3] = float32(f0[p]), float32(f1[p]), float32(f2[p]), float32(f3[p])
			}
			continue
		}
		if C == 1 { // one value a pixel (gray): row in order
			for p := range f {
				r := row[p*k : (p+1)*k]
				for j, fr := range frs {
					r[j] = float32(fr[p])
				}
			}
			continue
		}
		for j, fr := range frs {
			for p, at := 0, j*C; p < f; p, at = p+C, at+k*C {
				for i, v := range fr[p : p+C] {
					row[at+i] = float32(v)
				}
			}
		}
	}
}
