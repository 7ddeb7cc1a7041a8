package sumtree

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// checkInvariants verifies that every internal node is exactly recomputed
// from its children and that the padding leaves past the capacity are empty.
func checkInvariants(t *testing.T, tr *Tree) {
	t.Helper()
	for i := tr.capacity; i < tr.leaves; i++ {
		if k := tr.leaves + i; tr.sum[k] != 0 || tr.ext[k].max != 0 || !math.IsInf(tr.ext[k].min, 1) {
			t.Fatalf("padding leaf %d not empty: sum %v ext %+v", i, tr.sum[k], tr.ext[k])
		}
	}
	for k := tr.leaves - 1; k >= 1; k-- {
		l, r := 2*k, 2*k+1
		if want := tr.sum[l] + tr.sum[r]; tr.sum[k] != want {
			t.Fatalf("node %d: sum %v, children give %v", k, tr.sum[k], want)
		}
		if want := math.Min(tr.ext[l].min, tr.ext[r].min); tr.ext[k].min != want {
			t.Fatalf("node %d: min %v, children give %v", k, tr.ext[k].min, want)
		}
		if want := math.Max(tr.ext[l].max, tr.ext[r].max); tr.ext[k].max != want {
			t.Fatalf("node %d: max %v, children give %v", k, tr.ext[k].max, want)
		}
	}
}

// naive is the O(n) reference: a plain slice of priorities.
type naive []float64

func (n naive) total() float64 {
	s := 0.0
	for _, p := range n {
		s += p
	}
	return s
}

func (n naive) min() float64 {
	m := 0.0
	for _, p := range n {
		if p > 0 && (m == 0 || p < m) {
			m = p
		}
	}
	return m
}

func (n naive) max() float64 {
	m := 0.0
	for _, p := range n {
		m = math.Max(m, p)
	}
	return m
}

// find is the linear scan: the first non-zero slot whose prefix interval
// ends after u, or the last non-zero slot when u is past the end.
func (n naive) find(u float64) int {
	s, last := 0.0, -1
	for i, p := range n {
		if p == 0 {
			continue
		}
		last = i
		s += p
		if u < s {
			return i
		}
	}
	return last
}

// chiSquare is Σ (obs−exp)²/exp over the cells with exp > 0, and reports
// whether a cell with exp == 0 was observed.
func chiSquare(counts []int, probs []float64, n int) (chi2 float64, impossible bool) {
	for i, c := range counts {
		e := probs[i] * float64(n)
		if e == 0 {
			if c != 0 {
				impossible = true
			}
			continue
		}
		d := float64(c) - e
		chi2 += d * d / e
	}
	return chi2, impossible
}

// chi2Crit3 is the 0.999 quantile of the chi-square distribution with 3
// degrees of freedom: a correct sampler exceeds it with probability 0.001
// (and, with the fixed seeds below, deterministically does not).
const chi2Crit3 = 16.266

func TestSamplingProportional(t *testing.T) {
	prios := []float64{1, 2, 3, 4, 0} // capacity 5: not a power of two
	tr := New(len(prios))
	for i, p := range prios {
		tr.Set(i, p)
	}
	want := []float64{0.1, 0.2, 0.3, 0.4, 0}
	const n = 200_000

	t.Run("Find", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		counts := make([]int, len(prios))
		for range n {
			counts[tr.Find(rng.Float64()*tr.Total())]++
		}
		chi2, impossible := chiSquare(counts, want, n)
		t.Logf("counts %v chi2 %.2f (critical %.2f)", counts, chi2, chi2Crit3)
		if impossible {
			t.Fatalf("zero-priority slot drawn: counts %v", counts)
		}
		if chi2 > chi2Crit3 {
			t.Fatalf("counts %v not ∝ 1:2:3:4: chi2 %.2f > %.2f", counts, chi2, chi2Crit3)
		}
		// The test has power: the same counts are rejected against a
		// distribution that is off by 5% in one slot, or off by one slot.
		for _, wrong := range [][]float64{
			{1 / 10.2, 2 / 10.2, 3 / 10.2, 4.2 / 10.2, 0},
			{0, 0.1, 0.2, 0.3, 0.4},
			{0.25, 0.25, 0.25, 0.25, 0},
		} {
			if chi2, _ := chiSquare(counts, wrong, n); chi2 < 5*chi2Crit3 {
				t.Errorf("counts %v not rejected against %v: chi2 %.2f", counts, wrong, chi2)
			}
		}
	})

	for _, batch := range []int{32, 128, 7} {
		t.Run("Stratified/batch="+strconv.Itoa(batch), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(batch)))
			counts := make([]int, len(prios))
			var out []int
			draws := n / batch * batch
			for range n / batch {
				out = tr.SampleStratified(batch, rng, out)
				for _, i := range out {
					counts[i]++
				}
			}
			chi2, impossible := chiSquare(counts, want, draws)
			t.Logf("batch %d counts %v chi2 %.2f", batch, counts, chi2)
			if impossible || chi2 > chi2Crit3 {
				t.Fatalf("batch %d: counts %v not ∝ 1:2:3:4:0: chi2 %.2f", batch, counts, chi2)
			}
		})
	}
}

func TestFindBoundaries(t *testing.T) {
	tr := New(5)
	for i, p := range []float64{1, 2, 3, 4, 0} {
		tr.Set(i, p)
	}
	below := func(x float64) float64 { return math.Nextafter(x, math.Inf(-1)) }
	for _, c := range []struct {
		u    float64
		want int
	}{
		{0, 0}, {below(1), 0}, {1, 1}, {below(3), 1}, {3, 2}, {6, 3},
		{below(10), 3},                                 // just below Total
		{10, 3}, {11, 3}, {1e300, 3}, {math.Inf(1), 3}, // ≥ Total: clamped to the last non-zero slot
		{-1, 0}, {math.Inf(-1), 0}, {math.NaN(), 0}, {math.Copysign(0, -1), 0},
	} {
		if got := tr.Find(c.u); got != c.want {
			t.Errorf("Find(%v) = %d, want %d", c.u, got, c.want)
		}
	}

	// Empty slots at either end and in the middle are skipped.
	tr = New(8)
	tr.Set(2, 5)
	tr.Set(5, 1)
	for _, c := range []struct {
		u    float64
		want int
	}{{0, 2}, {-3, 2}, {below(5), 2}, {5, 5}, {below(6), 5}, {6, 5}, {100, 5}} {
		if got := tr.Find(c.u); got != c.want {
			t.Errorf("sparse: Find(%v) = %d, want %d", c.u, got, c.want)
		}
	}
}

// TestFindNeverEmpty throws wide-range priorities with many empty slots at
// Find, at u values on and around every prefix boundary and at the ends,
// where rounding in the descent could lead into an empty leaf.
func TestFindNeverEmpty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	unguarded := 0
	for trial := range 2000 {
		capacity := 1 + rng.IntN(40)
		tr := New(capacity)
		ref := make(naive, capacity)
		for i := range ref {
			if rng.IntN(3) == 0 {
				continue // empty
			}
			ref[i] = math.Pow(10, -6+12*rng.Float64()) * (1 + rng.Float64())
			ref[i] = math.Min(ref[i], MaxPriority)
			tr.Set(i, ref[i])
		}
		if tr.Total() == 0 {
			continue
		}
		var us []float64
		s := 0.0
		for _, p := range ref {
			s += p
			for _, x := range []float64{s, math.Nextafter(s, 0), math.Nextafter(s, math.Inf(1))} {
				us = append(us, x)
			}
		}
		total := tr.Total()
		us = append(us, 0, total, math.Nextafter(total, 0), total*(1-1e-16), rng.Float64()*total)
		for _, u := range us {
			i := tr.Find(u)
			if i < 0 || i >= capacity || ref[i] == 0 {
				t.Fatalf("trial %d: Find(%v) = %d, priorities %v", trial, u, i, ref)
			}
			if j := unguardedFind(tr, u); u < total && (j >= capacity || ref[j] == 0) {
				unguarded++
			}
		}
	}
	t.Logf("the textbook descent hit an empty slot for %d u in [0, Total)", unguarded)
}

// unguardedFind is the textbook descent without Find's guards, to show what
// they are for.
func unguardedFind(tr *Tree, u float64) int {
	k := 1
	for k < tr.leaves {
		if u < tr.sum[2*k] {
			k = 2 * k
		} else {
			u -= tr.sum[2*k]
			k = 2*k + 1
		}
	}
	return k - tr.leaves
}

func TestSetOverwrite(t *testing.T) {
	tr := New(4)
	check := func(total, min, max float64) {
		t.Helper()
		if tr.Total() != total || tr.Min() != min || tr.Max() != max {
			t.Fatalf("Total/Min/Max = %v/%v/%v, want %v/%v/%v", tr.Total(), tr.Min(), tr.Max(), total, min, max)
		}
		checkInvariants(t, tr)
	}
	check(0, 0, 0)
	tr.Set(0, 2)
	check(2, 2, 2)
	tr.Set(1, 8)
	tr.Set(2, 0.5)
	check(10.5, 0.5, 8)
	tr.Set(1, 1) // overwrite the max: Max follows it down
	check(3.5, 0.5, 2)
	tr.Set(2, 4) // overwrite the min: Min follows it up
	check(7, 1, 4)
	tr.Set(0, 0) // empty a slot: Min ignores it
	check(5, 1, 4)
	if tr.Get(0) != 0 || tr.Get(1) != 1 || tr.Get(2) != 4 || tr.Get(3) != 0 {
		t.Fatalf("Get: %v %v %v %v", tr.Get(0), tr.Get(1), tr.Get(2), tr.Get(3))
	}
	tr.Set(1, 0)
	tr.Set(2, 0)
	check(0, 0, 0)
}

func TestCapacityNotPowerOfTwo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 0))
	for _, capacity := range []int{1, 2, 3, 5, 7, 100, 1000, 1<<10 + 1, 3 << 12} {
		tr := New(capacity)
		if tr.Cap() != capacity {
			t.Fatalf("Cap() = %d, want %d", tr.Cap(), capacity)
		}
		for i := range capacity {
			tr.Set(i, 1)
		}
		checkInvariants(t, tr)
		if tr.Total() != float64(capacity) {
			t.Fatalf("capacity %d: Total %v", capacity, tr.Total())
		}
		for _, c := range []struct {
			u    float64
			want int
		}{{0, 0}, {float64(capacity) - 0.5, capacity - 1}, {float64(capacity), capacity - 1}, {1e9, capacity - 1}} {
			if got := tr.Find(c.u); got != c.want {
				t.Fatalf("capacity %d: Find(%v) = %d, want %d", capacity, c.u, got, c.want)
			}
		}
		out := tr.SampleStratified(capacity, rng, nil) // one segment per slot
		for j, i := range out {
			if i != j {
				t.Fatalf("capacity %d: equal priorities, segment %d gave slot %d", capacity, j, i)
			}
		}
		// Fill only part of the ring, as a replay that is still filling up.
		tr = New(capacity)
		filled := (capacity + 1) / 2
		for i := range filled {
			tr.Set(i, 1+rng.Float64())
		}
		for range 1000 {
			if i := tr.Find(rng.Float64() * 2 * tr.Total()); i >= filled {
				t.Fatalf("capacity %d, %d filled: Find gave slot %d", capacity, filled, i)
			}
		}
	}
}

func TestImportanceWeights(t *testing.T) {
	// Priorities 1, 2, 4 in 3 of 4 slots: Total 7, P = 1/7, 2/7, 4/7.
	// β = 0.5: raw w = (3·P)^−½ = 1.5275, 1.0801, 0.7638; the max, from
	// P_min = 1/7, is 1.5275; normalised: 1, 1/√2, 1/2.
	tr := New(4)
	tr.Set(0, 1)
	tr.Set(1, 2)
	tr.Set(2, 4)
	idx := []int{2, 0, 1, 2}
	for _, c := range []struct {
		beta float64
		want []float64
	}{
		{0.5, []float64{0.5, 1, 1 / math.Sqrt2, 0.5}},
		{1, []float64{0.25, 1, 0.5, 0.25}},
		{0, []float64{1, 1, 1, 1}},
		{0.4, []float64{math.Pow(0.25, 0.4), 1, math.Pow(0.5, 0.4), math.Pow(0.25, 0.4)}},
	} {
		got := tr.ImportanceWeights(idx, 3, c.beta, nil)
		for j := range idx {
			// The textbook formula, computed the long way round.
			P := tr.Get(idx[j]) / tr.Total()
			literal := math.Pow(3*P, -c.beta) / math.Pow(3*tr.Min()/tr.Total(), -c.beta)
			if math.Abs(float64(got[j])-c.want[j]) > 1e-7 || math.Abs(literal-c.want[j]) > 1e-12 {
				t.Errorf("β %v: weight of slot %d = %v (literal %v), want %v", c.beta, idx[j], got[j], literal, c.want[j])
			}
			if got[j] > 1 {
				t.Errorf("β %v: weight %v > 1", c.beta, got[j])
			}
		}
	}
	// Weights stay in (0, 1] at the extremes of the clamped range.
	tr.Set(0, MinPriority)
	tr.Set(2, MaxPriority)
	w := tr.ImportanceWeights([]int{0, 1, 2}, 3, 1, nil)
	if w[0] != 1 || !(w[2] > 0) || w[2] > 1 || math.Abs(float64(w[2])-1e-12) > 1e-18 {
		t.Errorf("extreme weights %v", w)
	}
}

func TestBetaAt(t *testing.T) {
	for _, c := range []struct {
		step, anneal int64
		beta0, want  float64
	}{
		{0, 100, 0.4, 0.4}, {-5, 100, 0.4, 0.4}, {50, 100, 0.4, 0.7}, {100, 100, 0.4, 1},
		{1000, 100, 0.4, 1}, {25, 100, 0, 0.25}, {5, 0, 0.4, 1}, {5, -1, 0.4, 1},
	} {
		if got := BetaAt(c.step, c.anneal, c.beta0); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("BetaAt(%d, %d, %v) = %v, want %v", c.step, c.anneal, c.beta0, got, c.want)
		}
	}
}

func TestClamp(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0.5, 0.5}, {0, MinPriority}, {-3, MinPriority}, {1e-9, MinPriority}, {math.NaN(), MinPriority},
		{math.Inf(-1), MinPriority}, {math.Inf(1), MaxPriority}, {1e7, MaxPriority},
		{MinPriority, MinPriority}, {MaxPriority, MaxPriority},
	} {
		if got := Clamp(c.in); got != c.want {
			t.Errorf("Clamp(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestStratifiedSegments checks that draw j lands in segment j: the slot's
// prefix interval meets [j·Total/batch, (j+1)·Total/batch].
func TestStratifiedSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := range 200 {
		capacity := 1 + rng.IntN(300)
		tr := New(capacity)
		ref := make(naive, capacity)
		for i := range ref {
			if rng.IntN(4) > 0 {
				ref[i] = float64(1+rng.IntN(64)) / 8 // dyadic: sums are exact
				tr.Set(i, ref[i])
			}
		}
		if tr.Total() == 0 {
			continue
		}
		prefix := make([]float64, capacity+1)
		for i, p := range ref {
			prefix[i+1] = prefix[i] + p
		}
		batch := 1 + rng.IntN(256)
		out := tr.SampleStratified(batch, rng, make([]int, 0, batch))
		seg := tr.Total() / float64(batch)
		for j, i := range out {
			if ref[i] == 0 {
				t.Fatalf("trial %d: empty slot %d drawn", trial, i)
			}
			if j > 0 && i < out[j-1] {
				t.Fatalf("trial %d: out not non-decreasing: %v", trial, out)
			}
			lo, hi := float64(j)*seg, float64(j+1)*seg
			if prefix[i+1] < lo*(1-1e-12) || prefix[i] > hi*(1+1e-12) {
				t.Fatalf("trial %d: segment %d [%v, %v] drew slot %d with interval [%v, %v)", trial, j, lo, hi, i, prefix[i], prefix[i+1])
			}
		}
	}
}

// TestAgainstNaive runs random Sets (overwrites, empties, sparse fills)
// against the O(n) reference, comparing every query after every Set.
func TestAgainstNaive(t *testing.T) {
	t.Run("Dyadic", func(t *testing.T) {
		// Priorities k/8 keep every sum exact, so Find must agree exactly.
		rng := rand.New(rand.NewPCG(21, 1))
		for trial := range 40 {
			capacity := 1 + rng.IntN(130)
			tr := New(capacity)
			ref := make(naive, capacity)
			for op := range 400 {
				i := rng.IntN(capacity)
				p := 0.0
				if rng.IntN(5) > 0 {
					p = float64(rng.IntN(200)) / 8
				}
				tr.Set(i, p)
				ref[i] = p
				if tr.Get(i) != p || tr.Total() != ref.total() || tr.Min() != ref.min() || tr.Max() != ref.max() {
					t.Fatalf("trial %d op %d: Total/Min/Max %v/%v/%v, want %v/%v/%v", trial, op, tr.Total(), tr.Min(), tr.Max(), ref.total(), ref.min(), ref.max())
				}
				if tr.Total() == 0 {
					continue
				}
				for range 8 {
					// Half the u on a multiple of 1/8: exactly on interval boundaries.
					u := rng.Float64() * tr.Total() * 1.1
					if rng.IntN(2) == 0 {
						u = math.Floor(u*8) / 8
					}
					if got, want := tr.Find(u), ref.find(u); got != want {
						t.Fatalf("trial %d op %d: Find(%v) = %d, want %d; priorities %v", trial, op, u, got, want, ref)
					}
				}
			}
			checkInvariants(t, tr)
		}
	})
	t.Run("Real", func(t *testing.T) {
		// Log-uniform priorities over the clamped range: sums round, so Find
		// must give a non-empty slot whose interval holds u up to rounding.
		rng := rand.New(rand.NewPCG(21, 2))
		for trial := range 40 {
			capacity := 1 + rng.IntN(300)
			tr := New(capacity)
			ref := make(naive, capacity)
			for op := range 300 {
				i := rng.IntN(capacity)
				p := 0.0
				if rng.IntN(6) > 0 {
					p = Clamp(math.Pow(10, -7+14*rng.Float64()))
				}
				tr.Set(i, p)
				ref[i] = p
				total := ref.total()
				if tr.Min() != ref.min() || tr.Max() != ref.max() || math.Abs(tr.Total()-total) > 1e-12*total {
					t.Fatalf("trial %d op %d: Total/Min/Max %v/%v/%v, want %v/%v/%v", trial, op, tr.Total(), tr.Min(), tr.Max(), total, ref.min(), ref.max())
				}
				if total == 0 {
					continue
				}
				for range 8 {
					u := rng.Float64() * tr.Total()
					j := tr.Find(u)
					if ref[j] == 0 {
						t.Fatalf("trial %d op %d: Find(%v) gave empty slot %d", trial, op, u, j)
					}
					lo := 0.0
					for _, p := range ref[:j] {
						lo += p
					}
					tol := 1e-12 * total
					if u < lo-tol || u >= lo+ref[j]+tol {
						t.Fatalf("trial %d op %d: Find(%v) = %d with interval [%v, %v)", trial, op, u, j, lo, lo+ref[j])
					}
				}
			}
			checkInvariants(t, tr)
		}
	})
}

// TestNoDrift: after many updates the tree is bit for bit the tree built
// from its final leaves, so rounding cannot accumulate.
func TestNoDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const capacity = 1000
	tr := New(capacity)
	for range 200_000 {
		tr.Set(rng.IntN(capacity), math.Pow(10, -6+12*rng.Float64()))
	}
	fresh := New(capacity)
	for i := range capacity {
		fresh.Set(i, tr.Get(i))
	}
	for k := range tr.sum {
		if tr.sum[k] != fresh.sum[k] || tr.ext[k] != fresh.ext[k] {
			t.Fatalf("node %d: %v %+v after updates, %v %+v rebuilt", k, tr.sum[k], tr.ext[k], fresh.sum[k], fresh.ext[k])
		}
	}
}

func TestPanics(t *testing.T) {
	full := New(4)
	full.Set(0, 1)
	for _, c := range []struct {
		name, msg string
		f         func()
	}{
		{"New(0)", "capacity", func() { New(0) }},
		{"New(huge)", "capacity", func() { New(MaxCapacity + 1) }},
		{"Set negative", "priority", func() { New(4).Set(0, -1) }},
		{"Set NaN", "priority", func() { New(4).Set(0, math.NaN()) }},
		{"Set Inf", "priority", func() { New(4).Set(0, math.Inf(1)) }},
		{"Set too large", "priority", func() { New(4).Set(0, 2*MaxPriority) }},
		{"Set slot", "slot 4", func() { New(4).Set(4, 1) }},
		{"Set slot -1", "slot -1", func() { New(4).Set(-1, 1) }},
		{"Get slot", "slot 4", func() { New(4).Get(4) }},
		{"Find empty", "all priorities 0", func() { New(4).Find(0) }},
		{"Sample empty", "all priorities 0", func() { New(4).SampleStratified(1, rand.New(rand.NewPCG(1, 1)), nil) }},
		{"Sample batch", "batch", func() { full.SampleStratified(-1, rand.New(rand.NewPCG(1, 1)), nil) }},
		{"Weights zero slot", "priority 0", func() { full.ImportanceWeights([]int{1}, 1, 0.5, nil) }},
		{"Weights beta", "beta", func() { full.ImportanceWeights([]int{0}, 1, 1.5, nil) }},
		{"Weights size", "size", func() { full.ImportanceWeights([]int{0}, 0, 0.5, nil) }},
	} {
		func() {
			defer func() {
				r := recover()
				s, _ := r.(string)
				if !strings.HasPrefix(s, "sumtree: ") || !strings.Contains(s, c.msg) {
					t.Errorf("%s: panic %v, want a sumtree panic mentioning %q", c.name, r, c.msg)
				}
			}()
			c.f()
		}()
	}
	// A rejected Set leaves the tree as it was.
	func() {
		defer func() { recover() }()
		full.Set(0, math.NaN())
	}()
	if full.Get(0) != 1 || full.Total() != 1 {
		t.Errorf("rejected Set changed the tree: Get %v Total %v", full.Get(0), full.Total())
	}
}

func TestNoAllocs(t *testing.T) {
	tr := New(1000)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range 1000 {
		tr.Set(i, 1+rng.Float64())
	}
	out := make([]int, 0, 128)
	w := make([]float32, 0, 128)
	idx := tr.SampleStratified(128, rng, nil)
	for name, f := range map[string]func(){
		"Set":               func() { tr.Set(rng.IntN(1000), rng.Float64()+0.5) },
		"Find":              func() { tr.Find(rng.Float64() * tr.Total()) },
		"SampleStratified":  func() { out = tr.SampleStratified(128, rng, out) },
		"ImportanceWeights": func() { w = tr.ImportanceWeights(idx, 1000, 0.4, w) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocations per call", name, a)
		}
	}
}
