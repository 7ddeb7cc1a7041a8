// Package nprand reproduces the parts of numpy's random module that seeded
// environments need, bit for bit: SeedSequence (numpy/random/bit_generator.pyx),
// the PCG64 bit generator (numpy/random/src/pcg64/pcg64.h, PCG XSL-RR 128/64)
// and Generator.uniform. With it, New(seed) draws exactly what
// np.random.default_rng(seed) draws, so an environment reset with seed s can
// start where Gymnasium's env.reset(seed=s) starts.
//
// Written from the algorithms' descriptions in numpy's source; no numpy code
// is copied. Golden values from numpy 1.24 are checked in golden_test.go.
package nprand

import "math/bits"

// SeedSequence constants: numpy's are O'Neill's seed_seq_fe hash constants.
const (
	initA    uint32 = 0x43b0d7e5
	multA    uint32 = 0x931e8875
	initB    uint32 = 0x8b51f9dd
	multB    uint32 = 0x58f38ded
	mixMultL uint32 = 0xca01f9dd
	mixMultR uint32 = 0x4973f715
	xshift          = 16 // half of a 32-bit word
	poolSize        = 4  // numpy's DEFAULT_POOL_SIZE
)

// SeedSequence is numpy's SeedSequence with the default pool size and no
// spawn key: it hashes user entropy into a 128-bit pool and expands the pool
// into as many well-mixed state words as a bit generator asks for.
type SeedSequence struct {
	pool [poolSize]uint32
}

// EntropyWords splits a non-negative integer into little-endian 32-bit words
// the way numpy coerces a Python int: 0 becomes [0], otherwise the
// significant words only (so seeds below 2^32 give one word).
func EntropyWords(n uint64) []uint32 {
	if n == 0 {
		return []uint32{0}
	}
	var w []uint32
	for n > 0 {
		w = append(w, uint32(n))
		n >>= 32
	}
	return w
}

// NewSeedSequence mixes entropy (32-bit words, least significant first) into
// a pool, as SeedSequence(entropy).
func NewSeedSequence(entropy []uint32) SeedSequence {
	var s SeedSequence
	hashConst := initA
	hashmix := func(v uint32) uint32 {
		v ^= hashConst
		hashConst *= multA
		v *= hashConst
		return v ^ v>>xshift
	}
	mix := func(x, y uint32) uint32 {
		r := mixMultL*x - mixMultR*y
		return r ^ r>>xshift
	}
	// Fill the pool from the first words; a short entropy keeps hashing zeros.
	for i := range s.pool {
		var v uint32
		if i < len(entropy) {
			v = entropy[i]
		}
		s.pool[i] = hashmix(v)
	}
	// Mix every pool word into every other so late words affect early ones.
	for src := range s.pool {
		for dst := range s.pool {
			if src != dst {
				s.pool[dst] = mix(s.pool[dst], hashmix(s.pool[src]))
			}
		}
	}
	// Entropy beyond the pool size is folded into each pool word.
	for src := poolSize; src < len(entropy); src++ {
		for dst := range s.pool {
			s.pool[dst] = mix(s.pool[dst], hashmix(entropy[src]))
		}
	}
	return s
}

// GenerateState32 returns n 32-bit state words, as generate_state(n, np.uint32).
func (s *SeedSequence) GenerateState32(n int) []uint32 {
	out := make([]uint32, n)
	s.fill32(out)
	return out
}

// fill32 writes len(out) state words; the cycle over the pool and the hash
// constant both restart at every call, as in numpy.
func (s *SeedSequence) fill32(out []uint32) {
	hashConst := initB
	for i := range out {
		v := s.pool[i%poolSize]
		v ^= hashConst
		hashConst *= multB
		v *= hashConst
		out[i] = v ^ v>>xshift
	}
}

// GenerateState64 returns n 64-bit words, as generate_state(n, np.uint64):
// 2n 32-bit words read as little-endian pairs (numpy views the uint32 array
// as uint64 and byte-swaps on big-endian hosts so the result is portable).
func (s *SeedSequence) GenerateState64(n int) []uint64 {
	w := s.GenerateState32(2 * n)
	out := make([]uint64, n)
	for i := range out {
		out[i] = join64(w[2*i], w[2*i+1])
	}
	return out
}

func join64(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }

// PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128), split in halves.
const (
	pcgMultHi uint64 = 2549297995355413924
	pcgMultLo uint64 = 4865540595714422341
)

// PCG64 is numpy's default bit generator: a 128-bit linear congruential
// generator whose output permutation is XSL-RR (xor the halves, rotate by
// the top 6 bits). The zero value is not seeded; use New or NewPCG64.
// A PCG64 is a value without pointers, so copying it forks the stream.
type PCG64 struct {
	stateHi, stateLo uint64
	incHi, incLo     uint64 // always odd
}

// NewPCG64 seeds the generator from a SeedSequence as numpy's PCG64 does:
// four 64-bit words give the initial state (words 0,1) and the stream
// selector (words 2,3), each read high word first.
func NewPCG64(ss *SeedSequence) PCG64 {
	var w [8]uint32 // a fixed array keeps seeding allocation-free
	ss.fill32(w[:])
	var p PCG64
	p.seed(join64(w[0], w[1]), join64(w[2], w[3]), join64(w[4], w[5]), join64(w[6], w[7]))
	return p
}

// New returns the generator of np.random.default_rng(seed), i.e.
// PCG64(SeedSequence(seed)).
func New(seed uint64) PCG64 {
	// Same words as EntropyWords, without the allocation.
	entropy := [2]uint32{uint32(seed), uint32(seed >> 32)}
	n := 1
	if seed>>32 != 0 {
		n = 2
	}
	ss := NewSeedSequence(entropy[:n])
	return NewPCG64(&ss)
}

// seed is pcg_setseq_128_srandom_r: inc = initseq<<1 | 1, state = 0, step,
// state += initstate, step.
func (p *PCG64) seed(stateHi, stateLo, seqHi, seqLo uint64) {
	p.incHi = seqHi<<1 | seqLo>>63
	p.incLo = seqLo<<1 | 1
	p.stateHi, p.stateLo = 0, 0
	p.step()
	var carry uint64
	p.stateLo, carry = bits.Add64(p.stateLo, stateLo, 0)
	p.stateHi, _ = bits.Add64(p.stateHi, stateHi, carry)
	p.step()
}

// step advances the LCG: state = state*mult + inc (mod 2^128).
func (p *PCG64) step() {
	hi, lo := bits.Mul64(p.stateLo, pcgMultLo)
	hi += p.stateHi*pcgMultLo + p.stateLo*pcgMultHi
	var carry uint64
	lo, carry = bits.Add64(lo, p.incLo, 0)
	hi, _ = bits.Add64(hi, p.incHi, carry)
	p.stateHi, p.stateLo = hi, lo
}

// Uint64 returns the next 64 random bits (pcg64_next64: step, then output
// the permuted new state).
func (p *PCG64) Uint64() uint64 {
	p.step()
	return bits.RotateLeft64(p.stateHi^p.stateLo, -int(p.stateHi>>58))
}

// Float64 returns a uniform double in [0, 1) from the top 53 bits, like
// numpy's next_double / Generator.random().
func (p *PCG64) Float64() float64 {
	return float64(p.Uint64()>>11) * (1.0 / 9007199254740992.0)
}

// Uniform returns one draw of Generator.uniform(low, high): low + (high-low)*u.
// The product is rounded on its own (float64(...)) so no platform fuses it
// into the addition, which would change the last bit.
func (p *PCG64) Uniform(low, high float64) float64 {
	span := high - low
	return low + float64(span*p.Float64())
}
