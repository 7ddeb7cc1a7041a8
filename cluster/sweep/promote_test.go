package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/messages"
)

func TestASHASegments(t *testing.T) {
	a := ASHA{MinSteps: 1000, Eta: 3}
	for _, c := range []struct {
		max  uint64
		want []uint64
	}{{9000, []uint64{1000, 3000, 9000}}, {10000, []uint64{1000, 3000, 9000, 10000}}, {500, []uint64{500}}, {1000, []uint64{1000}}} {
		if got := a.segments(c.max); !slices.Equal(got, c.want) {
			t.Errorf("segments(%d) = %v, want %v", c.max, got, c.want)
		}
	}
	if !a.promotes() || (ASHA{Mode: ASHAStop}).promotes() {
		t.Error("the promotion form is the default, stop is not it")
	}
}

// The paper's promotion rule: at a rung of n values, the top ⌊n/η⌋ go on,
// best first; a trial without a value ranks last; ties go by trial id.
func TestASHABookTop(t *testing.T) {
	b := newASHABook(ASHA{MinSteps: 1000, Eta: 3})
	f := func(x float64) rungValue { return &x }
	b.reach("c", 0, f(30))
	b.reach("a", 0, f(10))
	if got := b.top(0); len(got) != 0 {
		t.Fatalf("2 at rung 0, η 3: top %v, want none", got)
	}
	b.reach("b", 0, nil)
	if got := b.top(0); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("top %v, want [c]", got)
	}
	b.reach("d", 0, f(30))
	b.reach("e", 0, f(5))
	b.reach("g", 0, f(31))
	if got := b.top(0); !slices.Equal(got, []string{"g", "c"}) {
		t.Fatalf("6 at rung 0: top %v, want [g c]", got)
	}
	b.reach("g", 0, f(-1)) // a value it has stays
	if got := *b.trials["g"][0]; got != 31 {
		t.Fatalf("g's rung-0 value changed to %v", got)
	}
	b.reach("z", 2, f(1)) // rungs it was not seen at count as no value
	if len(b.rungs) != 3 || len(b.rungs[1]) != 1 || b.rungs[1][0] != nil {
		t.Fatalf("rungs %v", b.rungs)
	}
}

// promoLab drives a coordinator under the promotion form with results made
// up by the test: which segments go out, with what, and what is recorded.
type promoLab struct {
	t      *testing.T
	a      *coordActor
	ctx    *coordCtx
	rec    *recorder
	done   chan error
	log    *bytes.Buffer
	trials []Trial
}

func newPromoLab(t *testing.T, out string, n int) *promoLab {
	var grid []string
	for i := range n {
		grid = append(grid, fmt.Sprintf("%d", 100+i))
	}
	return newSegLab(t, out, "env: CartPole-v1\nmethod: grid\nparams:\n  batch_size: ["+strings.Join(grid, ", ")+"]\nseeds: [1]\nmax_steps: 9000\n"+
		"scheduler: {name: asha, min_steps: 1000, eta: 3}\n")
}

// newSegLab is a lab of the spec's sweep.
func newSegLab(t *testing.T, out, specText string) *promoLab {
	spec := mustSpec(t, specText)
	n := 0
	trials, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	n = len(trials)
	rows, _ := ReadResults(filepath.Join(out, ResultsFile))
	rec := &recorder{path: filepath.Join(out, ResultsFile), outDir: out, trials: trials, rows: rows}
	l := &promoLab{t: t, rec: rec, done: make(chan error, 1), log: &bytes.Buffer{}, trials: trials}
	worker := actor.NewPID("127.0.0.1:9", trialWorkerName)
	l.a = newCoordActor(coordOptions{Sweep: "s", Trials: trials, Total: n, Slots: 2, Log: l.log, Record: rec.record, Mark: rec.mark,
		ASHA: spec.Scheduler, Finished: LatestByKey(rows), PBT: spec.PBT, Params: spec.Params, Resolve: spec.trialConfig,
		Workers:       func() []sweepWorker { return []sweepWorker{{Node: "W", PID: worker}} },
		AcceptTimeout: time.Hour, HeartbeatTimeout: time.Hour}, l.done)
	l.ctx = &coordCtx{self: actor.NewPID("127.0.0.1:8", coordinatorName)}
	l.a.self = l.ctx.self
	return l
}

// starts are the StartTrials sent since the last call.
func (l *promoLab) starts() []*messages.StartTrial {
	var out []*messages.StartTrial
	for _, m := range l.ctx.sent {
		if st, ok := m.(*messages.StartTrial); ok {
			out = append(out, st)
		}
	}
	l.ctx.sent = nil
	return out
}

// finish ends a started segment at its max_steps with mean100 v.
func (l *promoLab) finish(st *messages.StartTrial, v float64) { l.finishAt(st, v, 17) }

// finishAt ends a started segment over past its max_steps with mean100 v.
func (l *promoLab) finishAt(st *messages.StartTrial, v float64, over uint64) {
	l.t.Helper()
	var cf qfleet.Config
	if err := qfleet.ParseConfig(st.ConfigYaml, st.Trial, &cf); err != nil {
		l.t.Fatal(err)
	}
	sum, _ := json.Marshal(qfleet.Summary{Env: "CartPole-v1", EnvSteps: cf.MaxSteps + over, MeanReturn100: v, MeanReturn100N: 40, WallSeconds: 2})
	res := &messages.TrialResult{Trial: st.Trial, Attempt: st.Attempt, Node: "W", Ok: true, SummaryJson: sum, WallSeconds: 2,
		RunDir: "/elsewhere/" + st.Trial, ScalarsJsonl: fmt.Appendf(nil, "{\"step\":%d,\"name\":\"mean100\",\"value\":%v}\n", cf.MaxSteps, v)}
	if st.KeepCheckpoint {
		res.Checkpoint = []byte("ckpt of " + st.Trial + fmt.Sprint(cf.MaxSteps))
		res.ReplaySnapshot = []byte("snap")
	}
	l.ctx.deliver(l.a, res)
}

func maxSteps(t *testing.T, st *messages.StartTrial) uint64 {
	var cf qfleet.Config
	if err := qfleet.ParseConfig(st.ConfigYaml, st.Trial, &cf); err != nil {
		t.Fatal(err)
	}
	return cf.MaxSteps
}

// Six trials, η 3, rungs 1000 and 3000 below max_steps 9000: every trial
// runs to 1000 and pauses; at rung 0 the top ⌊n/3⌋ are promoted as they
// earn it, the best first; at the end the rest is pruned. The promoted
// segments carry the checkpoint their trial paused with.
func TestASHAPromotion(t *testing.T) {
	out := t.TempDir()
	l := newPromoLab(t, out, 6)
	value := map[string]float64{}
	for i, tr := range l.trials {
		value[tr.ID] = float64([]int{50, 10, 70, 20, 90, 30}[i])
	}
	l.ctx.deliver(l.a, &coordTick{})
	var steps []uint64
	var promoted []string
	for range 20 {
		sts := l.starts()
		if len(sts) == 0 {
			break
		}
		for _, st := range sts {
			ms := maxSteps(t, st)
			steps = append(steps, ms)
			if ms > 1000 {
				promoted = append(promoted, fmt.Sprintf("%s@%d", st.Trial, ms))
				if want := fmt.Sprintf("ckpt of %s%d", st.Trial, ms/3); string(st.Checkpoint) != want || string(st.ReplaySnapshot) != "snap" {
					t.Fatalf("%s to %d carries checkpoint %q, want %q", st.Trial, ms, st.Checkpoint, want)
				}
			} else if len(st.Checkpoint) != 0 {
				t.Fatalf("a first segment carries a checkpoint")
			}
			if st.KeepCheckpoint != (ms < 9000) {
				t.Fatalf("%s to %d: keep_checkpoint %v", st.Trial, ms, st.KeepCheckpoint)
			}
			l.finish(st, value[st.Trial]+float64(ms)/1000)
		}
	}
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the sweep did not end; log:\n%s", l.log)
	}
	// Whatever the order trials start in (the sweep shuffles it), the top
	// ⌊6/3⌋ at rung 0 are t4 (90) and t2 (70); the first values may let one
	// more through. For instance, in trial order: t0 (50) and t1 (10) pause;
	// t2 (70) makes 3 there, the top 1 is t2: promoted. Later rung 0 holds
	// 6: the top 2 are t4 (90) and t2; t4 goes on, and t4 at rung 1 (1 of
	// 2 there with t2 … ⌊2/3⌋ = 0) waits; the sweep prunes the rest.
	var total uint64
	for _, s := range steps {
		total += s
	}
	rows := LatestByKey(l.rec.rows)
	status := map[string]string{}
	for _, r := range rows {
		status[r.Trial] = r.Status
		if r.Status == StatusPaused {
			t.Errorf("%s left paused at the end", r.Trial)
		}
		if _, err := os.Stat(filepath.Join(r.LocalDir, PauseDir)); err == nil {
			t.Errorf("%s: its pause checkpoint is still kept", r.Trial)
		}
	}
	t.Logf("promoted %v; segment env steps %v (sum %d); statuses %v", promoted, steps, total, status)
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	if !slices.Contains(promoted, l.trials[2].ID+"@3000") || !slices.Contains(promoted, l.trials[4].ID+"@3000") {
		t.Fatalf("promoted %v: want the two best at rung 0 (%s, %s) to rung 1", promoted, l.trials[2].ID, l.trials[4].ID)
	}
	for _, i := range []int{0, 1, 3, 5} {
		if status[l.trials[i].ID] != StatusPruned {
			t.Errorf("%s (mean100 %v): %s, want pruned", l.trials[i].ID, value[l.trials[i].ID], status[l.trials[i].ID])
		}
	}
	// Of 6 trials to 9000 (54000 env steps), ASHA ran 6×1000 + 2×2000
	// (+ one more rung if promoted from rung 1).
	if total > 6*1000+2*3000+9000 {
		t.Fatalf("segments ran to %d env steps in all", total)
	}
	// A promoted trial's files under the sweep are the whole trial: both
	// segments' scalars.
	r := rows[l.trials[4].Key]
	data, err := os.ReadFile(filepath.Join(r.LocalDir, qfleet.RunScalarsFile))
	if err != nil || strings.Count(string(data), "\n") < 2 || r.Segments < 2 {
		t.Fatalf("t4's scalars %q (%v), segments %d", data, err, r.Segments)
	}
	if r.WallSeconds < 4 {
		t.Fatalf("t4's wall %v: want its segments' sum", r.WallSeconds)
	}
}

// A sweep stopped while trials are paused resumes them from the
// checkpoints kept in their directories; a promoted segment whose node is
// lost runs again from the same checkpoint, not from the start.
func TestASHAPromotionResumes(t *testing.T) {
	out := t.TempDir()
	l := newPromoLab(t, out, 3)
	l.ctx.deliver(l.a, &coordTick{})
	for _, st := range l.starts() { // t0, t1
		l.finish(st, 10)
	}
	sts := l.starts() // t2 only: no promotion yet (2 at rung 0)
	if len(sts) != 1 || maxSteps(t, sts[0]) != 1000 {
		t.Fatalf("after two pauses: %v", sts)
	}
	// The sweep stops here: t0 and t1 are paused, t2 runs.
	rows := LatestByKey(l.rec.rows)
	for _, tr := range l.trials[:2] {
		r := rows[tr.Key]
		if r.Status != StatusPaused {
			t.Fatalf("%s: %s, want paused", tr.ID, r.Status)
		}
		if _, err := os.Stat(filepath.Join(r.LocalDir, PauseDir, actors.CheckpointFile)); err != nil {
			t.Fatalf("%s's checkpoint is not kept: %v", tr.ID, err)
		}
	}
	l2 := newPromoLab(t, out, 3)
	if len(l2.a.queue) != 1 || l2.a.queue[0].ID != l.trials[2].ID || len(l2.a.seg.(*promoter).paused) != 2 {
		t.Fatalf("resumed: queue %v, paused %v; want t2 queued, t0 and t1 paused", l2.a.queue, l2.a.seg.(*promoter).paused)
	}
	l2.ctx.deliver(l2.a, &coordTick{})
	sts = l2.starts()
	if len(sts) != 1 || sts[0].Trial != l.trials[2].ID {
		t.Fatalf("resumed sweep gave out %v", sts)
	}
	l2.finish(sts[0], 99) // 3 at rung 0: t2 is the top 1
	sts = l2.starts()
	if len(sts) != 1 || sts[0].Trial != l.trials[2].ID || maxSteps(t, sts[0]) != 3000 {
		t.Fatalf("after t2's pause: %v", sts)
	}
	// Its node is lost: the segment runs again, from the same checkpoint.
	l2.a.requeue(l2.ctx, l2.a.running[sts[0].Trial], "lost", true)
	l2.ctx.sent = nil
	l2.a.dispatch(l2.ctx)
	again := l2.starts()
	if len(again) != 1 || again[0].Trial != sts[0].Trial || maxSteps(t, again[0]) != 3000 || !bytes.Equal(again[0].Checkpoint, sts[0].Checkpoint) || again[0].Attempt == sts[0].Attempt {
		t.Fatalf("a lost promoted segment ran again as %v", again)
	}
	// The first attempt's late result is as good (the same segment from
	// the same checkpoint): the first result of any attempt is taken, the
	// other attempt is cancelled, and a repeat changes nothing.
	// Nothing else is left, so t2, the best at the highest rung, goes on
	// to the end at once.
	l2.finish(sts[0], 1)
	if as := l2.a.running[sts[0].Trial]; as == nil || as.attempt == again[0].Attempt {
		t.Fatalf("the segment's result was not taken: running %v", as)
	}
	cancelled := false
	for _, m := range l2.ctx.sent {
		if c, ok := m.(*messages.CancelTrial); ok && c.Trial == again[0].Trial && c.Attempt == again[0].Attempt {
			cancelled = true
		}
	}
	if !cancelled {
		t.Fatalf("the other attempt was not cancelled: %v", l2.ctx.sent)
	}
	n := len(l2.rec.rows)
	l2.finish(again[0], 5)
	l2.finish(sts[0], 5)
	if len(l2.rec.rows) != n {
		t.Fatalf("repeats recorded: %d rows, want %d", len(l2.rec.rows), n)
	}
	last := l2.starts()
	if len(last) != 1 || maxSteps(t, last[0]) != 9000 {
		t.Fatalf("the last segment: %v", last)
	}
	l2.finish(last[0], 200)
	select {
	case err := <-l2.done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the sweep did not end:\n%s", l2.log)
	}
	rows = LatestByKey(l2.rec.rows)
	if r := rows[l.trials[2].Key]; r.Status != StatusOK || r.Segments != 3 || r.EnvSteps != 9017 {
		t.Fatalf("t2's row %+v", r)
	}
	for _, tr := range l.trials[:2] {
		if r := rows[tr.Key]; r.Status != StatusPruned || r.PrunedAt != 1000 {
			t.Fatalf("%s's row %+v, want pruned at 1000", tr.ID, r)
		}
	}
}

// A peer that sends back more checkpoint than a worker does is not
// followed: the trial fails, with why, and nothing is kept.
func TestASHAPromotionRefusesOversizedCheckpoints(t *testing.T) {
	out := t.TempDir()
	l := newPromoLab(t, out, 3)
	l.ctx.deliver(l.a, &coordTick{})
	st := l.starts()[0]
	sum, _ := json.Marshal(qfleet.Summary{Env: "CartPole-v1", EnvSteps: 1017, MeanReturn100: 9, MeanReturn100N: 10})
	l.ctx.deliver(l.a, &messages.TrialResult{Trial: st.Trial, Attempt: st.Attempt, Node: "W", Ok: true, SummaryJson: sum,
		Checkpoint: make([]byte, maxCheckpointBytes+1)})
	r := LatestByKey(l.rec.rows)[l.a.byID[st.Trial].Key]
	if r.Status != StatusFailed || !strings.Contains(r.Error, "more than the") {
		t.Fatalf("row %+v: want failed, checkpoint too large", r)
	}
	if _, err := os.Stat(filepath.Join(r.LocalDir, PauseDir)); err == nil {
		t.Fatal("the oversized checkpoint was kept")
	}
}
