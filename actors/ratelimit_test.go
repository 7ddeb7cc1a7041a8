package actors

import (
	"math/rand/v2"
	"testing"
)

func TestRateLimiterNeverBlocksBothSides(t *testing.T) {
	const batch = 64
	l := NewRateLimiter(32, 1000, batch)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200_000; i++ {
		canS, canI := l.CanSample(batch), l.CanInsert()
		if !canS && !canI {
			t.Fatalf("step %d: both sides blocked (inserted %d sampled %d)", i, l.inserted, l.sampled)
		}
		// A random side moves if it may: the limiter must hold the ratio
		// whatever the interleaving.
		if canS && (!canI || rng.IntN(2) == 0) {
			l.Sampled(batch)
		} else {
			l.Inserted(1 + rng.IntN(32))
		}
	}
	ratio := float64(l.sampled) / float64(l.inserted-1000)
	if ratio < 31 || ratio > 33 {
		t.Fatalf("sampled/inserted after min size = %.2f, want 32 ± 1", ratio)
	}
}

func TestRateLimiterMinSize(t *testing.T) {
	l := NewRateLimiter(0, 100, 0)
	l.Inserted(99)
	if l.CanSample(1) {
		t.Fatal("sampling allowed below the minimum size")
	}
	l.Inserted(1)
	if !l.CanSample(64) || !l.CanInsert() {
		t.Fatal("with ratio 0 both sides must be free once the minimum is in")
	}
}

func TestRateLimiterHoldsInsertsWhenLearnerLags(t *testing.T) {
	l := NewRateLimiter(8, 100, 64)
	l.Inserted(100)
	l.Inserted(8) // diff now 64 above the set point: the tolerance edge
	if !l.CanInsert() {
		t.Fatal("insert refused at the tolerance edge")
	}
	l.Inserted(1)
	if l.CanInsert() {
		t.Fatal("insert allowed past the tolerance")
	}
	l.Sampled(64)
	if !l.CanInsert() {
		t.Fatal("insert still refused after the learner caught up")
	}
}
