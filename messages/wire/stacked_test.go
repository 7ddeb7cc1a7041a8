package wire_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/pixels"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// stackedStream builds batches of stacked observations as a runner does:
// the vector's observations stacked k deep by envs.FrameStack, each env's
// steps through its own n-step accumulator, the envs' transitions in turn;
// a batch is cut when it holds exactly size transitions. act chooses env
// i's action.
func stackedStream(tb testing.TB, vec envs.VecEnv, k, nstep, size, nBatches int, seed int64, act func(i int) int) []*messages.ExperienceBatch {
	tb.Helper()
	stacked, err := envs.FrameStack(vec, k)
	if err != nil {
		tb.Fatal(err)
	}
	n, d := stacked.Len(), stacked.Spec().ObsSize()
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = seed + int64(i)
	}
	first, err := stacked.Reset(seeds)
	if err != nil {
		tb.Fatal(err)
	}
	obs := append([]float32(nil), first...)
	accs := make([]*actors.NStepAccumulator, n)
	for i := range accs {
		accs[i] = actors.NewNStepAccumulator(nstep, 0.99)
	}
	var out []*messages.ExperienceBatch
	var b *messages.ExperienceBatch
	emit := func(o []float32, action int, reward, discount float64, next []float32) {
		if b == nil {
			b = &messages.ExperienceBatch{Runner: "pixels-runner", Seq: uint64(len(out) + 1), ObsSize: uint32(d), FrameStack: uint32(k),
				WeightsVersion: 77, ReplyTo: &messages.ActorRef{Address: "10.0.3.17:8091", Id: "pixels-runner"}}
		}
		b.Append(o, action, reward, discount, next)
		if int(b.Count) == size {
			out, b = append(out, b), nil
		}
	}
	actions := make([]int32, n)
	for len(out) < nBatches {
		for i := range actions {
			actions[i] = int32(act(i))
		}
		st, err := stacked.Step(actions)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			next := st.Obs[i*d : (i+1)*d]
			if st.Done(i) {
				next = st.Final[i*d : (i+1)*d]
			}
			accs[i].Add(obs[i*d:(i+1)*d], int(actions[i]), st.Rewards[i], next, st.Terminated[i], st.Truncated[i], emit)
		}
		copy(obs, st.Obs)
	}
	return out[:nBatches]
}

// pixelStream is stackedStream of CartPolePixels-v1: nEnvs envs, each
// acting at random with probability eps, else balancing the pole (which
// reaches the 500-step limit and keeps the cart nearly still).
func pixelStream(tb testing.TB, nEnvs, k, nstep, size, nBatches int, eps float64, seed uint64) []*messages.ExperienceBatch {
	tb.Helper()
	var cps []*pixels.CartPolePixels
	vec, err := envs.NewVec(nEnvs, func() (envs.Env, error) {
		e := pixels.NewCartPolePixels()
		cps = append(cps, e)
		return e, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	return stackedStream(tb, vec, k, nstep, size, nBatches, int64(seed), func(i int) int {
		if rng.Float64() < eps {
			return rng.IntN(2)
		}
		if s := cps[i].State(); s[2]+0.5*s[3] > 0 {
			return 1
		}
		return 0
	})
}

// dotEnv is a tiny pixel env for small payloads: a line of px pixels of ch
// channels with one lit pixel that the actions move; an episode ends at
// random (terminated) or after 12 steps (truncated).
type dotEnv struct {
	px, ch, pos, steps int
	rng                *rand.Rand
	obs                []float32
}

func (e *dotEnv) Spec() envs.Spec {
	return envs.Spec{ID: "dot", ObsShape: []int{e.px, e.ch}, ObsDType: envs.Uint8, NumActions: 3, MaxEpisodeSteps: 12}
}

func (e *dotEnv) draw() []float32 {
	for p := range e.px {
		for c := range e.ch {
			v := float32(10 + c)
			if p == e.pos {
				v = float32(200 + 10*c + e.steps%5)
			}
			e.obs[p*e.ch+c] = v
		}
	}
	return e.obs
}

func (e *dotEnv) Reset(seed int64) []float32 {
	e.rng = rand.New(rand.NewPCG(uint64(seed), 1))
	e.pos, e.steps = e.rng.IntN(e.px), 0
	return e.draw()
}

func (e *dotEnv) Step(a int) ([]float32, float64, bool, bool) {
	e.pos = (e.pos + a + e.px - 1) % e.px
	e.steps++
	return e.draw(), 1, e.rng.IntN(9) == 0, e.steps >= 12
}

// dotStream is stackedStream of nEnvs dotEnvs at random.
func dotStream(tb testing.TB, nEnvs, px, ch, k, nstep, size, nBatches int, seed uint64) []*messages.ExperienceBatch {
	tb.Helper()
	vec, err := envs.NewVec(nEnvs, func() (envs.Env, error) {
		return &dotEnv{px: px, ch: ch, obs: make([]float32, px*ch)}, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	return stackedStream(tb, vec, k, nstep, size, nBatches, int64(seed), func(int) int { return rng.IntN(3) })
}

// stackedHeader reads the header of an uncompressed stacked-frames payload.
func stackedHeader(t *testing.T, payload []byte) (transform byte, channels, frames, shift, next uint64) {
	t.Helper()
	if len(payload) < 4 {
		t.Fatalf("payload of %d bytes", len(payload))
	}
	rest := payload[4:]
	var vals [4]uint64
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			t.Fatal("bad header varint")
		}
		vals[i], rest = v, rest[n:]
	}
	return payload[3], vals[0], vals[1], vals[2], vals[3]
}

var stackedCodec = uint32(messages.Codec_CODEC_STACKED_FRAMES)

// roundTrip packs b with o, sends it through proto, unpacks it and checks
// that it comes back exactly; it returns the packed message.
func roundTrip(t *testing.T, name string, b *messages.ExperienceBatch, o wire.Options) *messages.PackedExperience {
	t.Helper()
	p, err := wire.PackExperience(b, o)
	if err != nil {
		t.Fatalf("%s: pack: %v", name, err)
	}
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
		t.Fatalf("%s: unpack: %v", name, err)
	}
	half := o.Float16 && p.Codec&stackedCodec == 0
	if err := sameBatch(got, b, half); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func TestStackedRoundTrip(t *testing.T) {
	cases := []struct {
		name    string
		batches []*messages.ExperienceBatch
		C       uint64
	}{
		{"pixels 1 env k=4 n=3 random", pixelStream(t, 1, 4, 3, 32, 4, 1, 1), 1},
		{"pixels 1 env k=4 n=3 balanced", pixelStream(t, 1, 4, 3, 32, 4, 0.05, 2), 1},
		{"pixels 3 envs k=2 n=1", pixelStream(t, 3, 2, 1, 20, 3, 0.5, 3), 1},
		{"dots 1 env k=4 n=3 C=3", dotStream(t, 1, 5, 3, 4, 3, 16, 6, 4), 3},
		{"dots 4 envs k=3 n=2 C=2", dotStream(t, 4, 6, 2, 3, 2, 24, 6, 5), 2},
		{"dots 2 envs k=16 n=5 C=1", dotStream(t, 2, 7, 1, 16, 5, 9, 6, 6), 1},
	}
	for _, tc := range cases {
		for bi, b := range tc.batches {
			if bi == 1 {
				b.Priorities = make([]float32, b.Count)
				for j := range b.Priorities {
					b.Priorities[j] = float32(j) * 0.25
				}
			}
			for _, o := range allOptions {
				name := fmt.Sprintf("%s batch %d %v", tc.name, bi, o)
				p := roundTrip(t, name, b, o)
				if p.FrameStack != b.FrameStack {
					t.Fatalf("%s: frame_stack %d, want %d", name, p.FrameStack, b.FrameStack)
				}
				want := uint32(0)
				switch {
				case o.Frames:
					want = stackedCodec
				case o.Float16:
					want = uint32(messages.Codec_CODEC_FLOAT16)
				}
				if o.Zstd {
					want |= uint32(messages.Codec_CODEC_ZSTD)
				}
				if p.Codec != want {
					t.Fatalf("%s: codec %#x, want %#x", name, p.Codec, want)
				}
				if o.Frames && !o.Zstd {
					_, C, F, _, _ := stackedHeader(t, p.Payload)
					if C != tc.C {
						t.Fatalf("%s: %d channels found, want %d", name, C, tc.C)
					}
					if F > uint64(b.Count)+uint64(3*b.FrameStack)+uint64(b.Count)/2 {
						t.Errorf("%s: %d frames for %d transitions", name, F, b.Count)
					}
				}
			}
		}
	}
}

// TestStackedFindsTheStreamPattern: for one env with k=4 and n=3 and no
// episode end, a batch of 32 holds 4 + 31 observation frames and 3 next
// ones; the strides are 1 and 3 (with 3 envs taking turns, 3 and 9); the
// reference codes are one repeated pattern.
func TestStackedFindsTheStreamPattern(t *testing.T) {
	for _, tc := range []struct{ envs, shift, next int }{{1, 1, 3}, {3, 3, 9}} {
		batches := pixelStream(t, tc.envs, 4, 3, 32, 6, 0, 7)
		for bi, b := range batches {
			p, err := wire.PackExperience(b, wire.Options{Frames: true})
			if err != nil {
				t.Fatal(err)
			}
			_, _, F, shift, next := stackedHeader(t, p.Payload)
			if int(shift) != tc.shift || int(next) != tc.next {
				t.Fatalf("%d envs batch %d: strides %d and %d, want %d and %d", tc.envs, bi, shift, next, tc.shift, tc.next)
			}
			if max := 32 + 3*tc.envs + 3*tc.envs; tc.envs == 1 && int(F) > max {
				t.Fatalf("batch %d: %d frames, want at most %d", bi, F, max)
			}
		}
	}
}

// TestStackedFallsBack: stacked batches whose values are not all bytes, or
// whose shape does not split into frames, go by the float codecs, as any
// batch did before the stacked-frames codec.
func TestStackedFallsBack(t *testing.T) {
	base := dotStream(t, 1, 4, 1, 2, 1, 6, 1, 8)[0]
	for _, tc := range []struct {
		name   string
		change func(b *messages.ExperienceBatch)
	}{
		{"fraction", func(b *messages.ExperienceBatch) { b.Observations[3] = 0.5 }},
		{"256", func(b *messages.ExperienceBatch) { b.NextObservations[5] = 256 }},
		{"negative", func(b *messages.ExperienceBatch) { b.Observations[0] = -1 }},
		{"negative zero", func(b *messages.ExperienceBatch) { b.NextObservations[0] = float32(math.Copysign(0, -1)) }},
		{"NaN", func(b *messages.ExperienceBatch) { b.Observations[7] = float32(math.NaN()) }},
		{"obs_size not k frames", func(b *messages.ExperienceBatch) { b.FrameStack = 3 }},
		{"frame_stack 1", func(b *messages.ExperienceBatch) { b.FrameStack = 1 }},
		{"frame_stack 65", func(b *messages.ExperienceBatch) { b.FrameStack = 65 }},
	} {
		b := proto.Clone(base).(*messages.ExperienceBatch)
		tc.change(b)
		for _, o := range allOptions {
			p := roundTrip(t, tc.name, b, o)
			if p.Codec&stackedCodec != 0 {
				t.Fatalf("%s %v: stacked codec chosen", tc.name, o)
			}
			if p.FrameStack != b.FrameStack {
				t.Fatalf("%s: frame_stack %d, want %d", tc.name, p.FrameStack, b.FrameStack)
			}
		}
	}
}

// TestStackedTransformsAndLevels: every frame transform decodes, at every
// zstd level the measurement compares.
func TestStackedTransformsAndLevels(t *testing.T) {
	batches := append(pixelStream(t, 2, 4, 3, 32, 2, 0.3, 10), dotStream(t, 3, 5, 2, 4, 3, 12, 2, 11)...)
	for tr := range wire.NumTransforms {
		for _, level := range stackedLevels {
			restore := wire.SetStackedChoice(byte(tr), level)
			for i, b := range batches {
				roundTrip(t, fmt.Sprintf("transform %d level %v batch %d", tr, level, i), b, wire.DefaultOptions)
			}
			restore()
		}
	}
}

// stackedSeeds are small valid stacked-frames packings, with and without
// zstd, for the hostile-input tests and the fuzz corpus.
func stackedSeeds(tb testing.TB) []*messages.PackedExperience {
	var out []*messages.PackedExperience
	for i, b := range append(dotStream(tb, 1, 3, 1, 2, 2, 5, 1, 12), dotStream(tb, 2, 2, 2, 3, 1, 4, 1, 13)...) {
		if i == 1 {
			b.Priorities = []float32{1, 2, 3, 4}
		}
		for _, o := range []wire.Options{{Frames: true}, {Frames: true, Zstd: true}} {
			p, err := wire.PackExperience(b, o)
			if err != nil {
				tb.Fatal(err)
			}
			if p.Codec&stackedCodec == 0 {
				tb.Fatalf("seed batch %d not stacked", i)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestUnpackHostileStacked: hand-made stacked-frames payloads that break
// each rule of the layout, and messages whose fields disagree with it.
func TestUnpackHostileStacked(t *testing.T) {
	// 2 transitions of 2 frames (k=2) of 1 value, plain frames; then 2
	// one-bit actions, a one-entry palette and its 2 indices.
	hdr := func(version, flags, width, tr byte, C, F, s, n byte) []byte {
		return []byte{version, flags, width, tr, C, F, s, n}
	}
	tail := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	msg := func(h, refs []byte, F int) *messages.PackedExperience {
		payload := bytes.Join([][]byte{h, refs, bytes.Repeat([]byte{7}, F), tail}, nil)
		return &messages.PackedExperience{Count: 2, ObsSize: 2, FrameStack: 2, Codec: stackedCodec, Payload: payload}
	}
	good := hdr(1, 4, 1, 0, 1, 3, 1, 1)
	// obs 0 = [new, new], obs 1 = [shift, new], next 0 = obs 1, next 1 = [shift, left].
	okRefs := []byte{0, 0, 2, 0, 4, 4, 2, 1}
	if b, err := wire.UnpackExperience(msg(good, okRefs, 3)); err != nil {
		t.Fatalf("hand-made payload: %v", err)
	} else if b.FrameStack != 2 || len(b.Observations) != 4 {
		t.Fatalf("hand-made payload decoded as %v", b)
	}
	mustFail := func(name string, p *messages.PackedExperience, want string) {
		t.Helper()
		unpackMustFail(t, name, p, want)
	}
	mustFail("layout version", msg(hdr(2, 4, 1, 0, 1, 3, 1, 1), okRefs, 3), "layout version")
	mustFail("flags", msg(hdr(1, 6, 1, 0, 1, 3, 1, 1), okRefs, 3), "flags")
	mustFail("action width", msg(hdr(1, 4, 33, 0, 1, 3, 1, 1), okRefs, 3), "action width")
	mustFail("transform", msg(hdr(1, 4, 1, 3, 1, 3, 1, 1), okRefs, 3), "transform")
	mustFail("channels 0", msg(hdr(1, 4, 1, 0, 0, 3, 1, 1), okRefs, 3), "channels")
	mustFail("channels beyond the frame", msg(hdr(1, 4, 1, 0, 2, 3, 1, 1), okRefs, 3), "channels")
	mustFail("no frames", msg(hdr(1, 4, 1, 0, 1, 0, 1, 1), okRefs, 0), "no frames")
	mustFail("too many frames", msg(hdr(1, 4, 1, 0, 1, 9, 1, 1), okRefs, 9), "frame count")
	mustFail("stride 0", msg(hdr(1, 4, 1, 0, 1, 3, 0, 1), okRefs, 3), "stride")
	mustFail("stride 65", msg(hdr(1, 4, 1, 0, 1, 3, 1, 65), okRefs, 3), "stride")
	mustFail("unused frame", msg(hdr(1, 4, 1, 0, 1, 4, 1, 1), okRefs, 4), "used")
	mustFail("new frame beyond", msg(hdr(1, 4, 1, 0, 1, 2, 1, 1), okRefs, 2), "beyond")
	mustFail("left of slot 0", msg(good, []byte{1, 0, 2, 0, 4, 4, 2, 1}, 3), "outside")
	mustFail("shift of the last slot", msg(good, []byte{0, 2, 2, 0, 4, 4, 2, 1}, 3), "outside")
	mustFail("shift before the column", msg(good, []byte{0, 0, 2, 0, 2, 0, 2, 1}, 3), "outside")
	mustFail("above the first stack", msg(good, []byte{3, 0, 2, 0, 4, 4, 2, 1}, 3), "outside")
	mustFail("later from an observation", msg(good, []byte{0, 0, 4, 0, 4, 4, 2, 1}, 3), "outside")
	mustFail("later past the batch", msg(good, []byte{0, 0, 2, 0, 4, 4, 4, 4}, 3), "outside")
	mustFail("frame before its first use", msg(good, []byte{0, 6, 2, 0, 4, 4, 2, 1}, 3), "first use")
	mustFail("frame beyond all", msg(good, []byte{0, 0, 2, 0, 4, 4, 2, 9}, 3), "frame reference")
	mustFail("truncated refs", msg(good, []byte{0, 0, 2}, 0), "truncated")

	p := msg(good, okRefs, 3)
	for _, tc := range []struct {
		name   string
		change func(q *messages.PackedExperience)
		want   string
	}{
		{"frame_stack 0", func(q *messages.PackedExperience) { q.FrameStack = 0 }, "frame_stack 0"},
		{"frame_stack 1", func(q *messages.PackedExperience) { q.FrameStack = 1 }, "frame_stack 1"},
		{"frame_stack 65", func(q *messages.PackedExperience) { q.FrameStack = 65; q.ObsSize = 130 }, "frame_stack 65"},
		{"obs_size not k frames", func(q *messages.PackedExperience) { q.ObsSize = 3 }, "not 2 frames"},
		{"no transitions", func(q *messages.PackedExperience) { q.Count = 0 }, "without transitions"},
		{"with FRAMES", func(q *messages.PackedExperience) { q.Codec |= uint32(messages.Codec_CODEC_FRAMES) }, "unknown codec flags"},
		{"with FLOAT16", func(q *messages.PackedExperience) { q.Codec |= uint32(messages.Codec_CODEC_FLOAT16) }, "unknown codec flags"},
		{"huge", func(q *messages.PackedExperience) { q.Count, q.ObsSize = 1<<20, 1<<10 }, "exceed"},
		{"zstd garbage", func(q *messages.PackedExperience) { q.Codec |= uint32(messages.Codec_CODEC_ZSTD) }, "zstd"},
		{"more frames than the payload", func(q *messages.PackedExperience) { q.ObsSize, q.FrameStack = 2000, 2 }, "truncated"},
	} {
		q := proto.Clone(p).(*messages.PackedExperience)
		tc.change(q)
		mustFail(tc.name, q, tc.want)
	}
	// A zstd bomb: content far beyond what 2 transitions of 2 values need.
	enc, _, _ := wire.ZstdCoders()
	bomb := enc.EncodeAll(make([]byte, 1<<20), nil)
	q := proto.Clone(p).(*messages.PackedExperience)
	q.Codec |= uint32(messages.Codec_CODEC_ZSTD)
	q.Payload = append([]byte{wire.ZstdWhole}, bomb[len(wire.ZstdMagic):]...)
	mustFail("zstd bomb", q, "exceeds")
}

// stackedLevels are the zstd levels the measurement compares.
var stackedLevels = []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression}
