package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ASHA is the asynchronous successive halving scheduler (Li et al. 2020):
// rungs at MinSteps, MinSteps·Eta, MinSteps·Eta², ... env steps, where
// trials record their mean100, and only the top 1/Eta of a rung go on. It
// comes in two forms (Mode):
//
//   - promote (the paper's Algorithm 2, the default): every trial runs to
//     the first rung and pauses there, with a checkpoint; a free slot goes
//     to the best paused trial that is among the top ⌊n/Eta⌋ of the n
//     recorded at its rung (the highest rung first), which continues from
//     its checkpoint to the next rung, else to a new trial. No trial runs
//     past a rung unless it earned it, so a sweep spends about
//     rungs × (trials × MinSteps) env steps whatever the trials' order.
//   - stop (the form of Ray Tune's ASHAScheduler): trials run on and are
//     stopped at a rung where they are not among the top ⌈n/Eta⌉ of the
//     values recorded there so far; the first trials at a rung always go on.
//
// Trials never wait for each other in either form.
type ASHA struct {
	MinSteps uint64  // env steps of the first rung
	Eta      float64 // reduction factor: 1/Eta of each rung goes on (≥ 2)
	Mode     string  // ASHAPromote or ASHAStop
}

// The forms of ASHA.
const (
	ASHAPromote = "promote"
	ASHAStop    = "stop"
)

// promotes reports whether a is the promotion form.
func (a ASHA) promotes() bool { return a.Mode != ASHAStop }

// segments are the env steps each segment of a trial of maxSteps runs to
// under the promotion form: the rungs below maxSteps, then maxSteps.
func (a ASHA) segments(maxSteps uint64) []uint64 {
	var out []uint64
	for i := 0; i < maxRungs && a.rung(i) < maxSteps; i++ {
		out = append(out, a.rung(i))
	}
	return append(out, maxSteps)
}

// maxRungs bounds the rungs a book tracks (MinSteps·Eta^i overflows
// long before).
const maxRungs = 64

// rung is the env steps of rung i.
func (a ASHA) rung(i int) uint64 {
	r := float64(a.MinSteps) * math.Pow(a.Eta, float64(i))
	if r >= math.MaxUint64/2 {
		return math.MaxUint64 / 2
	}
	return uint64(r)
}

// validate checks the scheduler's settings.
func (a ASHA) validate() error {
	switch {
	case a.MinSteps == 0:
		return fmt.Errorf("scheduler: min_steps = 0: want the env steps of the first rung (> 0)")
	case !(a.Eta >= 2 && a.Eta <= 100):
		return fmt.Errorf("scheduler: eta = %v: want 2..100 (1/eta of each rung goes on)", a.Eta)
	case a.Mode != "" && a.Mode != ASHAPromote && a.Mode != ASHAStop:
		return fmt.Errorf("scheduler: mode = %q: want %s (trials pause at each rung, the best are continued) or %s (trials run on until stopped at a rung)", a.Mode, ASHAPromote, ASHAStop)
	}
	return nil
}

// rungValue is a trial's mean100 at a rung; nil when it had none yet (too
// few episodes at low ε), which ranks below every number.
type rungValue = *float64

// ashaBook is what the coordinator knows of the rungs: every value recorded
// at each, and each trial's values (which rungs it passed).
type ashaBook struct {
	a      ASHA
	rungs  [][]rungValue
	trials map[string][]rungValue // trial → its value at rungs 0, 1, ...
}

func newASHABook(a ASHA) *ashaBook {
	return &ashaBook{a: a, trials: map[string][]rungValue{}}
}

// seed records a finished trial's rung values (a resumed sweep's rows).
func (b *ashaBook) seed(trial string, values []rungValue) {
	b.trials[trial] = values
	for i, v := range values {
		b.record(i, v)
	}
}

func (b *ashaBook) record(i int, v rungValue) {
	for len(b.rungs) <= i {
		b.rungs = append(b.rungs, nil)
	}
	b.rungs[i] = append(b.rungs[i], v)
}

// verdict is report's answer: stop the trial at Rung, with why.
type verdict struct {
	Stop bool
	Rung uint64
	Why  string
}

// report takes a trial's progress (env steps, and mean100 when it has one)
// and records it at every rung it passed since its last report; the trial
// stops at the first of them where it is not among the top 1/Eta.
func (b *ashaBook) report(trial string, envSteps uint64, mean100 float64, has bool) verdict {
	var v rungValue
	if has && !math.IsNaN(mean100) {
		x := mean100
		v = &x
	}
	done := b.trials[trial]
	for i := len(done); i < maxRungs && envSteps >= b.a.rung(i); i++ {
		done = append(done, v)
		b.trials[trial] = done
		b.record(i, v)
		if better, n := b.rank(i, v); better >= b.keep(n) {
			return verdict{Stop: true, Rung: b.a.rung(i), Why: fmt.Sprintf("mean100 %s at rung %d (%d env steps): %d of the %d trials there did better, the top %d go on (eta %g)",
				formatValue(v), i, b.a.rung(i), better, n, b.keep(n), b.a.Eta)}
		}
	}
	return verdict{}
}

// rank is how many values recorded at rung i are better than v, and how
// many there are.
func (b *ashaBook) rank(i int, v rungValue) (better, n int) {
	for _, w := range b.rungs[i] {
		if w != nil && (v == nil || *w > *v) {
			better++
		}
	}
	return better, len(b.rungs[i])
}

// keep is how many of n trials at a rung go on: the top ⌈n/Eta⌉.
func (b *ashaBook) keep(n int) int { return int(math.Ceil(float64(n) / b.a.Eta)) }

func formatValue(v rungValue) string {
	if v == nil {
		return "none yet"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// rungMap is a trial's rung values as a row keeps them: env steps → value.
func (b *ashaBook) rungMap(trial string) map[string]rungValue {
	vs := b.trials[trial]
	if len(vs) == 0 {
		return nil
	}
	m := make(map[string]rungValue, len(vs))
	for i, v := range vs {
		m[strconv.FormatUint(b.a.rung(i), 10)] = v
	}
	return m
}

// rungValues reads a row's rungs back in rung order: the prefix of rungs
// the row has, up to the first it lacks.
func (b *ashaBook) rungValues(m map[string]rungValue) []rungValue {
	var out []rungValue
	for i := 0; i < maxRungs; i++ {
		v, ok := m[strconv.FormatUint(b.a.rung(i), 10)]
		if !ok {
			break
		}
		out = append(out, v)
	}
	return slices.Clip(out)
}

// reach records v as a trial's value at rung i, where its segment ended
// (the promotion form); a value it already has there stays.
func (b *ashaBook) reach(trial string, i int, v rungValue) {
	done := b.trials[trial]
	if len(done) > i {
		return
	}
	for len(done) < i {
		done = append(done, nil) // not seen: a resumed sweep lost them
		b.record(len(done)-1, nil)
	}
	b.trials[trial] = append(done, v)
	b.record(i, v)
}

// top lists the trials that recorded a value at rung i and are among the
// top ⌊n/Eta⌋ of the n there, best first (ties by trial id, which orders
// trials as the spec does). A trial without a value ranks below every
// number.
func (b *ashaBook) top(i int) []string {
	var ids []string
	for id, vs := range b.trials {
		if len(vs) > i {
			ids = append(ids, id)
		}
	}
	val := func(id string) float64 {
		if v := b.trials[id][i]; v != nil {
			return *v
		}
		return math.Inf(-1)
	}
	slices.SortFunc(ids, func(x, y string) int {
		if vx, vy := val(x), val(y); vx != vy {
			if vx > vy {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	return ids[:int(math.Floor(float64(len(ids))/b.a.Eta))]
}
