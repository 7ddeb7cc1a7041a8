package nets

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
)

// TestNoLayerNormBitIdentical: adding Spec.LayerNorm must not change a single bit of what
// the zero value computes. The hashes below were taken from the code before LayerNorm
// existed: Forward.Q and QBatch over 16 observations, then five Trainer updates (losses,
// |δ| and the parameters after them), for the CartPole MLP and MinAtar with the dueling head.
// They depend on the matrix kernel, so the test runs only on the build that took them
// (amd64, AVX2 kernel, no OpenBLAS).
func TestNoLayerNormBitIdentical(t *testing.T) {
	if !haveKernel || useOpenBLAS || !useKernel {
		t.Skip("golden hashes were taken with the AVX2 kernel")
	}
	for _, c := range []struct {
		name string
		s    Spec
		want uint64
	}{
		{"cartpole", cartPole, 0x3cdbee3047e9f16},
		{"minatar-dueling", withDueling(minAtar), 0x8de9b55fc4a8c26f},
	} {
		if got := outputsHash(t, c.s); got != c.want {
			t.Errorf("%s: outputs hash %#x, want %#x (LayerNorm=false changed the arithmetic)", c.name, got, c.want)
		}
	}
}

// outputsHash hashes the bits of everything TestNoLayerNormBitIdentical compares.
func outputsHash(t *testing.T, s Spec) uint64 {
	t.Helper()
	h := fnv.New64a()
	put := func(xs []float32) {
		var b [4]byte
		for _, x := range xs {
			u := math.Float32bits(x)
			b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
			h.Write(b[:])
		}
	}
	rng := rand.New(rand.NewPCG(31, 32))
	p := InitParams(s, rng)
	f := NewForward(s)
	if err := f.SetParams(p); err != nil {
		t.Fatal(err)
	}
	obs := testObs(rng, s, 16, s.Conv != nil)
	for i := range 16 {
		put(f.Q(obs[i*s.Inputs : (i+1)*s.Inputs]))
	}
	put(f.QBatch(obs, 16))
	cfg := DefaultTrainConfig()
	cfg.BatchSize = 16
	tr := newTestTrainer(t, s, cfg, p)
	for range 5 {
		st, err := tr.Update(randomBatch(s, 16, rng))
		if err != nil {
			t.Fatal(err)
		}
		put([]float32{st.Loss, st.MeanQ})
		put(tr.TDErrors())
	}
	put(tr.CopyParams(nil))
	return h.Sum64()
}
