package actors

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/envs"
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
	// AllocsPerRun counts every goroutine's allocations, and actors of
	// earlier tests may still run: the least of a few measurements is the
	// sample's own (an allocation in it shows in every one).
	least := math.Inf(1)
	for i := 0; i < 5 && least > 0; i++ {
		least = min(least, testing.AllocsPerRun(100, func() { tab.SampleUniform(rng, 32, &out) }))
	}
	if least != 0 {
		t.Fatalf("steady-state sample allocates %v times", least)
	}
}

// A prioritized table samples in proportion to (|δ|+ε)^α, gives importance
// weights ≤ 1 (1 for the lowest priority), follows the learner's priority
// updates, skips keys that were overwritten, and keeps it all across a
// snapshot.
func TestTablePrioritizedSampling(t *testing.T) {
	tab := NewTable(1, 4)
	tab.Prioritize(1)
	b := batchOf(0, 4, 1)
	b.Priorities = []float32{1, 3, 0, 1e12} // 0 still sampleable; 1e12 clamped
	if err := tab.CheckBatch(b); err != nil {
		t.Fatal(err)
	}
	tab.Insert(b)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[float32]int{}
	var out messages.SampleBatch
	const draws = 20_000
	for range draws / 100 {
		tab.Sample(rng, 100, 1, &out)
		for i, r := range out.Rewards {
			counts[r]++
			if w := out.Weights[i]; !(w > 0 && w <= 1) {
				t.Fatalf("importance weight %v outside (0, 1]", w)
			}
		}
	}
	// Row 3's clamped priority dwarfs the others: nearly every draw.
	if counts[3] < draws*99/100 {
		t.Fatalf("clamped huge priority drawn %d of %d", counts[3], draws)
	}
	// The learner lowers row 3 to δ=0: now rows 0,1,3 ∝ 1.001:3.001:0.001, row 2 0.001.
	tab.UpdatePriorities([]uint64{3, 99}, []float32{0, 5}) // key 99 does not exist: skipped
	clear(counts)
	for range draws / 100 {
		tab.Sample(rng, 100, 1, &out)
		for _, r := range out.Rewards {
			counts[r]++
		}
	}
	ratio := float64(counts[1]) / float64(counts[0])
	if ratio < 2.6 || ratio > 3.4 {
		t.Fatalf("rows drawn %v: row 1 / row 0 = %.2f, want ≈ 3", counts, ratio)
	}
	// Snapshot round trip keeps priorities, and updates by key still land.
	c := tab.capture()
	dst := NewTable(1, 4)
	dst.Prioritize(1)
	if err := dst.restore(c.encode("x")); err != nil {
		t.Fatal(err)
	}
	for r := range 4 {
		if dst.prio.Get(r) != tab.prio.Get(r) {
			t.Fatalf("row %d priority %v after the restore, want %v", r, dst.prio.Get(r), tab.prio.Get(r))
		}
	}
	tab.Insert(batchOf(4, 1, 1)) // key 4 overwrites key 0's row
	tab.UpdatePriorities([]uint64{0}, []float32{100})
	if p := tab.prio.Get(0); p > 50 { // key 4 got the max held (3.001), not the 100 meant for key 0
		t.Fatalf("update for overwritten key 0 landed on its row (priority %v)", p)
	}
}

// binaryBatch makes n transitions of a binary "grid" whose bits encode the
// index: next observation i is observation i+1, as with 1-step returns.
func binaryBatch(start, n, cells int) *messages.ExperienceBatch {
	return frameBatch(envs.Binary, start, n, cells)
}

// frameBatch is binaryBatch for either frame dtype: uint8 "pixels" take
// every value 0..255 across a frame.
func frameBatch(dtype envs.ObsDType, start, n, cells int) *messages.ExperienceBatch {
	b := &messages.ExperienceBatch{Runner: "test", ObsSize: uint32(cells), Count: uint32(n)}
	grid := func(i int) []float32 {
		g := make([]float32, cells)
		for j := range g {
			if dtype == envs.Uint8 {
				g[j] = float32((i*7 + j) % 256)
			} else {
				g[j] = float32((i >> (j % 20)) & 1)
			}
		}
		return g
	}
	for i := start; i < start+n; i++ {
		b.Observations = append(b.Observations, grid(i)...)
		b.NextObservations = append(b.NextObservations, grid(i+1)...)
		b.Actions = append(b.Actions, uint32(i%3))
		b.Rewards = append(b.Rewards, float32(i))
		b.Discounts = append(b.Discounts, 0.99)
	}
	return b
}

// A frame table stores binary observations as bits and uint8 ones as
// bytes, each distinct recent frame once, gives back exactly what was
// inserted, refuses values its dtype does not promise, and survives a
// snapshot round trip.
func TestTableFrames(t *testing.T) {
	const cells, capacity = 400, 64
	for _, c := range []struct {
		dtype     envs.ObsDType
		frameSize int
		bad       float32
	}{{envs.Binary, cells / 8, 0.5}, {envs.Uint8, cells, 256}, {envs.Uint8, cells, 1.5}} {
		t.Run(fmt.Sprintf("%v/bad=%v", c.dtype, c.bad), func(t *testing.T) {
			packed := NewFrameTable(c.dtype, cells, capacity)
			plain := NewTable(cells, capacity)
			for start := 0; start < 200; start += 10 { // wraps the ring three times
				b := frameBatch(c.dtype, start, 10, cells)
				if err := packed.CheckBatch(b); err != nil {
					t.Fatal(err)
				}
				packed.Insert(b)
				plain.Insert(b)
			}
			// 200 transitions, 201 distinct frames (next i = obs i+1): about one frame per transition.
			if f := packed.frames.inserted; f > 205 {
				t.Fatalf("%d frames stored for 200 transitions: observations stored twice", f)
			}
			rng1, rng2 := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
			var a, b messages.SampleBatch
			packed.SampleUniform(rng1, 128, &a)
			plain.SampleUniform(rng2, 128, &b)
			if !equalF32(a.Observations, b.Observations) || !equalF32(a.NextObservations, b.NextObservations) || !equalF32(a.Rewards, b.Rewards) {
				t.Fatal("frame table returned other observations than the plain one")
			}
			bad := frameBatch(c.dtype, 0, 2, cells)
			bad.Observations[5] = c.bad
			if err := packed.CheckBatch(bad); err == nil || !strings.Contains(err.Error(), c.dtype.String()) {
				t.Fatalf("frame table took an observation value of %v: %v", c.bad, err)
			}
			snap := packed.capture().encode("X-v0")
			if len(snap.GetObservations()) != 0 || len(snap.GetPackedObservations()) != capacity*c.frameSize {
				t.Fatalf("snapshot of a frame table: %d float bytes, %d packed bytes", len(snap.GetObservations()), len(snap.GetPackedObservations()))
			}
			restored := NewFrameTable(c.dtype, cells, capacity)
			if err := restored.restore(snap); err != nil {
				t.Fatal(err)
			}
			// Rows come back oldest first: compare in that order.
			if got := restored.capture(); string(got.packedObs) != string(snap.GetPackedObservations()) ||
				string(got.packedNext) != string(snap.GetPackedNextObservations()) || !equalF32(got.rewards, packed.capture().rewards) {
				t.Fatal("restored frame table differs")
			}
		})
	}
	// A snapshot says how its frames are packed: binary ones restore into a
	// uint8 or a float table (0 and 1 are values of both); uint8 ones do
	// not fit a binary table.
	bin := NewFrameTable(envs.Binary, cells, capacity)
	bin.Insert(frameBatch(envs.Binary, 0, 4, cells))
	binSnap := bin.capture().encode("X-v0")
	for _, into := range []*Table{NewFrameTable(envs.Uint8, cells, capacity), NewTable(cells, capacity)} {
		if err := into.restore(binSnap); err != nil {
			t.Errorf("a binary snapshot into a %v table: %v", into.frames, err)
		} else if got := into.capture(); !equalF32(got.rewards, bin.capture().rewards) {
			t.Error("a binary snapshot restored other rows")
		}
	}
	u8 := NewFrameTable(envs.Uint8, cells, capacity)
	u8.Insert(frameBatch(envs.Uint8, 0, 4, cells))
	if err := NewFrameTable(envs.Binary, cells, capacity).restore(u8.capture().encode("X-v0")); err == nil || !strings.Contains(err.Error(), "binary") {
		t.Errorf("a uint8 snapshot into a binary table: %v, want refused", err)
	}
	binSnap.PackedDtype = "float32"
	if err := NewTable(cells, capacity).restore(binSnap); err == nil || !strings.Contains(err.Error(), "float32") {
		t.Errorf("packed observations said to be float32: %v, want refused", err)
	}
}
