package actors

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qfleet/qfleet/messages"
)

// batchOf makes n transitions whose every value encodes the transition's
// global index, so a sample can be traced back to what was inserted.
func batchOf(start, n, obsSize int) *messages.ExperienceBatch {
	b := &messages.ExperienceBatch{Runner: "test", ObsSize: uint32(obsSize), Count: uint32(n)}
	for i := start; i < start+n; i++ {
		for j := 0; j < obsSize; j++ {
			b.Observations = append(b.Observations, float32(i))
			b.NextObservations = append(b.NextObservations, float32(i)+0.5)
		}
		b.Actions = append(b.Actions, uint32(i%3))
		b.Rewards = append(b.Rewards, float32(i))
		b.Discounts = append(b.Discounts, 0.99)
	}
	return b
}

func TestTableRingOverwritesOldest(t *testing.T) {
	tab := NewTable(2, 10)
	for start := 0; start < 25; start += 5 {
		b := batchOf(start, 5, 2)
		if err := tab.CheckBatch(b); err != nil {
			t.Fatal(err)
		}
		tab.Insert(b)
	}
	if tab.Size() != 10 || tab.Inserted() != 25 {
		t.Fatalf("size %d inserted %d, want 10 and 25", tab.Size(), tab.Inserted())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out messages.SampleBatch
	seen := map[uint64]bool{}
	for k := 0; k < 50; k++ {
		tab.SampleUniform(rng, 8, &out)
		for i := 0; i < 8; i++ {
			key := out.Keys[i]
			if key < 15 || key >= 25 {
				t.Fatalf("sampled key %d: overwritten or never inserted", key)
			}
			// Every field of the row belongs to the same transition.
			if out.Observations[2*i] != float32(key) || out.NextObservations[2*i+1] != float32(key)+0.5 ||
				out.Rewards[i] != float32(key) || out.Actions[i] != uint32(key%3) {
				t.Fatalf("row %d mixes transitions: key %d obs %v reward %v", i, key, out.Observations[2*i], out.Rewards[i])
			}
			seen[key] = true
		}
	}
	if len(seen) != 10 {
		t.Fatalf("uniform sampling reached %d of 10 rows in 400 draws", len(seen))
	}
}

func TestTableRejectsMalformedBatches(t *testing.T) {
	tab := NewTable(4, 10)
	tab.LimitActions(3)
	cases := map[string]func(b *messages.ExperienceBatch){
		"obs_size":   func(b *messages.ExperienceBatch) { b.ObsSize = 3 },
		"short obs":  func(b *messages.ExperienceBatch) { b.Observations = b.Observations[:3] },
		"short next": func(b *messages.ExperienceBatch) { b.NextObservations = b.NextObservations[:7] },
		"actions":    func(b *messages.ExperienceBatch) { b.Actions = b.Actions[:1] },
		"rewards":    func(b *messages.ExperienceBatch) { b.Rewards = nil },
		"discounts":  func(b *messages.ExperienceBatch) { b.Discounts = append(b.Discounts, 1) },
		"count lies": func(b *messages.ExperienceBatch) { b.Count = 3 },
		"action":     func(b *messages.ExperienceBatch) { b.Actions[1] = 3 },
		"NaN obs":    func(b *messages.ExperienceBatch) { b.Observations[2] = float32(math.NaN()) },
		"Inf next":   func(b *messages.ExperienceBatch) { b.NextObservations[5] = float32(math.Inf(-1)) },
		"NaN reward": func(b *messages.ExperienceBatch) { b.Rewards[0] = float32(math.NaN()) },
		"discount>1": func(b *messages.ExperienceBatch) { b.Discounts[0] = 1.5 },
	}
	for name, spoil := range cases {
		b := batchOf(0, 2, 4)
		spoil(b)
		if err := tab.CheckBatch(b); err == nil {
			t.Errorf("%s: malformed batch accepted", name)
		}
	}
	if err := tab.CheckBatch(batchOf(0, 2, 4)); err != nil {
		t.Fatalf("good batch refused: %v", err)
	}
}

func TestSampleReusesBuffers(t *testing.T) {
	tab := NewTable(4, 100)
	tab.Insert(batchOf(0, 100, 4))
	rng := rand.New(rand.NewPCG(3, 4))
	var out messages.SampleBatch
	tab.SampleUniform(rng, 32, &out)
	if allocs := testing.AllocsPerRun(100, func() { tab.SampleUniform(rng, 32, &out) }); allocs != 0 {
		t.Fatalf("steady-state sample allocates %v times", allocs)
	}
}
