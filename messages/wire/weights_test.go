package wire

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

func testWeights(n int, version, term uint64, seed uint64) *messages.Weights {
	rng := rand.New(rand.NewPCG(seed, 3))
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(rng.NormFloat64() * 0.1)
	}
	if n > 3 {
		p[0], p[1], p[2] = float32(math.NaN()), float32(math.Copysign(0, -1)), float32(math.Inf(-1))
	}
	return &messages.Weights{Version: version, Term: term, Params: p, LearnerUpdates: version * 10}
}

// step perturbs a fraction of w's params, as a few learner updates would.
func stepWeights(w *messages.Weights, frac float64, seed uint64) *messages.Weights {
	rng := rand.New(rand.NewPCG(seed, 4))
	p := append([]float32(nil), w.Params...)
	for i := range p {
		if rng.Float64() < frac {
			p[i] += float32(rng.NormFloat64() * 1e-3)
		}
	}
	return &messages.Weights{Version: w.Version + 1, Term: w.Term, Params: p, LearnerUpdates: w.LearnerUpdates + 5}
}

func sameWeights(got, want *messages.Weights) error {
	if got == nil {
		return fmt.Errorf("no weights")
	}
	if got.Version != want.Version || got.Term != want.Term || got.LearnerUpdates != want.LearnerUpdates || len(got.Params) != len(want.Params) {
		return fmt.Errorf("got %d/%d updates %d, %d params; want %d/%d updates %d, %d params",
			got.Term, got.Version, got.LearnerUpdates, len(got.Params), want.Term, want.Version, want.LearnerUpdates, len(want.Params))
	}
	for i := range want.Params {
		if math.Float32bits(got.Params[i]) != math.Float32bits(want.Params[i]) {
			return fmt.Errorf("param %d = %#x, want %#x", i, math.Float32bits(got.Params[i]), math.Float32bits(want.Params[i]))
		}
	}
	return nil
}

func TestPackWeightsRoundTrip(t *testing.T) {
	const n = 4866 // the 4-64-64-2 net
	base := testWeights(n, 7, 2, 1)
	next := stepWeights(base, 0.3, 2)
	rng := rand.New(rand.NewPCG(9, 9))
	for _, delta := range []bool{false, true} {
		for _, compress := range []bool{false, true} {
			for _, chunkBytes := range []int{1 << 20, 4096, 1000, 7} {
				var b *messages.Weights
				if delta {
					b = base
				}
				chunks, err := PackWeights(next, b, chunkBytes, compress)
				if err != nil {
					t.Fatal(err)
				}
				// Chunk i holds params [i·s, (i+1)·s) with s = chunkBytes/4
				// (at least 1): at most chunkBytes raw, plus zstd's frame
				// overhead when compression does not pay on a tiny segment.
				var size int
				seg := max(1, chunkBytes/4)
				for i, c := range chunks {
					size += len(c.Payload)
					if len(c.Payload) > 4*seg+32 || int(c.Index) != i || int(c.Total) != len(chunks) || int(c.SegmentParams) != seg {
						t.Fatalf("chunk %d: %d bytes (max %d), index %d total %d of %d, segment %d", i, len(c.Payload), 4*seg+32, c.Index, c.Total, len(chunks), c.SegmentParams)
					}
				}
				if want := max(1, (n+seg-1)/seg); len(chunks) != want {
					t.Fatalf("%d chunks for %d params in segments of %d, want %d", len(chunks), n, seg, want)
				}
				if chunkBytes == 1<<20 {
					t.Logf("delta=%v zstd=%v: %d params in %d bytes (%.2f B/param)", delta, compress, n, size, float64(size)/n)
				}
				// Through the wire, in random order.
				var a WeightsAssembler
				if delta {
					a.Base = func(version, term uint64) *messages.Weights {
						if version == base.Version && term == base.Term {
							return base
						}
						return nil
					}
				}
				var got *messages.Weights
				for k, i := range rng.Perm(len(chunks)) {
					buf, _ := proto.Marshal(chunks[i])
					var c messages.WeightsChunk
					if err := proto.Unmarshal(buf, &c); err != nil {
						t.Fatal(err)
					}
					w, err := a.Add(&c)
					if err != nil {
						t.Fatalf("delta=%v zstd=%v chunk %d: %v", delta, compress, i, err)
					}
					if (w != nil) != (k == len(chunks)-1) {
						t.Fatalf("chunk %d of %d: complete=%v", k+1, len(chunks), w != nil)
					}
					got = w
				}
				if err := sameWeights(got, next); err != nil {
					t.Fatalf("delta=%v zstd=%v chunks=%d: %v", delta, compress, len(chunks), err)
				}
			}
		}
	}
	// Sizes: a delta of a small step compresses far better than the weights.
	full, _ := PackWeights(next, nil, 1<<20, true)
	dl, _ := PackWeights(next, base, 1<<20, true)
	if len(dl[0].Payload) >= len(full[0].Payload)*3/4 {
		t.Errorf("delta payload %d bytes, full %d: delta should be much smaller", len(dl[0].Payload), len(full[0].Payload))
	}
}

func TestWeightsAssemblerUsesLastAsBase(t *testing.T) {
	w1 := testWeights(1000, 1, 1, 1)
	w2 := stepWeights(w1, 0.1, 2)
	w3 := stepWeights(w2, 0.1, 3)
	var a WeightsAssembler
	for _, step := range []struct{ w, base *messages.Weights }{{w1, nil}, {w2, w1}, {w3, w2}} {
		chunks, err := PackWeights(step.w, step.base, 512, true)
		if err != nil {
			t.Fatal(err)
		}
		var got *messages.Weights
		for _, c := range chunks {
			if got, err = a.Add(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := sameWeights(got, step.w); err != nil {
			t.Fatal(err)
		}
	}
	// A delta against a base the assembler does not hold.
	w4 := stepWeights(w3, 0.1, 4)
	chunks, _ := PackWeights(w4, w2, 1<<20, true)
	if _, err := a.Add(chunks[0]); err == nil || !strings.Contains(err.Error(), "base weights not available") {
		t.Fatalf("delta against an unknown base: %v", err)
	}
}

func TestWeightsAssemblerVersions(t *testing.T) {
	pack := func(w *messages.Weights) []*messages.WeightsChunk {
		t.Helper()
		c, err := PackWeights(w, nil, 2000, true)
		if err != nil || len(c) < 4 {
			t.Fatalf("%d chunks, %v", len(c), err)
		}
		return c
	}
	add := func(a *WeightsAssembler, c *messages.WeightsChunk) *messages.Weights {
		t.Helper()
		w, err := a.Add(c)
		if err != nil {
			t.Fatalf("chunk %d of %d/%d: %v", c.Index, c.Term, c.Version, err)
		}
		return w
	}
	v5, v6 := testWeights(4866, 5, 1, 5), testWeights(4866, 6, 1, 6)
	c5, c6 := pack(v5), pack(v6)

	// Out of order within a version.
	var a WeightsAssembler
	for i := len(c5) - 1; i > 0; i-- {
		if add(&a, c5[i]) != nil {
			t.Fatal("complete before the last chunk")
		}
	}
	if add(&a, c5[1]) != nil { // a duplicate is harmless
		t.Fatal("duplicate completed the version")
	}
	if err := sameWeights(add(&a, c5[0]), v5); err != nil {
		t.Fatal(err)
	}

	// A newer version mid-assembly discards the older partial.
	a = WeightsAssembler{}
	add(&a, c5[0])
	add(&a, c5[1])
	add(&a, c6[2])
	for _, c := range c5[2:] { // the rest of v5 is now older: ignored
		if add(&a, c) != nil {
			t.Fatal("discarded version completed")
		}
	}
	var got *messages.Weights
	for i, c := range c6 {
		if i != 2 {
			got = add(&a, c)
		}
	}
	if err := sameWeights(got, v6); err != nil {
		t.Fatal(err)
	}
	// Older versions (and the completed one again) are ignored afterwards.
	for _, c := range append(append([]*messages.WeightsChunk{}, c5...), c6...) {
		if add(&a, c) != nil {
			t.Fatal("old chunk completed a version")
		}
	}
	if a.Last() != got {
		t.Fatal("Last changed")
	}

	// An older version's chunk during a partial is ignored; the partial survives.
	a = WeightsAssembler{}
	add(&a, c6[0])
	add(&a, c5[0])
	for _, c := range c6[1:] {
		got = add(&a, c)
	}
	if err := sameWeights(got, v6); err != nil {
		t.Fatal(err)
	}

	// Terms order before versions: term 2 version 1 is newer than term 1 version 6.
	t2 := testWeights(4866, 1, 2, 7)
	c7 := pack(t2)
	a = WeightsAssembler{}
	add(&a, c6[0])
	add(&a, c7[0])
	for _, c := range c6[1:] {
		add(&a, c) // ignored
	}
	for _, c := range c7[1:] {
		got = add(&a, c)
	}
	if err := sameWeights(got, t2); err != nil {
		t.Fatal(err)
	}
}

func TestWeightsAssemblerRejects(t *testing.T) {
	w := testWeights(4866, 3, 1, 3)
	chunks, _ := PackWeights(w, nil, 4000, true)
	mut := func(i int, f func(c *messages.WeightsChunk)) *messages.WeightsChunk {
		c := proto.Clone(chunks[i]).(*messages.WeightsChunk)
		f(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		first *messages.WeightsChunk
		bad   *messages.WeightsChunk
		want  string
	}{
		{"nil", nil, nil, "nil"},
		{"index out of range", nil, mut(0, func(c *messages.WeightsChunk) { c.Index = c.Total }), "index"},
		{"total 0", nil, mut(0, func(c *messages.WeightsChunk) { c.Total, c.Index = 0, 0 }), "total"},
		{"too many chunks", nil, mut(0, func(c *messages.WeightsChunk) { c.Total = MaxWeightsChunks + 1 }), "total"},
		{"too many params", nil, mut(0, func(c *messages.WeightsChunk) { c.NumParams = MaxFloats + 1 }), "params"},
		{"unknown codec", nil, mut(0, func(c *messages.WeightsChunk) { c.Codec |= 2 }), "codec"},
		{"delta base not older", nil, mut(0, func(c *messages.WeightsChunk) { c.Codec |= 8; c.BaseVersion = c.Version }), "base"},
		{"inconsistent total", chunks[0], mut(1, func(c *messages.WeightsChunk) { c.Total++ }), "inconsistent"},
		{"inconsistent params", chunks[0], mut(1, func(c *messages.WeightsChunk) { c.NumParams-- }), "inconsistent"},
		{"different duplicate", chunks[0], mut(0, func(c *messages.WeightsChunk) { c.Payload = []byte{1} }), "twice"},
	} {
		var a WeightsAssembler
		if tc.first != nil {
			if _, err := a.Add(tc.first); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Add(tc.bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	// Undecodable payloads: wrong size, corrupt zstd, zstd bomb.
	single := func(codec uint32, n uint32, payload []byte) *messages.WeightsChunk {
		return &messages.WeightsChunk{Version: 1, Term: 1, Total: 1, NumParams: n, Codec: codec, Payload: payload}
	}
	enc, _, _ := zstdCoders()
	for _, tc := range []struct {
		name string
		c    *messages.WeightsChunk
	}{
		{"short", single(0, 10, make([]byte, 39))},
		{"long", single(0, 10, make([]byte, 41))},
		{"garbage zstd", single(4, 10, []byte("garbage garbage garbage"))},
		{"bomb", single(4, 10, enc.EncodeAll(make([]byte, 8<<20), nil))},
		{"zstd size mismatch", single(4, 10, enc.EncodeAll(make([]byte, 36), nil))},
	} {
		var a WeightsAssembler
		if _, err := a.Add(tc.c); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// Random mutations never panic.
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		var a WeightsAssembler
		for _, c := range chunks {
			c = proto.Clone(c).(*messages.WeightsChunk)
			switch rng.IntN(6) {
			case 0:
				if len(c.Payload) > 0 {
					c.Payload[rng.IntN(len(c.Payload))] ^= byte(1 + rng.IntN(255))
				}
			case 1:
				c.Payload = c.Payload[:rng.IntN(len(c.Payload)+1)]
			case 2:
				c.NumParams = rng.Uint32N(10000)
			case 3:
				c.Codec = rng.Uint32N(16)
			}
			a.Add(c)
		}
	}
	// PackWeights' own checks.
	if _, err := PackWeights(w, testWeights(10, 2, 1, 1), 100, true); err == nil {
		t.Error("base of another size accepted")
	}
	if _, err := PackWeights(w, testWeights(4866, 2, 0, 1), 100, true); err == nil {
		t.Error("base of another term accepted")
	}
	if _, err := PackWeights(w, nil, 0, true); err == nil {
		t.Error("chunk size 0 accepted")
	}
	if _, err := PackWeights(testWeights(MaxWeightsChunks+1, 1, 1, 1), nil, 1, false); err == nil {
		t.Error("more than MaxWeightsChunks chunks accepted")
	}
}
