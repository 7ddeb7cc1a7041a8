package wire_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// streamStats counts how a generated stream's episodes ended.
type streamStats struct {
	terminatedInside, truncatedInside int // episode ends with the batch continuing after them
	terminated, truncated             int
}

// cartPoleStream builds experience batches exactly as a runner does: a real
// CartPole-v1 episode stream through the n-step accumulator, a batch cut as
// soon as it holds batchSize transitions (an episode-end burst may overshoot).
// eps is the probability of a random action; otherwise the action is a simple
// balancing rule (push towards the pole's fall), which reaches the 500-step
// time limit. eps = 1 is a uniformly random policy.
func cartPoleStream(tb testing.TB, nBatches, batchSize, nstep int, eps float64, seed uint64) ([]*messages.ExperienceBatch, streamStats) {
	tb.Helper()
	env, err := envs.Make("CartPole-v1")
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	acc := actors.NewNStepAccumulator(nstep, 0.99)
	var out []*messages.ExperienceBatch
	var st streamStats
	newBatch := func() *messages.ExperienceBatch {
		return &messages.ExperienceBatch{
			Runner: "runner-07", ObsSize: 4, Seq: uint64(len(out) + 1), WeightsVersion: 1234 + uint64(len(out)),
			ReplyTo: &messages.ActorRef{Address: "10.0.3.17:8091", Id: "runner-07"},
		}
	}
	b := newBatch()
	emit := func(obs []float32, action int, reward, discount float64, nextObs []float32) {
		b.Append(obs, action, reward, discount, nextObs)
	}
	obs := append([]float32(nil), env.Reset(rng.Int64())...)
	for len(out) < nBatches {
		a := 0
		if obs[2]+obs[3] > 0 {
			a = 1
		}
		if rng.Float64() < eps {
			a = rng.IntN(2)
		}
		next, reward, terminated, truncated := env.Step(a)
		acc.Add(obs, a, reward, next, terminated, truncated, emit)
		full := int(b.Count) >= batchSize
		if terminated || truncated {
			if terminated {
				st.terminated++
			} else {
				st.truncated++
			}
			if !full && b.Count > 0 {
				if terminated {
					st.terminatedInside++
				} else {
					st.truncatedInside++
				}
			}
			obs = append(obs[:0], env.Reset(rng.Int64())...)
		} else {
			obs = append(obs[:0], next...)
		}
		if full {
			out = append(out, b)
			b = newBatch()
		}
	}
	return out, st
}

// mixedStream is the stream the size target is stated for: per episode ε is
// 1 (random, short episodes ending in termination) or 0.05 (long episodes,
// mostly truncated at 500 steps).
func mixedStream(tb testing.TB, nBatches, batchSize int, seed uint64) []*messages.ExperienceBatch {
	long, _ := cartPoleStream(tb, nBatches/2, batchSize, 3, 0.05, seed)
	short, _ := cartPoleStream(tb, nBatches-nBatches/2, batchSize, 3, 1, seed+1)
	return append(long, short...)
}

var allOptions = func() []wire.Options {
	var all []wire.Options
	for i := range 8 {
		all = append(all, wire.Options{Frames: i&1 != 0, Float16: i&2 != 0, Zstd: i&4 != 0})
	}
	return all
}()

// sameBatch reports how got differs from want; with half, observations must
// equal want's rounded to half precision (and back) bit for bit.
func sameBatch(got, want *messages.ExperienceBatch, half bool) error {
	switch {
	case got.GetRunner() != want.GetRunner() || got.GetSeq() != want.GetSeq() || got.GetCount() != want.GetCount() ||
		got.GetObsSize() != want.GetObsSize() || got.GetWeightsVersion() != want.GetWeightsVersion():
		return fmt.Errorf("header: got %q/%d/%d/%d/%d, want %q/%d/%d/%d/%d", got.GetRunner(), got.GetSeq(), got.GetCount(), got.GetObsSize(), got.GetWeightsVersion(),
			want.GetRunner(), want.GetSeq(), want.GetCount(), want.GetObsSize(), want.GetWeightsVersion())
	case got.GetFrameStack() != want.GetFrameStack():
		return fmt.Errorf("frame_stack %d, want %d", got.GetFrameStack(), want.GetFrameStack())
	case !proto.Equal(got.GetReplyTo(), want.GetReplyTo()):
		return fmt.Errorf("reply_to %v, want %v", got.GetReplyTo(), want.GetReplyTo())
	case fmt.Sprint(got.GetActions()) != fmt.Sprint(want.GetActions()):
		return fmt.Errorf("actions %v, want %v", got.GetActions(), want.GetActions())
	}
	for _, f := range []struct {
		name      string
		got, want []float32
		half      bool
	}{
		{"observations", got.GetObservations(), want.GetObservations(), half},
		{"next_observations", got.GetNextObservations(), want.GetNextObservations(), half},
		{"rewards", got.GetRewards(), want.GetRewards(), false},
		{"discounts", got.GetDiscounts(), want.GetDiscounts(), false},
		{"priorities", got.GetPriorities(), want.GetPriorities(), false},
	} {
		if len(f.got) != len(f.want) {
			return fmt.Errorf("%s: %d values, want %d", f.name, len(f.got), len(f.want))
		}
		for i, w := range f.want {
			if f.half {
				w = wire.F16ToF32(wire.F32ToF16(w))
			}
			if math.Float32bits(f.got[i]) != math.Float32bits(w) {
				return fmt.Errorf("%s[%d] = %v (%#x), want %v (%#x)", f.name, i, f.got[i], math.Float32bits(f.got[i]), w, math.Float32bits(w))
			}
		}
	}
	return nil
}

// edgeBatches are hand-made batches that exercise the codec's corners:
// empty, single, duplicate and reordered rows, NaN and signed zeros, wide
// actions, priorities, empty observations.
func edgeBatches() []*messages.ExperienceBatch {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	return []*messages.ExperienceBatch{
		{Runner: "empty", ObsSize: 4},
		{Runner: "one", Seq: 1, ObsSize: 2, Count: 1, Observations: []float32{1, 2}, NextObservations: []float32{3, 4},
			Actions: []uint32{1}, Rewards: []float32{1}, Discounts: []float32{0.5}},
		{Runner: "dup-obs", Seq: 2, ObsSize: 2, Count: 4,
			Observations:     []float32{1, 1, 2, 2, 1, 1, 0, negZero},
			NextObservations: []float32{2, 2, 1, 1, 0, 0, nan, 7},
			Actions:          []uint32{0, 300, 70000, 1 << 31}, Rewards: []float32{1, 2, 3, 4}, Discounts: []float32{1, 0, nan, -1},
			Priorities: []float32{0.5, 1, 2, 4}, WeightsVersion: 9,
			ReplyTo: &messages.ActorRef{Address: "a:1", Id: "r"}},
		{Runner: "no-obs", Seq: 3, ObsSize: 0, Count: 3, Actions: []uint32{0, 0, 0},
			Rewards: []float32{1, 1, 1}, Discounts: []float32{0, 0, 0}},
		{Runner: "big-values", Seq: 4, ObsSize: 3, Count: 2,
			Observations:     []float32{1e30, -1e-30, float32(math.Inf(1)), 65519, 65520, 1e-8},
			NextObservations: []float32{65519, 65520, 1e-8, 1e30, -1e-30, float32(math.Inf(-1))},
			Actions:          []uint32{5, 3}, Rewards: []float32{0, 0}, Discounts: []float32{0, 0}},
	}
}

func TestWireRoundTripCartPole(t *testing.T) {
	random, rst := cartPoleStream(t, 20, 64, 3, 1, 1)
	balanced, bst := cartPoleStream(t, 40, 64, 3, 0.05, 2)
	if rst.terminatedInside == 0 || bst.truncatedInside == 0 {
		t.Fatalf("stream lacks episode ends inside a batch: random %+v, balanced %+v", rst, bst)
	}
	t.Logf("episode ends: random stream %+v, balanced stream %+v", rst, bst)
	batches := append(append(random, balanced...), edgeBatches()...)
	// Priorities on some CartPole batches too.
	for i, b := range random[:5] {
		b.Priorities = make([]float32, b.Count)
		for j := range b.Priorities {
			b.Priorities[j] = float32(i*j) * 0.125
		}
	}
	for _, o := range allOptions {
		for i, b := range batches {
			p, err := wire.PackExperience(b, o)
			if err != nil {
				t.Fatalf("%v batch %d (%s): pack: %v", o, i, b.Runner, err)
			}
			wantCodec := uint32(0)
			if o.Frames {
				wantCodec |= uint32(messages.Codec_CODEC_FRAMES)
			}
			if o.Float16 {
				wantCodec |= uint32(messages.Codec_CODEC_FLOAT16)
			}
			if o.Zstd {
				wantCodec |= uint32(messages.Codec_CODEC_ZSTD)
			}
			if p.Codec != wantCodec {
				t.Fatalf("%v: codec %#x, want %#x", o, p.Codec, wantCodec)
			}
			// Through the real wire format.
			buf, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var q messages.PackedExperience
			if err := proto.Unmarshal(buf, &q); err != nil {
				t.Fatal(err)
			}
			got, err := wire.UnpackExperience(&q)
			if err != nil {
				t.Fatalf("%v batch %d (%s): unpack: %v", o, i, b.Runner, err)
			}
			if err := sameBatch(got, b, o.Float16); err != nil {
				t.Fatalf("%v batch %d (%s): %v", o, i, b.Runner, err)
			}
			if b.Runner == "runner-07" && o.Float16 {
				// Half precision: within 2⁻¹¹ relative (CartPole values are normal halves).
				for k, v := range b.Observations {
					if d := math.Abs(float64(got.Observations[k] - v)); d > math.Abs(float64(v))/2048+1e-7 {
						t.Fatalf("%v: obs %v decoded as %v", o, v, got.Observations[k])
					}
				}
			}
		}
	}
}

func TestWireFramesFindTheNStepPattern(t *testing.T) {
	batches, _ := cartPoleStream(t, 10, 64, 3, 0.05, 3)
	for _, b := range batches {
		nObs, stride, rows := wire.Dedup(b)
		if stride != 3 || nObs != int(b.Count) {
			t.Fatalf("stride %d, %d observation frames for %d transitions; want 3 and all distinct", stride, nObs, b.Count)
		}
		// Distinct rows: the observations, three next observations past the
		// end, plus one terminal row per episode end.
		if extra := rows - nObs; extra < 3 || extra > 3+3 {
			t.Fatalf("%d extra frames", extra)
		}
	}
}

func TestWireBytesPerTransition(t *testing.T) {
	streams := []struct {
		name    string
		batches []*messages.ExperienceBatch
	}{
		{"mixed", mixedStream(t, 40, 64, 11)},
		{"random", func() []*messages.ExperienceBatch { b, _ := cartPoleStream(t, 20, 64, 3, 1, 12); return b }()},
	}
	for _, st := range streams {
		var n, rawBytes int
		for _, b := range st.batches {
			n += int(b.Count)
			rawBytes += proto.Size(b)
		}
		t.Logf("%s stream, %d batches, %d transitions: ExperienceBatch %.2f B/transition", st.name, len(st.batches), n, float64(rawBytes)/float64(n))
		for _, o := range allOptions {
			var size int
			for _, b := range st.batches {
				p, err := wire.PackExperience(b, o)
				if err != nil {
					t.Fatal(err)
				}
				size += proto.Size(p)
			}
			per := float64(size) / float64(n)
			t.Logf("  %-32v %6.2f B/transition", o, per)
			if o == wire.DefaultOptions && per > 12 {
				t.Errorf("%s stream: %v packs to %.2f B/transition, want ≤ 12", st.name, o, per)
			}
			if o == (wire.Options{}) && per >= float64(rawBytes)/float64(n) {
				t.Errorf("raw codec (%.2f) no smaller than the ExperienceBatch (%.2f)", per, float64(rawBytes)/float64(n))
			}
		}
	}
}

// packedSeeds are valid packings of small batches with every option, then
// small stacked-frames packings (stackedSeeds).
func packedSeeds(tb testing.TB) []*messages.PackedExperience {
	batches, _ := cartPoleStream(tb, 2, 12, 3, 1, 5)
	batches = append(batches, edgeBatches()[1:3]...)
	var out []*messages.PackedExperience
	for _, b := range batches {
		for _, o := range allOptions {
			p, err := wire.PackExperience(b, o)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return append(out, stackedSeeds(tb)...)
}

// The fuzz targets' codec argument carries frame_stack in its top byte
// (the fuzzer then varies both, and the corpus files keep their format).
func fuzzCodec(p *messages.PackedExperience) uint32 { return p.Codec | p.FrameStack<<24 }

func fromFuzzCodec(codec uint32) (codecFlags, frameStack uint32) {
	return codec & (1<<24 - 1), codec >> 24
}

// unpackMustFail checks that p is refused, without a panic, with an error
// that mentions want.
func unpackMustFail(t *testing.T, name string, p *messages.PackedExperience, want string) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: panic %v", name, r)
			}
		}()
		_, err = wire.UnpackExperience(p)
	}()
	if err == nil {
		t.Fatalf("%s: no error", name)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q does not mention %q", name, err, want)
	}
}

// TestUnpackHostile: valid packings, truncated, extended, with wrong
// counts, sizes and codec flags, and corrupted byte by byte.
func TestUnpackHostile(t *testing.T) {
	mustFail := func(name string, p *messages.PackedExperience, want string) {
		t.Helper()
		unpackMustFail(t, name, p, want)
	}
	mustFail("nil", nil, "nil")
	for i, p := range packedSeeds(t) {
		name := fmt.Sprintf("seed %d codec %#x", i, p.Codec)
		// Every truncation.
		for n := 0; n < len(p.Payload); n++ {
			q := proto.Clone(p).(*messages.PackedExperience)
			q.Payload = q.Payload[:n]
			mustFail(fmt.Sprintf("%s truncated to %d", name, n), q, "")
		}
		// Trailing garbage.
		q := proto.Clone(p).(*messages.PackedExperience)
		q.Payload = append(q.Payload, 0)
		mustFail(name+" trailing byte", q, "")
		// Wrong counts and sizes.
		for _, dc := range []int{-1, 1, 1 << 20, math.MaxUint32 - int(p.Count)} {
			q := proto.Clone(p).(*messages.PackedExperience)
			q.Count = uint32(int(q.Count) + dc)
			mustFail(fmt.Sprintf("%s count %d", name, q.Count), q, "")
		}
		q = proto.Clone(p).(*messages.PackedExperience)
		q.ObsSize++
		mustFail(name+" obs_size+1", q, "")
		// Unknown codec flags, and the stacked-frames flag on another layout.
		for _, c := range []uint32{8, 32, 1 << 31} {
			q := proto.Clone(p).(*messages.PackedExperience)
			q.Codec |= c
			mustFail(fmt.Sprintf("%s codec %#x", name, q.Codec), q, "unknown codec")
		}
		if p.Codec&stackedCodec == 0 {
			q := proto.Clone(p).(*messages.PackedExperience)
			q.Codec |= stackedCodec
			mustFail(fmt.Sprintf("%s codec %#x", name, q.Codec), q, "CODEC_STACKED_FRAMES")
		}
		// Every single-byte corruption of small payloads must not panic.
		if len(p.Payload) < 400 {
			for k := range p.Payload {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					q := proto.Clone(p).(*messages.PackedExperience)
					q.Payload[k] ^= x
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("%s byte %d ^ %#x: panic %v", name, k, x, r)
							}
						}()
						if b, err := wire.UnpackExperience(q); err == nil {
							if err := actors.NewTable(int(b.ObsSize), 1).CheckShape(b); err != nil {
								t.Fatalf("%s byte %d ^ %#x: decoded an inconsistent batch: %v", name, k, x, err)
							}
						}
					}()
				}
			}
		}
	}
}

// TestUnpackHostileLayout: hand-made payloads that break each rule of the
// layout, and counts beyond the limits.
func TestUnpackHostileLayout(t *testing.T) {
	mustFail := func(name string, p *messages.PackedExperience, want string) {
		t.Helper()
		unpackMustFail(t, name, p, want)
	}
	// Hand-made frames payloads (no zstd): 2 transitions of 1 value.
	// Layout: header, high row bytes, codes, actions, rewards, discounts, low
	// row bytes (float32: 2+2 bytes per value).
	hdr := func(flags byte, frames, stride byte) []byte { return []byte{1, flags, 1, frames, stride} }
	tail := append([]byte{0}, make([]byte, 16)...) // 2 one-bit actions, rewards, discounts
	frames := func(h []byte, R int, codes []byte) *messages.PackedExperience {
		payload := bytes.Join([][]byte{h, make([]byte, 2*R), codes, tail, make([]byte, 2*R)}, nil)
		return &messages.PackedExperience{Count: 2, ObsSize: 1, Codec: uint32(messages.Codec_CODEC_FRAMES), Payload: payload}
	}
	ok := frames(hdr(2, 3, 1), 3, []byte{0, 1}) // obs 0,1; next 1 (stride), 2 (new)
	if _, err := wire.UnpackExperience(ok); err != nil {
		t.Fatalf("hand-made payload: %v", err)
	}
	mustFail("layout version", frames([]byte{2, 2, 1, 3, 1}, 3, []byte{0, 1}), "layout version")
	mustFail("flags", frames(hdr(0x82, 3, 1), 3, []byte{0, 1}), "flags")
	mustFail("action width", frames([]byte{1, 2, 33, 3, 1}, 3, []byte{0, 1}), "action width")
	mustFail("too many frames", frames(hdr(2, 5, 1), 5, []byte{0, 1}), "frame count")
	mustFail("stride 0", frames(hdr(2, 3, 0), 3, []byte{0, 1}), "stride")
	mustFail("stride too large", frames(hdr(2, 3, 65), 3, []byte{0, 1}), "stride")
	mustFail("stride past end", frames(hdr(2, 3, 1), 3, []byte{0, 0}), "past")
	mustFail("next frame out of range", frames(hdr(2, 3, 1), 3, []byte{0, 3 + 3}), "next-observation code")
	mustFail("too many new frames", frames(hdr(2, 2, 1), 2, []byte{1, 1}), "new frame")
	mustFail("previous of the first", frames(hdr(2, 3, 1), 3, []byte{2, 1}), "previous")
	mustFail("unused frame", frames(hdr(2, 3, 1), 3, []byte{0, 0 + 3}), "used")
	mustFail("obs frame out of range", frames(hdr(0, 3, 1), 3, []byte{0, 4, 0, 1}), "observation code")
	mustFail("sequential needs frames", frames(hdr(2, 1, 1), 1, []byte{0, 0}), "sequential")
	mustFail("bad varint", frames(hdr(2, 3, 1), 3, []byte{0, 0xff}), "")
	mustFail("no frames", frames(hdr(0, 0, 1), 0, []byte{0, 0, 0, 0}), "no frames")
	mustFail("low bytes missing", &messages.PackedExperience{Count: 2, ObsSize: 1, Codec: ok.Codec, Payload: ok.Payload[:len(ok.Payload)-6]}, "")
	// Palette (flag 4): size, entries, one index byte per transition.
	palette := func(size byte, idx ...byte) *messages.PackedExperience {
		payload := bytes.Join([][]byte{hdr(2|4, 3, 1), make([]byte, 6), {0, 1}, {0}, {size}, make([]byte, 8*int(size)), idx, make([]byte, 6)}, nil)
		return &messages.PackedExperience{Count: 2, ObsSize: 1, Codec: ok.Codec, Payload: payload}
	}
	if _, err := wire.UnpackExperience(palette(2, 0, 1)); err != nil {
		t.Fatalf("hand-made palette payload: %v", err)
	}
	mustFail("palette index out of range", palette(2, 0, 2), "palette entry")
	mustFail("empty palette", palette(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "empty reward/discount palette")
	mustFail("palette larger than count", palette(3, 0, 0), "palette size")
	mustFail("sequential without frames codec", &messages.PackedExperience{Count: 1, ObsSize: 1, Payload: append([]byte{1, 2, 0}, make([]byte, 16)...)}, "sequential")

	// Too large for the limits, before anything is read.
	mustFail("huge batch", &messages.PackedExperience{Count: 1 << 24, ObsSize: 84 * 84, Payload: []byte{1, 0, 0}}, "exceed")
}

// TestUnpackHostileZstd: garbage, a frame without content size, bombs in
// either mode, a frame whose content does not match its header.
func TestUnpackHostileZstd(t *testing.T) {
	mustFail := func(name string, p *messages.PackedExperience, want string) {
		t.Helper()
		unpackMustFail(t, name, p, want)
	}
	zs := func(payload []byte) *messages.PackedExperience {
		return &messages.PackedExperience{Count: 64, ObsSize: 4, Codec: uint32(messages.Codec_CODEC_ZSTD | messages.Codec_CODEC_FRAMES), Payload: payload}
	}
	mustFail("zstd garbage", zs([]byte("definitely not zstd")), "zstd")
	mustFail("zstd magic only", zs([]byte{0x28, 0xb5, 0x2f, 0xfd}), "zstd")
	var stream bytes.Buffer
	w, _ := zstd.NewWriter(&stream)
	w.Write(make([]byte, 100))
	w.Close()
	// Payloads are a mode byte and a magicless frame (wire.ZstdWhole), or a mode
	// byte, a frame length, a frame and raw bytes (wire.ZstdSplit).
	whole := func(frame []byte) []byte { return append([]byte{wire.ZstdWhole}, frame[len(wire.ZstdMagic):]...) }
	mustFail("zstd without content size", zs(whole(stream.Bytes())), "content size")
	mustFail("zstd empty", zs(nil), "empty")
	mustFail("zstd unknown mode", zs([]byte{7, 1, 2, 3}), "mode")
	mustFail("zstd split bad length", zs([]byte{wire.ZstdSplit, 100, 1, 2, 3}), "frame length")
	mustFail("zstd split bad varint", zs([]byte{wire.ZstdSplit, 0x80}), "frame length")
	enc, _, _ := wire.ZstdCoders()
	bomb := enc.EncodeAll(make([]byte, 16<<20), nil)
	t.Logf("16 MiB bomb compresses to %d bytes", len(bomb))
	mustFail("zstd bomb", zs(whole(bomb)), "exceeds")
	split := append([]byte{wire.ZstdSplit}, binary.AppendUvarint(nil, uint64(len(bomb)-4))...)
	mustFail("zstd bomb, split", zs(append(split, bomb[4:]...)), "exceeds")
	mustFail("zstd split, raw tail too long", zs(append([]byte{wire.ZstdSplit, 0}, make([]byte, 8000)...)), "exceed")
	// A frame whose content does not match its header.
	lie := enc.EncodeAll(bytes.Repeat([]byte{1, 2, 3}, 1000), nil)
	lie[len(lie)/2] ^= 0x55
	if _, err := wire.UnpackExperience(zs(whole(lie))); err == nil {
		t.Fatal("corrupted zstd frame decoded without error")
	}
}

// FuzzUnpackExperience checks that no input panics and that whatever decodes
// is a consistent batch that packs and unpacks to itself.
func FuzzUnpackExperience(f *testing.F) {
	for _, p := range packedSeeds(f) {
		f.Add(fuzzCodec(p), p.Count, p.ObsSize, p.Payload)
	}
	f.Fuzz(func(t *testing.T, codec, count, obsSize uint32, payload []byte) {
		codec, frameStack := fromFuzzCodec(codec)
		p := &messages.PackedExperience{Runner: "fuzz", Codec: codec, Count: count, ObsSize: obsSize, Payload: payload, FrameStack: frameStack}
		b, err := wire.UnpackExperience(p)
		if err != nil {
			return
		}
		if err := actors.NewTable(int(b.ObsSize), 1).CheckShape(b); err != nil {
			t.Fatalf("inconsistent batch decoded: %v", err)
		}
		if b.FrameStack != frameStack {
			t.Fatalf("frame_stack %d decoded as %d", frameStack, b.FrameStack)
		}
		// Options.Frames stands for both frame codecs: the packer picks
		// stacked frames for a stacked batch of bytes.
		o := wire.Options{Frames: codec&(1|16) != 0, Float16: codec&2 != 0, Zstd: codec&4 != 0}
		q, err := wire.PackExperience(b, o)
		if err != nil {
			t.Fatalf("decoded batch does not pack: %v", err)
		}
		b2, err := wire.UnpackExperience(q)
		if err != nil {
			t.Fatalf("repacked batch does not unpack: %v", err)
		}
		if err := sameBatch(b2, b, o.Float16); err != nil {
			t.Fatalf("repacked batch differs: %v", err)
		}
	})
}

// TestWireFuzzSeeds checks that the committed seed corpus decodes (it is
// made of valid payloads); QFLEET_WRITE_FUZZ_SEEDS=1 regenerates it.
func TestWireFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzUnpackExperience")
	if os.Getenv("QFLEET_WRITE_FUZZ_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range packedSeeds(t) {
			if i%3 != 0 && p.Count > 1 && p.Codec&stackedCodec == 0 { // a few of each kind is plenty
				continue
			}
			body := fmt.Sprintf("go test fuzz v1\nuint32(%d)\nuint32(%d)\nuint32(%d)\n[]byte(%q)\n", fuzzCodec(p), p.Count, p.ObsSize, p.Payload)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("valid-%02d-codec%d", i, fuzzCodec(p))), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "valid-*"))
	if err != nil || len(files) < 4 {
		t.Fatalf("seed corpus: %d files, %v", len(files), err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var codec, count, obsSize uint32
		if len(lines) != 5 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a fuzz corpus file", name)
		}
		fmt.Sscanf(lines[1], "uint32(%d)", &codec)
		fmt.Sscanf(lines[2], "uint32(%d)", &count)
		fmt.Sscanf(lines[3], "uint32(%d)", &obsSize)
		var payload string
		if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(lines[4], "[]byte("), ")"), "%q", &payload); err != nil {
			t.Fatalf("%s: payload: %v", name, err)
		}
		codec, frameStack := fromFuzzCodec(codec)
		p := &messages.PackedExperience{Codec: codec, Count: count, ObsSize: obsSize, Payload: []byte(payload), FrameStack: frameStack}
		if _, err := wire.UnpackExperience(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
