// Package sumtree is the index behind proportional prioritized experience
// replay (Schaul et al. 2016, "Prioritized Experience Replay"; Horgan et al.
// 2018, "Distributed Prioritized Experience Replay", i.e. Ape-X).
//
// # What it stores
//
// A Tree has one leaf per slot of the replay table's ring buffer: slot i of
// the table is leaf i of the tree, and overwriting slot i in ring order is a
// Set(i, p). The value of a leaf is the slot's sampling priority p_i, already
// raised to the power α by the caller (the tree never sees α). A leaf of 0 is
// an empty slot: it is never sampled and does not count towards Min. Slot i
// is drawn with probability P(i) = p_i / Total().
//
// # Structure
//
// The tree is a complete binary tree laid out in arrays, heap style: node 1
// is the root, the children of node k are 2k and 2k+1, and the leaves are
// nodes L..2L-1, where L is the capacity rounded up to a power of two. Leaves
// past the capacity stay 0 and are never sampled. Two arrays are kept:
//
//   - sum[k]: the sum of the leaves under node k, so sum[1] is Total() and a
//     prefix-sum query is a walk from the root to a leaf (Find);
//   - ext[k]: the minimum over the non-zero leaves under k (+Inf when there
//     are none) and the maximum over all leaves under k, so Min() and Max()
//     are read at the root in O(1).
//
// Set writes a leaf and walks up to the root recomputing each ancestor from
// its two children; Find walks down from the root. Both are O(log n) (20
// levels at a capacity of 1<<20), iterative and allocation-free. The min/max
// pair sits in one array so that an update touches one cache line per level
// for both; sums sit alone so that the descent in Find, the hot path of
// sampling, reads only the array it needs.
//
// # Why it stays exact
//
// Each ancestor is recomputed from its children on every Set instead of
// having the change in priority added to it. Adding deltas lets rounding
// error pile up over millions of updates, until Total() disagrees with the
// leaves and the descent walks into empty leaves or past the last slot. With
// recomputation every internal node is always the correctly rounded sum of
// its two children, so the whole tree is a function of the current leaves
// alone, independent of the order of updates: no drift, ever.
//
// Rounding still exists within one descent (u − sum[left] is rounded), so
// Find never relies on it: it enters a child only if that child's sum is
// positive, which keeps it out of empty slots and out of the padding past
// the capacity, and it clamps u into [0, Total()). Min and Max are exact:
// they are comparisons, not arithmetic.
//
// # Sampling and importance weights
//
// SampleStratified is the PER paper's scheme: [0, Total()) is split into
// batch equal segments and one u is drawn uniformly in each, which lowers
// the variance of a batch compared with batch independent draws while
// keeping each draw's marginal probability proportional to priority.
//
// ImportanceWeights returns w_i = (N·P(i))^−β / max_j w_j with the maximum
// taken over the whole table, max_j w_j = (N·P_min)^−β, P_min = Min()/Total()
// (the PER paper's normalisation as implemented by OpenAI Baselines; Dopamine
// instead divides by the largest weight within the batch, with β fixed at
// 0.5). N and Total() cancel, leaving w_i = (Min()/p_i)^β, which is how it is
// computed: it is at most 1 by construction, since Min() ≤ p_i exactly.
// BetaAt anneals β linearly from β0 (0.4 in the PER paper and Ape-X) to 1.
//
// # Priorities from runners
//
// Set accepts any priority in [0, MaxPriority] and panics on anything else
// (negative, NaN, infinite or larger): a bad priority is a bug in the caller,
// and one NaN would poison every sum above it. Priorities that come from
// runners must first go through Clamp, which maps them into [MinPriority,
// MaxPriority]: the lower bound keeps every held transition sampleable and
// bounds the ratio between the largest and smallest priorities (so weights
// stay representable as float32), the upper bound keeps Total() finite.
// A transition sent without a priority gets Max(), Ape-X's rule (or 1 while
// the tree is empty and Max() is 0).
//
// # Concurrency
//
// A Tree is not safe for concurrent use: the replay actor owns it, together
// with the table whose slots it indexes, and every call comes from that
// actor's goroutine.
package sumtree
