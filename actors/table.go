package actors

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/qfleet/qfleet/actors/sumtree"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
)

// Table is the replay's experience store: a ring buffer of transitions with
// uniform or prioritized sampling. Rows are flat float32 slices so that a
// sample is a handful of copies. Not safe for concurrent use: the replay
// actor owns it.
type Table struct {
	obsSize    int
	numActions int // 0: actions unchecked
	capacity   int
	size       int    // rows filled
	next       int    // row the next insert overwrites
	inserted   uint64 // transitions ever inserted; also the key of the next row
	// Keys are consecutive along the ring: row = (key − keyBase) mod capacity
	// (keyBase is 0 unless the table was restored from a snapshot).
	keyBase uint64

	// Prioritized replay: the sum tree holds each row's (|δ|+ε)^α; nil
	// samples uniformly.
	prio    *sumtree.Tree
	alpha   float64
	rowsIdx []int // scratch for sampled rows

	obs     []float32 // capacity·obsSize; nil when frames hold the observations
	nextObs []float32
	// Binary or uint8 observations (packFrames): rows hold frame ids into
	// frames, stack of them per observation (see stackedframes.go).
	frames              *frameStore
	obsFrame, nextFrame []uint64
	stack, channels     int       // frames per observation, channels per frame
	floor               []uint64  // stack > 1: per row, the oldest frame id it may hold
	frame               []float32 // stack > 1: one frame, scratch
	evicted             uint64    // rows dropped because their frames were overwritten
	actions             []uint32
	rewards             []float32
	discounts           []float32
	keys                []uint64
}

// NewTable allocates a table of capacity transitions of obsSize floats each.
func NewTable(obsSize, capacity int) *Table {
	t := newTableRows(obsSize, capacity)
	t.obs, t.nextObs = make([]float32, obsSize*capacity), make([]float32, obsSize*capacity)
	return t
}

// NewFrameTable allocates a table whose observations are binary or uint8
// (the env's spec says so) and stored as frames, each once (see frameStore),
// without ever allocating float rows: NewTable then converting held both
// for a moment, 3.2 GB of floats for a MinAtar table of a million
// transitions.
func NewFrameTable(dtype envs.ObsDType, obsSize, capacity int) *Table {
	t := newTableRows(obsSize, capacity)
	t.packFrames(dtype, 1, 1)
	return t
}

// NewStackedFrameTable is NewFrameTable for observations of stack frames
// (frame_stack) of channels values a position, stacked channel-last: each
// frame is stored once (see stackedframes.go). stack 1 is NewFrameTable.
func NewStackedFrameTable(dtype envs.ObsDType, obsSize, capacity, stack, channels int) *Table {
	t := newTableRows(obsSize, capacity)
	t.packFrames(dtype, max(stack, 1), channels)
	return t
}

// newTableRows allocates everything of a row but its observations.
func newTableRows(obsSize, capacity int) *Table {
	return &Table{
		obsSize:   obsSize,
		capacity:  capacity,
		actions:   make([]uint32, capacity),
		rewards:   make([]float32, capacity),
		discounts: make([]float32, capacity),
		keys:      make([]uint64, capacity),
	}
}

// packFrames switches the (empty) table to packed, deduplicated storage of
// observations of dtype (see frameStore), each of stack frames of channels
// values a position; CheckBatch then refuses any observation value the
// dtype does not promise.
func (t *Table) packFrames(dtype envs.ObsDType, stack, channels int) {
	t.stack, t.channels = stack, channels
	t.obs, t.nextObs = nil, nil
	t.obsFrame, t.nextFrame = make([]uint64, t.capacity*stack), make([]uint64, t.capacity*stack)
	if stack > 1 {
		t.frames = newFrameStoreSlots(dtype, t.obsSize/stack, stackedSlots(t.capacity, stack))
		t.floor, t.frame = make([]uint64, t.capacity), make([]float32, t.obsSize/stack)
		return
	}
	t.frames = newFrameStore(dtype, t.obsSize, t.capacity)
}

// setRow stores row r's observations.
func (t *Table) setRow(r int, obs, nextObs []float32) {
	if t.stack > 1 {
		t.setStackedRow(r, obs, nextObs)
		return
	}
	if t.frames != nil {
		t.obsFrame[r], t.nextFrame[r] = t.frames.intern(obs), t.frames.intern(nextObs)
		return
	}
	d := t.obsSize
	copy(t.obs[r*d:(r+1)*d], obs)
	copy(t.nextObs[r*d:(r+1)*d], nextObs)
}

// readRow copies row r's observations into obs and nextObs.
func (t *Table) readRow(r int, obs, nextObs []float32) {
	if t.stack > 1 {
		t.readStackedRow(r, obs, nextObs)
		return
	}
	if t.frames != nil {
		t.frames.unpack(obs, t.obsFrame[r])
		t.frames.unpack(nextObs, t.nextFrame[r])
		return
	}
	d := t.obsSize
	copy(obs, t.obs[r*d:(r+1)*d])
	copy(nextObs, t.nextObs[r*d:(r+1)*d])
}

// LimitActions makes CheckBatch refuse actions outside [0, n).
func (t *Table) LimitActions(n int) { t.numActions = n }

// Prioritize switches the (empty) table to proportional prioritized
// sampling with exponent alpha.
func (t *Table) Prioritize(alpha float64) {
	t.prio = sumtree.New(t.capacity)
	t.alpha = alpha
}

// priorityEpsilon keeps every transition sampleable: p = (|δ| + ε)^α.
const priorityEpsilon = 1e-3

// priorityOf maps a TD error (or a runner's estimate of it) to the stored
// priority (|δ|+ε)^α, clamped so one wild value cannot take over the table.
func (t *Table) priorityOf(delta float32) float64 {
	return sumtree.Clamp(math.Pow(math.Abs(float64(delta))+priorityEpsilon, t.alpha))
}

// newPriority is what a transition without a priority gets: the largest
// held, so that it is sampled at least once soon (Schaul et al.).
func (t *Table) newPriority() float64 {
	if m := t.prio.Max(); m > 0 {
		return m
	}
	return 1
}

// Size is the number of transitions held.
func (t *Table) Size() int { return t.size }

// Inserted is the number of transitions ever inserted.
func (t *Table) Inserted() uint64 { return t.inserted }

// CheckBatch reports why a batch cannot be inserted, or nil: its shape
// (CheckShape) and its values.
func (t *Table) CheckBatch(b *messages.ExperienceBatch) error {
	if err := t.CheckShape(b); err != nil {
		return err
	}
	return t.checkValues(b)
}

// CheckShape reports a batch whose lengths do not fit the table, or nil.
func (t *Table) CheckShape(b *messages.ExperienceBatch) error {
	n := int(b.GetCount())
	switch {
	case int(b.GetObsSize()) != t.obsSize:
		return fmt.Errorf("experience batch from %q: obs_size %d, table holds %d", b.GetRunner(), b.GetObsSize(), t.obsSize)
	case len(b.GetObservations()) != n*t.obsSize || len(b.GetNextObservations()) != n*t.obsSize:
		return fmt.Errorf("experience batch from %q: %d/%d observation values for %d transitions of %d", b.GetRunner(), len(b.GetObservations()), len(b.GetNextObservations()), n, t.obsSize)
	case len(b.GetActions()) != n || len(b.GetRewards()) != n || len(b.GetDiscounts()) != n:
		return fmt.Errorf("experience batch from %q: actions/rewards/discounts lengths %d/%d/%d, count %d", b.GetRunner(), len(b.GetActions()), len(b.GetRewards()), len(b.GetDiscounts()), n)
	case len(b.GetPriorities()) != 0 && len(b.GetPriorities()) != n:
		return fmt.Errorf("experience batch from %q: %d priorities for %d transitions", b.GetRunner(), len(b.GetPriorities()), n)
	case t.frames != nil && max(int(b.GetFrameStack()), 1) != t.stack:
		return fmt.Errorf("experience batch from %q: observations of %d stacked frames, the table holds stacks of %d (frame_stack)", b.GetRunner(), max(b.GetFrameStack(), 1), t.stack)
	}
	return nil
}

func (t *Table) checkValues(b *messages.ExperienceBatch) error {
	if err := t.checkColumns(b.GetActions(), b.GetObservations(), b.GetNextObservations(), b.GetRewards(), b.GetDiscounts(), b.GetPriorities()); err != nil {
		return fmt.Errorf("experience batch from %q: %w", b.GetRunner(), err)
	}
	return nil
}

// checkColumns is checkValues on the columns of rows, for batches and for
// the rows of a replay snapshot.
func (t *Table) checkColumns(actions []uint32, obs, nextObs, rewards, discounts, priorities []float32) error {
	// One bad value poisons every batch it is sampled into (a NaN loss), so
	// the whole batch is refused.
	for i, a := range actions {
		if t.numActions > 0 && int(a) >= t.numActions {
			return fmt.Errorf("transition %d: action %d out of range [0, %d)", i, a, t.numActions)
		}
	}
	if t.frames != nil {
		for _, o := range [][]float32{obs, nextObs} {
			if err := t.frames.check(o); err != nil {
				return err
			}
		}
	}
	for i, d := range discounts {
		if !(d >= 0 && d <= 1) {
			return fmt.Errorf("transition %d: discount %v outside [0, 1]", i, d)
		}
	}
	// Priorities only need to be finite: their size is clamped on insert.
	for _, f := range [][]float32{rewards, obs, nextObs, priorities} {
		for i, x := range f {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("non-finite value %v at index %d", x, i)
			}
		}
	}
	return nil
}

// Insert appends the batch's transitions, overwriting the oldest when full.
// The batch must have passed CheckBatch.
func (t *Table) Insert(b *messages.ExperienceBatch) {
	d := t.obsSize
	for i := 0; i < int(b.GetCount()); i++ {
		r := t.next
		t.setRow(r, b.Observations[i*d:(i+1)*d], b.NextObservations[i*d:(i+1)*d])
		t.actions[r] = b.Actions[i]
		t.rewards[r] = b.Rewards[i]
		t.discounts[r] = b.Discounts[i]
		t.keys[r] = t.inserted
		if t.prio != nil {
			p := t.newPriority()
			if len(b.Priorities) > 0 {
				p = t.priorityOf(b.Priorities[i])
			}
			t.prio.Set(r, p)
		}
		t.inserted++
		t.next = (t.next + 1) % t.capacity
		if t.size < t.capacity {
			t.size++
		}
		if t.stack > 1 {
			t.evictOverwritten()
		}
	}
}

// Sample fills out with n transitions: proportionally to priority with
// importance weights for exponent beta when the table is prioritized,
// uniformly otherwise.
func (t *Table) Sample(rng *rand.Rand, n int, beta float64, out *messages.SampleBatch) {
	if t.prio == nil {
		t.SampleUniform(rng, n, out)
		return
	}
	t.rowsIdx = t.prio.SampleStratified(n, rng, t.rowsIdx)
	t.fill(t.rowsIdx, out)
	out.Weights = t.prio.ImportanceWeights(t.rowsIdx, t.size, beta, out.Weights[:0])
}

// UpdatePriorities sets new priorities from the learner's TD errors; keys
// whose rows were overwritten since they were sampled are skipped.
func (t *Table) UpdatePriorities(keys []uint64, tdErrors []float32) {
	if t.prio == nil {
		return
	}
	for i, k := range keys[:min(len(keys), len(tdErrors))] {
		if r, ok := t.rowOf(k); ok {
			t.prio.Set(r, t.priorityOf(tdErrors[i]))
		}
	}
}

// rowOf is the row holding key, if the table still holds it.
func (t *Table) rowOf(key uint64) (int, bool) {
	// The rows held are the last size keys inserted.
	if key < t.keyBase || key >= t.inserted || t.inserted-key > uint64(t.size) {
		return 0, false
	}
	r := int((key - t.keyBase) % uint64(t.capacity))
	return r, t.keys[r] == key
}

// tail is the row of the oldest transition held.
func (t *Table) tail() int { return (t.next - t.size + t.capacity) % t.capacity }

// SampleUniform fills out with n transitions drawn uniformly with replacement.
// It reuses out's slices so that a steady-state sample allocates nothing.
func (t *Table) SampleUniform(rng *rand.Rand, n int, out *messages.SampleBatch) {
	t.rowsIdx = resize(t.rowsIdx, n)
	// The rows held are [tail, next) around the ring: all of them once
	// full, else [0, size) unless rows were evicted (stacked frames).
	tail := 0
	if t.size < t.capacity {
		tail = t.tail()
	}
	for i := range t.rowsIdx {
		t.rowsIdx[i] = (tail + rng.IntN(t.size)) % t.capacity
	}
	t.fill(t.rowsIdx, out)
	out.Weights = out.Weights[:0]
}

// fill copies the given rows into out, reusing its slices.
func (t *Table) fill(rows []int, out *messages.SampleBatch) {
	n := len(rows)
	d := t.obsSize
	out.ObsSize = uint32(d)
	out.Count = uint32(n)
	out.Observations = resize(out.Observations, n*d)
	out.NextObservations = resize(out.NextObservations, n*d)
	out.Actions = resize(out.Actions, n)
	out.Rewards = resize(out.Rewards, n)
	out.Discounts = resize(out.Discounts, n)
	out.Keys = resize(out.Keys, n)
	for i, r := range rows {
		t.readRow(r, out.Observations[i*d:(i+1)*d], out.NextObservations[i*d:(i+1)*d])
		out.Actions[i] = t.actions[r]
		out.Rewards[i] = t.rewards[r]
		out.Discounts[i] = t.discounts[r]
		out.Keys[i] = t.keys[r]
	}
}

// resize returns s with length n, reusing its storage when it is big enough.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
