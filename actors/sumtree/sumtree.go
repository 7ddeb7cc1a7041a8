package sumtree

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Bounds for priorities (already raised to the power α). Set accepts
// [0, MaxPriority]; Clamp maps runner-supplied priorities into
// [MinPriority, MaxPriority]. Their ratio, 1e12, keeps the smallest
// importance weight (1e-12 at β = 1) a normal float32, and MaxPriority keeps
// Total() far from overflow at any capacity.
const (
	MinPriority = 1e-6
	MaxPriority = 1e6
)

// MaxCapacity is the largest capacity New accepts.
const MaxCapacity = 1 << 30

// Clamp maps a priority from a runner into [MinPriority, MaxPriority], so that
// Set accepts it and the transition stays sampleable. NaN maps to MinPriority;
// a replay should rather refuse a batch carrying NaN priorities, as it does
// other non-finite values.
func Clamp(p float64) float64 {
	switch {
	case p >= MaxPriority:
		return MaxPriority
	case p >= MinPriority:
		return p
	default: // below MinPriority, or NaN
		return MinPriority
	}
}

// BetaAt is the importance-sampling exponent at a learner step: linear from
// beta0 at step 0 to 1 at annealSteps, and 1 from then on (or always, if
// annealSteps ≤ 0). beta0 is normally in [0, 1]; the PER paper and Ape-X use 0.4.
func BetaAt(step, annealSteps int64, beta0 float64) float64 {
	switch {
	case annealSteps <= 0 || step >= annealSteps:
		return 1
	case step <= 0:
		return beta0
	}
	return beta0 + (1-beta0)*(float64(step)/float64(annealSteps))
}

// extrema is a node's min over non-zero leaves (+Inf if none) and max over
// all leaves.
type extrema struct{ min, max float64 }

// Tree is a sum tree with min and max over a fixed number of slots; see the
// package documentation. Not safe for concurrent use: the replay actor owns it.
type Tree struct {
	capacity int
	leaves   int       // capacity rounded up to a power of two; leaf i is node leaves+i
	sum      []float64 // 2*leaves nodes; sum[0] unused
	ext      []extrema // 2*leaves nodes; ext[0] unused
}

// New returns a tree of capacity slots, all with priority 0. It allocates
// 48 bytes per leaf, the capacity rounded up to a power of two (48 MiB at
// 1<<20). It panics unless 1 ≤ capacity ≤ MaxCapacity.
func New(capacity int) *Tree {
	if capacity < 1 || capacity > MaxCapacity {
		panic(fmt.Sprintf("sumtree: capacity %d outside [1, %d]", capacity, MaxCapacity))
	}
	leaves := 1
	for leaves < capacity {
		leaves <<= 1
	}
	t := &Tree{
		capacity: capacity,
		leaves:   leaves,
		sum:      make([]float64, 2*leaves),
		ext:      make([]extrema, 2*leaves),
	}
	inf := math.Inf(1)
	for k := range t.ext {
		t.ext[k].min = inf
	}
	return t
}

// Cap is the number of slots.
func (t *Tree) Cap() int { return t.capacity }

// Set sets slot i's priority to p, already raised to the power α; 0 empties
// the slot. O(log n), no allocation. It panics if i is not in [0, Cap()) or p
// is not in [0, MaxPriority] (negative, NaN, infinite or too large): pass
// runner priorities through Clamp first.
func (t *Tree) Set(i int, p float64) {
	if uint(i) >= uint(t.capacity) || !(p >= 0 && p <= MaxPriority) {
		t.badSet(i, p)
	}
	k := t.leaves + i
	sum, ext := t.sum, t.ext
	sum[k] = p
	if p > 0 {
		ext[k] = extrema{p, p}
	} else {
		ext[k] = extrema{math.Inf(1), 0}
	}
	// Recompute each ancestor from its children: no deltas, so no drift.
	for k > 1 {
		k >>= 1
		l := 2 * k
		sum[k] = sum[l] + sum[l+1]
		a, b := ext[l], ext[l+1]
		if b.min < a.min {
			a.min = b.min
		}
		if b.max > a.max {
			a.max = b.max
		}
		ext[k] = a
	}
}

func (t *Tree) badSet(i int, p float64) {
	if uint(i) >= uint(t.capacity) {
		panic(fmt.Sprintf("sumtree: Set slot %d outside [0, %d)", i, t.capacity))
	}
	panic(fmt.Sprintf("sumtree: Set slot %d: priority %v outside [0, %g] (negative, NaN or infinite?); clamp runner priorities with sumtree.Clamp", i, p, float64(MaxPriority)))
}

// Get is slot i's priority. It panics if i is not in [0, Cap()).
func (t *Tree) Get(i int) float64 {
	if uint(i) >= uint(t.capacity) {
		panic(fmt.Sprintf("sumtree: Get slot %d outside [0, %d)", i, t.capacity))
	}
	return t.sum[t.leaves+i]
}

// Total is the sum of all priorities.
func (t *Tree) Total() float64 { return t.sum[1] }

// Max is the largest priority currently held, 0 if none. O(1). It follows
// the learner's updates down as well as up (unlike a running maximum, one
// early outlier does not stay the priority of every new transition forever).
func (t *Tree) Max() float64 { return t.ext[1].max }

// Min is the smallest non-zero priority currently held, 0 if none. O(1).
func (t *Tree) Min() float64 {
	if m := t.ext[1].min; m < math.Inf(1) {
		return m
	}
	return 0
}

// Find returns the slot whose interval of the prefix sums contains u: the i
// with p_0+…+p_{i−1} ≤ u < p_0+…+p_i, up to rounding. u < 0 (and NaN) is
// taken as 0 and u ≥ Total() as just below it, giving the last slot with a
// non-zero priority. The result always has a non-zero priority, so it is
// below Cap() and is a slot that has been set. O(log n), no allocation.
// It panics if Total() is 0.
func (t *Tree) Find(u float64) int {
	sum := t.sum
	total := sum[1]
	if !(total > 0) {
		panic("sumtree: Find on a tree with all priorities 0")
	}
	if u >= total {
		u = math.Inf(1) // right whenever right is non-empty: the last non-zero leaf
	} else if !(u > 0) {
		u = 0
	}
	k, n := 1, t.leaves
	// Invariant: sum[k] > 0. A positive sum has a positive child, and the
	// descent only enters positive children.
	for k < n {
		l := 2 * k
		sl := sum[l]
		if u < sl || sum[l+1] == 0 {
			k = l
		} else {
			u -= sl
			k = l + 1
		}
	}
	return k - n
}

// SampleStratified draws batch slots with probability proportional to their
// priorities by stratified sampling: [0, Total()) is split into batch equal
// segments and one u is drawn uniformly in each (the PER paper's scheme), so
// the slots come out in non-decreasing order. It returns out[:batch], reusing
// out's storage when its capacity allows (then it allocates nothing). It
// panics if batch < 0 or Total() is 0.
func (t *Tree) SampleStratified(batch int, rng *rand.Rand, out []int) []int {
	if batch < 0 {
		panic(fmt.Sprintf("sumtree: SampleStratified batch %d < 0", batch))
	}
	if !(t.sum[1] > 0) {
		panic("sumtree: SampleStratified on a tree with all priorities 0")
	}
	if cap(out) < batch {
		out = make([]int, batch)
	}
	out = out[:batch]
	seg := t.sum[1] / float64(batch)
	for j := range out {
		out[j] = t.Find((float64(j) + rng.Float64()) * seg)
	}
	return out
}

// ImportanceWeights returns the normalised importance-sampling weights of
// the slots idx in out[:len(idx)] (reusing out's storage when its capacity
// allows): w_i = (size·P(i))^−β / max_j w_j with P(i) = p_i/Total() and the
// maximum over the whole table, max_j w_j = (size·P_min)^−β where P_min =
// Min()/Total(). size (the number of transitions held) and Total() cancel,
// so w_i = (Min()/p_i)^β, which is computed directly: every weight is at
// most 1, the slots with the smallest priority get exactly 1, and with
// priorities in [MinPriority, MaxPriority] every weight is at least 1e-12.
// It panics if size < 1, β is not in [0, 1], or a slot is out of range or
// has priority 0.
func (t *Tree) ImportanceWeights(idx []int, size int, beta float64, out []float32) []float32 {
	if size < 1 {
		panic(fmt.Sprintf("sumtree: ImportanceWeights size %d < 1", size))
	}
	if !(beta >= 0 && beta <= 1) {
		panic(fmt.Sprintf("sumtree: ImportanceWeights beta %v outside [0, 1]", beta))
	}
	if cap(out) < len(idx) {
		out = make([]float32, len(idx))
	}
	out = out[:len(idx)]
	pmin := t.Min()
	for j, i := range idx {
		p := t.Get(i)
		if p == 0 {
			panic(fmt.Sprintf("sumtree: ImportanceWeights slot %d has priority 0 (never sampled)", i))
		}
		// pmin ≤ p exactly, so the ratio and its power are in (0, 1].
		out[j] = float32(math.Pow(pmin/p, beta))
	}
	return out
}
