package nprand

import (
	"math"
	"testing"
)

// The golden values come from numpy itself (see envs/testdata/gen_golden.py).

func TestSeedSequencePoolAndState(t *testing.T) {
	for _, g := range seedGoldens {
		ss := NewSeedSequence(EntropyWords(g.seed))
		if ss.pool != g.pool {
			t.Errorf("seed %d: pool %08x, numpy %08x", g.seed, ss.pool, g.pool)
		}
		got := ss.GenerateState32(len(g.state32))
		for i := range got {
			if got[i] != g.state32[i] {
				t.Errorf("seed %d: generate_state word %d = %08x, numpy %08x", g.seed, i, got[i], g.state32[i])
			}
		}
	}
}

func TestSeedSequenceLongEntropy(t *testing.T) {
	ss := NewSeedSequence(bigEntropyWords)
	if ss.pool != bigEntropyPool {
		t.Errorf("pool %08x, numpy %08x", ss.pool, bigEntropyPool)
	}
}

func TestGenerateState64IsLittleEndianPairs(t *testing.T) {
	ss := NewSeedSequence(EntropyWords(42))
	w := ss.GenerateState32(4)
	d := ss.GenerateState64(2)
	if d[0] != uint64(w[0])|uint64(w[1])<<32 || d[1] != uint64(w[2])|uint64(w[3])<<32 {
		t.Errorf("uint64 state %x from words %x", d, w)
	}
}

func TestPCG64Raw(t *testing.T) {
	for _, g := range seedGoldens {
		p := New(g.seed)
		for i, want := range g.raw {
			if got := p.Uint64(); got != want {
				t.Errorf("seed %d: random_raw[%d] = %016x, numpy %016x", g.seed, i, got, want)
			}
		}
	}
}

func TestUniformMatchesDefaultRNG(t *testing.T) {
	for _, g := range seedGoldens {
		p := New(g.seed)
		for i, want := range g.uniform {
			if got := p.Uniform(-0.05, 0.05); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("seed %d: uniform[%d] = %v, numpy %v", g.seed, i, got, want)
			}
		}
	}
}

func TestFloat64Range(t *testing.T) {
	p := New(7)
	for range 10000 {
		if u := p.Float64(); u < 0 || u >= 1 {
			t.Fatalf("Float64() = %v outside [0, 1)", u)
		}
	}
}

func TestNewIsAllocationFree(t *testing.T) {
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		p := New(1<<40 + 3)
		sink += p.Uint64()
	})
	if allocs != 0 {
		t.Errorf("New allocates %v times", allocs)
	}
	_ = sink
}
