package wire

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/qfleet/qfleet/messages"
)

// Version orders weights: a newer learner term wins, then a newer version.
// The zero Version is older than any weights.
type Version struct{ Term, Version uint64 }

// NewerThan says whether k comes after o.
func (k Version) NewerThan(o Version) bool {
	return k.Term > o.Term || (k.Term == o.Term && k.Version > o.Version)
}

// VersionOf is the Version of w.
func VersionOf(w *messages.Weights) Version {
	return Version{Term: w.GetTerm(), Version: w.GetVersion()}
}

// worthCompressing compresses a sample of the planes (the first 16k
// parameters) and says whether zstd saves at least 10%.
func worthCompressing(params, base []float32) bool {
	k := min(len(params), 16<<10)
	if k == 0 {
		return true
	}
	planes := bytePlanes(make([]byte, 4*k), params[:k], sliceOrNil(base, 0, k))
	packed, err := zstdPack(make([]byte, 0, len(planes)), planes)
	return err == nil && len(packed) < len(planes)*9/10
}

// PackWeights packs w into chunks of at most chunkBytes raw bytes (see the
// weights payload in the package doc), as a delta against base when base is
// given (same term, older version, same size), zstd-compressed when compress
// is set and a sample shows it pays.
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
	if n > MaxFloats {
		return nil, fmt.Errorf("pack weights %d/%d: %d params exceed %d", w.GetTerm(), w.GetVersion(), n, MaxFloats)
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
		pk.codec |= codecDelta
		pk.base, pk.baseVersion = base.GetParams(), base.GetVersion()
	}
	pk.seg = max(1, chunkBytes/4)
	pk.total = max(1, (n+pk.seg-1)/pk.seg)
	if pk.total > MaxWeightsChunks {
		return nil, fmt.Errorf("pack weights %d/%d: %d chunks of %d params exceed %d", w.GetTerm(), w.GetVersion(), pk.total, pk.seg, MaxWeightsChunks)
	}
	// zstd costs more time than the bytes it saves on dense updates of a
	// large net (a few % for tens of ms per 1M params): a sample decides.
	if compress && worthCompressing(params, pk.base) {
		pk.codec |= codecZstd
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
	planes := bytePlanes(pk.raw[:4*(hi-lo)], params[lo:hi], sliceOrNil(pk.base, lo, hi))
	payload := append([]byte(nil), planes...)
	if pk.codec&codecZstd != 0 {
		var err error
		if payload, err = zstdPack(make([]byte, 0, len(planes)/2+64), planes); err != nil {
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

// bytePlanes writes params (XORed with base if given) into dst as 4 byte
// planes, most significant first, and returns dst.
func bytePlanes(dst []byte, params, base []float32) []byte {
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
// concurrent use (one actor owns it).
type WeightsAssembler struct {
	// Base returns the weights of (version, term), the base of a delta, or
	// nil. If it is nil or returns nil, the last completed weights serve
	// when their version matches.
	Base func(version, term uint64) *messages.Weights

	last    *messages.Weights // last completed; callers must not modify its params
	lastKey Version
	cur     *partialWeights
}

type partialWeights struct {
	key        Version
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
	k := Version{Term: c.GetTerm(), Version: c.GetVersion()}
	if a.last != nil && !k.NewerThan(a.lastKey) {
		return nil, nil
	}
	if a.cur != nil {
		switch {
		case a.cur.key.NewerThan(k):
			return nil, nil
		case k.NewerThan(a.cur.key):
			a.cur = nil
		}
	}
	where := fmt.Sprintf("weights chunk %d/%d of %d/%d", c.GetIndex(), c.GetTotal(), c.GetTerm(), c.GetVersion())
	if err := checkChunk(c); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	n, seg := int(c.GetNumParams()), int(c.GetSegmentParams())
	if a.cur == nil {
		if seg < 1 || (n+seg-1)/seg != int(c.GetTotal()) && !(n == 0 && c.GetTotal() == 1) {
			return nil, fmt.Errorf("%s: %d params in segments of %d do not make %d chunks", where, n, seg, c.GetTotal())
		}
		var bp []float32
		if c.GetCodec()&codecDelta != 0 {
			var err error
			if bp, err = a.base(c, n); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		a.cur = &partialWeights{key: k, meta: c, params: make([]float32, n), base: bp,
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
	if p.size += len(c.GetPayload()); p.size > MaxBytes {
		a.cur = nil
		return nil, fmt.Errorf("%s: payload exceeds %d bytes; version dropped", where, MaxBytes)
	}
	// Decode this chunk now: the work spreads over the transfer instead of
	// piling up at its last chunk.
	lo, hi := min(int(i)*seg, n), min((int(i)+1)*seg, n)
	if err := decodeSegment(p.params[lo:hi], sliceOrNil(p.base, lo, hi), c); err != nil {
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

// checkChunk checks a chunk's fields on their own, before any of them is
// trusted for an allocation.
func checkChunk(c *messages.WeightsChunk) error {
	switch {
	case c.GetTotal() < 1 || c.GetTotal() > MaxWeightsChunks:
		return fmt.Errorf("total %d outside 1..%d", c.GetTotal(), MaxWeightsChunks)
	case c.GetIndex() >= c.GetTotal():
		return errors.New("index out of range")
	case c.GetNumParams() > MaxFloats:
		return fmt.Errorf("%d params exceed %d", c.GetNumParams(), MaxFloats)
	case c.GetCodec()&^(codecZstd|codecDelta) != 0:
		return fmt.Errorf("unknown codec flags %#x", c.GetCodec()&^(codecZstd|codecDelta))
	case c.GetCodec()&codecDelta != 0 && c.GetBaseVersion() >= c.GetVersion():
		return fmt.Errorf("delta base version %d is not older", c.GetBaseVersion())
	case len(c.GetPayload()) > MaxBytes:
		return fmt.Errorf("payload of %d bytes exceeds %d", len(c.GetPayload()), MaxBytes)
	}
	return nil
}

// base finds the weights a delta chunk is against.
func (a *WeightsAssembler) base(c *messages.WeightsChunk, n int) ([]float32, error) {
	var base *messages.Weights
	if a.Base != nil {
		base = a.Base(c.GetBaseVersion(), c.GetTerm())
	}
	if base == nil && a.last != nil && a.lastKey == (Version{Term: c.GetTerm(), Version: c.GetBaseVersion()}) {
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

// decodeSegment decodes one chunk's planes into dst (XORed with base).
func decodeSegment(dst, base []float32, c *messages.WeightsChunk) error {
	n := len(dst)
	raw := c.GetPayload()
	if c.GetCodec()&codecZstd != 0 && n > 0 {
		framed := append(append(make([]byte, 0, len(zstdMagic)+len(raw)), zstdMagic...), raw...)
		var err error
		if raw, err = unzstdFramed(nil, framed, 4*n); err != nil {
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
