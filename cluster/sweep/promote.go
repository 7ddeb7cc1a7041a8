package sweep

// ASHA's promotion form in the coordinator: a trial runs in segments, each
// to a rung's env steps (its config's max_steps set to the rung), and
// pauses at the end of each with its checkpoint; a free slot goes to the
// best paused trial its rung promotes, else to a new trial. A promoted
// segment runs anywhere: the coordinator holds the checkpoint and hands it
// to the worker with the segment.

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/messages"
)

// pausedTrial is a trial between segments: paused at a rung, or promoted
// and running its next segment (its checkpoint kept until that segment
// ends, in case its node is lost and the segment runs again).
type pausedTrial struct {
	trial      *Trial
	rung       int // the rung its last segment ended at
	ckpt, snap []byte
	row        Row  // the row recorded when it paused
	promoted   bool // its next segment is given out
}

// promoter is the coordinator's state of the promotion form.
type promoter struct {
	a       ASHA
	book    *ashaBook
	paused  map[string]*pausedTrial // by trial id
	segment map[string]int          // trial id → the segment its attempts run
	bySeg   map[string]int          // trial attempt key → the segment it ran
	// topped: a trial ran its last segment (or was solved). Until one has,
	// a sweep with nothing left to run continues the best paused trial of
	// the highest rung: with fewer than η^k trials, ⌊n/η⌋ at rung k is 0,
	// and the paper's rule would end the sweep with no trial run through.
	topped bool
}

func newPromoter(book *ashaBook, a ASHA) *promoter {
	return &promoter{a: a, book: book, paused: map[string]*pausedTrial{}, segment: map[string]int{}, bySeg: map[string]int{}}
}

// resume takes back a trial that a resumed sweep had paused: its row and
// the checkpoint kept beside it. false: the files are gone, and the trial
// runs again from its start.
func (p *promoter) resume(t *Trial, r Row) bool {
	rungs := p.book.rungValues(r.Rungs)
	if len(rungs) == 0 || r.LocalDir == "" {
		return false
	}
	ckpt, snap, err := readResumeFiles(filepath.Join(r.LocalDir, PauseDir))
	if err != nil {
		return false
	}
	p.paused[t.ID] = &pausedTrial{trial: t, rung: len(rungs) - 1, ckpt: ckpt, snap: snap, row: r}
	return true
}

// idle continues the best paused trial at the highest rung when nothing
// else is left and no trial has run to the end; else it prunes the rest.
func (p *promoter) idle(a *coordActor) (bool, error) {
	if pt := p.last(); pt != nil {
		fmt.Fprintf(a.o.Log, "sweep %s: no trial has run to the end and no rung promotes one: %s, the best at rung %d, goes on\n", a.o.Sweep, pt.trial.ID, pt.rung)
		pt.promoted = true
		return true, nil
	}
	return false, p.pruneRest(a)
}

// lost: a promoted trial's segment runs again from its checkpoint.
func (p *promoter) lost(trial string) bool {
	delete(p.segment, trial)
	pt := p.paused[trial]
	return pt != nil && pt.promoted
}

func (p *promoter) forget(trial string) { delete(p.paused, trial) }

// last is the paused trial that finishes a sweep no rung promotes from:
// the best at the highest rung, while no trial has run its last segment.
func (p *promoter) last() *pausedTrial {
	if p.topped {
		return nil
	}
	var best *pausedTrial
	for _, id := range sortedKeys(p.paused) {
		pt := p.paused[id]
		if pt.promoted {
			continue
		}
		if best == nil || pt.rung > best.rung || (pt.rung == best.rung && better(pt.row.FinalMean100, best.row.FinalMean100)) {
			best = pt
		}
	}
	return best
}

// better reports whether mean100 x ranks above y (none ranks last).
func better(x, y *float64) bool { return x != nil && (y == nil || *x > *y) }

// next is the paused trial a free slot goes to, nil for none.
func (p *promoter) next() *Trial {
	if pt := p.nextPaused(); pt != nil {
		return pt.trial
	}
	return nil
}

// nextPaused is the paused trial a free slot goes to, nil for none: a
// promoted trial whose segment was lost first, then the best promotable at
// the highest rung (the paper's get_job).
func (p *promoter) nextPaused() *pausedTrial {
	for _, id := range sortedKeys(p.paused) {
		if pt := p.paused[id]; pt.promoted {
			if _, running := p.segment[id]; !running {
				return pt
			}
		}
	}
	for i := len(p.book.rungs) - 1; i >= 0; i-- {
		for _, id := range p.book.top(i) {
			if pt := p.paused[id]; pt != nil && !pt.promoted && pt.rung == i {
				return pt
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// start gives out trial t's next segment as attempt: its first, or the
// one after the rung it paused at.
func (p *promoter) start(t *Trial, attempt uint32) (*messages.StartTrial, string, error) {
	seg, line := 0, ""
	if pt := p.paused[t.ID]; pt != nil {
		seg = pt.rung + 1
		line = fmt.Sprintf("%s promoted to rung %d, from its checkpoint at %d env steps", t.ID, seg, pt.row.EnvSteps)
	}
	st, err := p.segmentStart(p.a, t, seg)
	if err != nil {
		return nil, "", err
	}
	p.segment[t.ID] = seg
	p.bySeg[trialAttemptKey(t.ID, attempt)] = seg
	if pt := p.paused[t.ID]; pt != nil {
		pt.promoted = true
	}
	return st, line, nil
}

// segmentOf is the segment of a trial's attempt a result is for, false for
// a result of a segment already recorded (a late repeat).
func (p *promoter) segmentOf(trial string, attempt uint32) (int, bool) {
	seg, ok := p.bySeg[trialAttemptKey(trial, attempt)]
	if !ok {
		return 0, false
	}
	cur, running := p.segment[trial]
	return seg, running && cur == seg
}

// segmentStart is a segment's StartTrial fields: the config with max_steps
// at the segment's rung, and the checkpoint it continues from.
func (p *promoter) segmentStart(a ASHA, t *Trial, seg int) (*messages.StartTrial, error) {
	cf, err := readTrialConfig(t)
	if err != nil {
		return nil, err
	}
	segs := a.segments(cf.MaxSteps)
	seg = min(seg, len(segs)-1)
	cf.MaxSteps = segs[seg]
	header := fmt.Sprintf("Trial %s, segment %d of at most %d: to %d env steps (ASHA rung %d).", t.ID, seg+1, len(segs), segs[seg], seg)
	data, err := qfleet.MarshalConfig(cf, header)
	if err != nil {
		return nil, err
	}
	st := &messages.StartTrial{ConfigYaml: data, KeepCheckpoint: seg < len(segs)-1}
	if pt := p.paused[t.ID]; seg > 0 && pt != nil {
		st.Checkpoint, st.ReplaySnapshot = pt.ckpt, pt.snap
	}
	return st, nil
}

// readTrialConfig is a trial's config as its file says.
func readTrialConfig(t *Trial) (qfleet.Config, error) {
	var cf qfleet.Config
	if err := qfleet.ParseConfig(t.Config, t.ID, &cf); err != nil {
		return cf, err
	}
	return cf, nil
}

// segmentEnd is what a segment's ok result means: the trial pauses at
// rung seg (its mean100 there is v), or it is over (solved, or at its
// max_steps).
func segmentEnd(a ASHA, t *Trial, seg int, res *messages.TrialResult) (pause bool, v rungValue) {
	var sum qfleet.Summary
	if json.Unmarshal(res.SummaryJson, &sum) != nil {
		return false, nil
	}
	if sum.MeanReturn100N > 0 && !math.IsNaN(sum.MeanReturn100) && !math.IsInf(sum.MeanReturn100, 0) {
		x := sum.MeanReturn100
		v = &x
	}
	cf, err := readTrialConfig(t)
	if err != nil {
		return false, v
	}
	last := len(a.segments(cf.MaxSteps)) - 1
	return !sum.Solved && seg < last && sum.EnvSteps < cf.MaxSteps, v
}

// segmentNotes are the notes of a segment's result: the segments before it.
func (p *promoter) segmentNotes(t *Trial, seg int) trialNotes {
	n := trialNotes{Segmented: true, Segment: seg}
	if pt := p.paused[t.ID]; pt != nil && seg > 0 {
		n.EarlierWall, n.EarlierBest = pt.row.WallSeconds, pt.row.BestMean100
	}
	return n
}

// result handles a segment's result under the promotion form; ok false:
// it is a late repeat of a segment already recorded.
func (p *promoter) result(a *coordActor, m *messages.TrialResult, t *Trial) (done bool, ok bool) {
	seg, current := p.segmentOf(m.Trial, m.Attempt)
	if !current {
		return false, false
	}
	delete(p.segment, m.Trial)
	notes := p.segmentNotes(t, seg)
	pause, v := false, rungValue(nil)
	if m.Ok {
		pause, v = segmentEnd(p.a, t, seg, m)
		a.asha.reach(m.Trial, seg, v)
		notes.Rungs = a.asha.rungMap(m.Trial)
	}
	pause = settlePause(m, pause)
	notes.Pause = pause
	if pause {
		notes.Checkpoint, notes.Snaps = m.Checkpoint, m.ReplaySnapshot
	}
	row, line, err := a.o.Record(*t, m, notes)
	if err != nil {
		a.finish(fmt.Errorf("recording %s: %w", m.Trial, err))
		return false, true
	}
	if pause {
		p.paused[m.Trial] = &pausedTrial{trial: t, rung: seg, ckpt: m.Checkpoint, snap: m.ReplaySnapshot, row: row}
		keep, n := len(a.asha.top(seg)), len(a.asha.rungs[seg])
		line += fmt.Sprintf(" (rung %d: the top %d of the %d there go on)", seg, keep, n)
	} else {
		delete(p.paused, m.Trial)
		p.topped = p.topped || m.Ok
	}
	fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s\n", a.o.Sweep, a.doneCount()+boolInt(!pause), a.o.Total, line)
	return !pause, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pruneRest ends the sweep's paused trials that no rung promotes: nothing
// runs, nothing waits, and no promotion is left. Each is recorded pruned
// at the rung where it paused.
func (p *promoter) pruneRest(a *coordActor) error {
	for _, id := range sortedKeys(p.paused) {
		pt := p.paused[id]
		row := pt.row
		keep, n := len(a.asha.top(pt.rung)), len(a.asha.rungs[pt.rung])
		row.Status, row.PrunedAt = StatusPruned, a.asha.a.rung(pt.rung)
		row.Finished = time.Now().UTC().Format(time.RFC3339)
		why := fmt.Sprintf("mean100 %s at rung %d (%d env steps) was not among the top %d of the %d there (eta %g)",
			optFloat(row.FinalMean100), pt.rung, row.PrunedAt, keep, n, a.asha.a.Eta)
		if err := a.o.Mark(row); err != nil {
			return fmt.Errorf("recording %s: %w", id, err)
		}
		delete(p.paused, id)
		a.finished[id] = true
		fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s pruned: %s\n", a.o.Sweep, a.doneCount(), a.o.Total, id, why)
	}
	return nil
}
