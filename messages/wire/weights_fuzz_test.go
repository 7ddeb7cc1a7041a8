package wire

import (
	"encoding/binary"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/messages"
)

// Weights under test in FuzzWeightsAssembler: version 2 of term 3, and its
// delta base, version 1.
const (
	fuzzWeightsTerm        = 3
	fuzzWeightsBaseVersion = 1
)

// fuzzWeightsChunks packs the fuzz target's weights: n params (at most
// 1,024) in chunks of chunkBytes (raised so that there are at most 32: the
// assembler's cost is per chunk, and index and total mutations reach any
// chunk count anyway), a delta against version 1 with mode bit 0, zstd with
// bit 1.
func fuzzWeightsChunks(tb testing.TB, nParams, chunkBytes uint16, mode uint16) (base, next *messages.Weights, chunks []*messages.WeightsChunk) {
	n := int(nParams % 1025)
	cb := max(int(chunkBytes), 4*((n+31)/32), 1)
	base = testWeights(n, fuzzWeightsBaseVersion, fuzzWeightsTerm, uint64(nParams))
	next = stepWeights(base, 0.3, uint64(chunkBytes))
	next.EnvSteps = 12345
	var against *messages.Weights
	if mode&1 != 0 {
		against = base
	}
	chunks, err := PackWeights(next, against, cb, mode&2 != 0)
	if err != nil {
		tb.Fatalf("pack %d params in chunks of %d: %v", n, cb, err)
	}
	return base, next, chunks
}

// fuzzWeightsOp is one step of a FuzzWeightsAssembler script: 6 bytes, an
// op, a chunk and a 32-bit argument.
type fuzzWeightsOp struct {
	op, chunk byte
	arg       uint32
}

func (o fuzzWeightsOp) bytes() []byte {
	return binary.LittleEndian.AppendUint32([]byte{o.op, o.chunk}, o.arg)
}

func fuzzWeightsScript(ops ...fuzzWeightsOp) []byte {
	var b []byte
	for _, o := range ops {
		b = append(b, o.bytes()...)
	}
	return b
}

// Ops of a script (op % fuzzWeightsOps); all but feed send a changed copy.
const (
	fwFeed = iota // the chunk as packed
	fwIndex
	fwTotal
	fwVersion // arg, or arg<<32 when op ≥ 128
	fwTerm
	fwNumParams
	fwSegment
	fwCodec
	fwBaseVersion
	fwTruncate // payload cut to arg % (len+1) bytes
	fwFlip     // payload byte arg%len XORed with a nonzero byte
	fwAppend   // 4 bytes of arg appended to the payload
	fwReplace  // payload replaced by the next arg%64 bytes of the script
	fwUpdates  // learner_updates
	fwNil      // a nil chunk
	fwSwap     // the payload of chunk arg%total
	fuzzWeightsOps
)

// FuzzWeightsAssembler feeds one assembler the chunks PackWeights made of a
// version, changed as a script says (indices, totals, versions, terms, sizes,
// codecs, payload bytes), then every chunk as packed. Nothing may panic, and:
//   - a chunk as packed is refused only after a changed chunk of a version
//     not older than the real one was accepted (a changed chunk that is
//     refused drops the partial version; the real chunks start it again);
//   - completed weights have the params their chunks announced, and the real
//     version completes exactly as packed unless such a changed chunk was
//     accepted;
//   - after the final pass the real version is complete (it is Last) unless
//     such a changed chunk was accepted.
func FuzzWeightsAssembler(f *testing.F) {
	f.Fuzz(func(t *testing.T, nParams, chunkBytes, mode uint16, script []byte) {
		base, next, chunks := fuzzWeightsChunks(t, nParams, chunkBytes, mode)
		want := VersionOf(next)
		a := &WeightsAssembler{Base: func(version, term uint64) *messages.Weights {
			if version == fuzzWeightsBaseVersion && term == fuzzWeightsTerm {
				return base
			}
			return nil
		}}
		spoiled, completed := false, false
		feed := func(c *messages.WeightsChunk, changed bool, what string) {
			w, err := a.Add(c)
			if changed && err == nil && c != nil && !want.NewerThan(Version{Term: c.GetTerm(), Version: c.GetVersion()}) {
				spoiled = true
			}
			if !changed && err != nil && !spoiled {
				t.Fatalf("%s: chunk as packed refused: %v", what, err)
			}
			if w == nil {
				return
			}
			if err != nil {
				t.Fatalf("%s: weights and an error: %v", what, err)
			}
			if len(w.Params) != int(c.GetNumParams()) || VersionOf(w) != (Version{Term: c.GetTerm(), Version: c.GetVersion()}) {
				t.Fatalf("%s: completed %d/%d with %d params from a chunk of %d/%d announcing %d", what,
					w.Term, w.Version, len(w.Params), c.GetTerm(), c.GetVersion(), c.GetNumParams())
			}
			if VersionOf(w) == want && !spoiled {
				if err := sameWeights(w, next); err != nil {
					t.Fatalf("%s: real version completed wrong: %v", what, err)
				}
				if w.EnvSteps != next.EnvSteps {
					t.Fatalf("%s: env steps %d, want %d", what, w.EnvSteps, next.EnvSteps)
				}
				completed = true
			}
		}
		for step := 0; len(script) >= 6; step++ {
			var o fuzzWeightsOp
			o.op, o.chunk, o.arg = script[0], script[1], binary.LittleEndian.Uint32(script[2:6])
			script = script[6:]
			i := int(o.chunk) % len(chunks)
			what := fmt.Sprintf("step %d (op %d, chunk %d, arg %d)", step, o.op%fuzzWeightsOps, i, o.arg)
			c := proto.Clone(chunks[i]).(*messages.WeightsChunk)
			big := uint64(o.arg)
			if o.op >= 128 {
				big <<= 32
			}
			switch o.op % fuzzWeightsOps {
			case fwFeed:
				feed(c, false, what)
				continue
			case fwIndex:
				c.Index = o.arg
			case fwTotal:
				c.Total = o.arg
			case fwVersion:
				c.Version = big
			case fwTerm:
				c.Term = big
			case fwNumParams:
				c.NumParams = o.arg
			case fwSegment:
				c.SegmentParams = o.arg
			case fwCodec:
				c.Codec = o.arg
			case fwBaseVersion:
				c.BaseVersion = big
			case fwTruncate:
				c.Payload = c.Payload[:int(o.arg%uint32(len(c.Payload)+1))]
			case fwFlip:
				if len(c.Payload) > 0 {
					c.Payload[int(o.arg%uint32(len(c.Payload)))] ^= byte(o.arg>>24) | 1
				}
			case fwAppend:
				c.Payload = binary.LittleEndian.AppendUint32(c.Payload, o.arg)
			case fwReplace:
				k := min(int(o.arg%64), len(script))
				c.Payload, script = append([]byte(nil), script[:k]...), script[k:]
			case fwUpdates:
				c.LearnerUpdates = big
			case fwNil:
				c = nil
			case fwSwap:
				c.Payload = append([]byte(nil), chunks[int(o.arg%uint32(len(chunks)))].Payload...)
			}
			feed(c, true, what)
		}
		for i, c := range chunks {
			feed(proto.Clone(c).(*messages.WeightsChunk), false, fmt.Sprintf("final pass, chunk %d", i))
		}
		if !spoiled {
			if !completed {
				t.Fatalf("%d chunks fed as packed, version %d/%d never completed", len(chunks), want.Term, want.Version)
			}
			if a.Last() == nil || VersionOf(a.Last()) != want {
				t.Fatalf("Last is not the real version after the final pass")
			}
		}
	})
}

// fuzzWeightsSeeds are the committed corpus of FuzzWeightsAssembler: every
// codec, one and many chunks, each kind of change.
func fuzzWeightsSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	add := func(name string, n, chunkBytes, mode uint16, ops ...fuzzWeightsOp) {
		seeds[name] = hostile.CorpusEntry(n, chunkBytes, mode, fuzzWeightsScript(ops...))
	}
	for mode := range uint16(4) {
		add(fmt.Sprintf("clean-one-chunk-mode%d", mode), 300, 4096, mode)
		add(fmt.Sprintf("clean-many-chunks-mode%d", mode), 1000, 256, mode)
		add(fmt.Sprintf("clean-empty-mode%d", mode), 0, 64, mode)
	}
	add("reversed", 1000, 128, 3, fuzzWeightsOp{fwFeed, 7, 0}, fuzzWeightsOp{fwFeed, 6, 0}, fuzzWeightsOp{fwFeed, 5, 0}, fuzzWeightsOp{fwFeed, 5, 0})
	for op := byte(fwIndex); op < fuzzWeightsOps; op++ {
		for _, arg := range []uint32{1, 0xffffffff, 1 << 24} {
			add(fmt.Sprintf("op%02d-arg%x", op, arg), 777, 200, uint16(op%4),
				fuzzWeightsOp{fwFeed, 0, 0}, fuzzWeightsOp{op, 1, arg}, fuzzWeightsOp{fwFeed, 2, 0})
		}
	}
	add("huge-single-chunk", 16, 4096, 2, fuzzWeightsOp{fwNumParams, 0, 1 << 24}, fuzzWeightsOp{fwSegment, 0, 1 << 24})
	add("newer-term", 500, 100, 1, fuzzWeightsOp{128 + fwTerm, 0, 1}, fuzzWeightsOp{fwFeed, 1, 0})
	add("replace-payload", 64, 64, 2, fuzzWeightsOp{fwReplace, 0, 8}, fuzzWeightsOp{0x28, 0xb5, 0xfd2f}, fuzzWeightsOp{fwFeed, 0, 0})
	return seeds
}

func TestFuzzWeightsAssemblerCorpus(t *testing.T) {
	hostile.CheckCorpus(t, "FuzzWeightsAssembler", fuzzWeightsSeeds())
}
