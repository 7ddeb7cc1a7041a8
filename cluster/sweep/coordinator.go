package sweep

// The sweep coordinator: an actor that hands trials to trial workers, at
// most `slots` at a time per worker, and never loses one. Remote delivery is
// at-most-once (NOTES-deps.md), so a trial given to a worker counts as
// running only once the worker accepts it, stays running only while its
// heartbeats arrive, and is handed out again (a new attempt, preferably on
// another node) when
//
//   - the worker does not answer StartTrial within acceptTimeout,
//   - its heartbeats stop for heartbeatTimeout,
//   - its node leaves the member list (left, failed, or restarted), or
//   - the remote endpoint of its node terminates (a killed node: milliseconds).
//
// The first result of any attempt is the trial's result; every other attempt
// still running is cancelled, so a trial is recorded exactly once.

import (
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/messages"
)

const coordinatorName = "sweep"

// sweepWorker is a trial worker the coordinator may use.
type sweepWorker struct {
	Node string
	PID  *actor.PID
}

type coordOptions struct {
	Sweep            string
	Trials           []Trial // the trials to run
	Total            int     // the spec's trials, the finished ones included
	DoneBefore       int     // finished before this run (resumed)
	Slots            int     // trials per worker at a time
	Workers          func() []sweepWorker
	Record           func(t Trial, res *messages.TrialResult, n trialNotes) (Row, string, error) // records a result; returns its row and a line for the log
	Mark             func(r Row) error                                                           // records a row as given (a paused trial pruned at the end)
	ASHA             *ASHA                                                                       // nil: no scheduler, every trial runs to its end
	Finished         map[string]Row                                                              // rows of trials recorded before (resumed), by key: their rungs count
	PBT              *PBT                                                                        // population based training; nil: none
	Params           []Param                                                                     // the spec's (PBT explores them)
	Resolve          func(params map[string]any, seed uint64) ([]byte, error)                    // a config file for params (PBT)
	Log              io.Writer
	AcceptTimeout    time.Duration
	HeartbeatTimeout time.Duration
	Tick             time.Duration
	Progress         time.Duration // interval of the line on the running trials (0: none)
}

// coordinator is the running coordinator.
type coordinator struct {
	sys  *actor.ActorSystem
	pid  *actor.PID
	done chan error // one value: nil when every trial is recorded, or why the sweep cannot go on
}

func startCoordinator(sys *actor.ActorSystem, o coordOptions) (*coordinator, error) {
	if o.AcceptTimeout == 0 {
		o.AcceptTimeout = 15 * time.Second
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 30 * time.Second
	}
	if o.Tick == 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.Slots < 1 {
		o.Slots = 1
	}
	c := &coordinator{sys: sys, done: make(chan error, 1)}
	props := actor.PropsFromProducer(func() actor.Actor { return newCoordActor(o, c.done) })
	pid, err := sys.Root.SpawnNamed(props, coordinatorName)
	if err != nil {
		return nil, fmt.Errorf("sweep coordinator: %w", err)
	}
	c.pid = pid
	return c, nil
}

// Done delivers nil when every trial is recorded, or the error that stopped
// the sweep.
func (c *coordinator) Done() <-chan error { return c.done }

// cancel stops every running trial (the sweep is interrupted), then the actor.
func (c *coordinator) cancel(why string) {
	_, _ = c.sys.Root.RequestFuture(c.pid, &coordCancel{why: why}, 5*time.Second).Result()
	_ = c.sys.Root.StopFuture(c.pid).Wait()
}

func (c *coordinator) stop() { _ = c.sys.Root.StopFuture(c.pid).Wait() }

type (
	coordTick   struct{}
	coordCancel struct{ why string }
)

// assignment is one attempt of a trial on a worker.
type assignment struct {
	trial     *Trial
	attempt   uint32
	node      string
	pid       *actor.PID
	sent      time.Time
	accepted  bool
	lastHeard time.Time
	runDir    string
	progress  *messages.TrialHeartbeat // the latest heartbeat
}

type coordActor struct {
	o         coordOptions
	done      chan error
	self      *actor.PID
	stopTick  scheduler.CancelFunc
	byID      map[string]*Trial
	queue     []*Trial               // waiting, in order
	running   map[string]*assignment // by trial id
	attempts  map[string]uint32
	finished  map[string]bool
	busy      map[string]int       // node → assignments
	backoff   map[string]time.Time // node → no new trials before
	watched   map[string]bool      // worker PIDs watched
	sawWorker bool
	waitNote  time.Time
	lastProg  time.Time
	ended     bool
	asha      *ashaBook          // nil: no scheduler
	pruned    map[string]verdict // trial → why its scheduler stopped it (the stopping form)
	seg       segmenter          // a scheduler that runs trials in segments; nil without one
}

// segmenter is a scheduler that runs trials in segments, each a 'qfleet
// dev' process that continues from the checkpoint of the one before (ASHA's
// promotion form, PBT). Between segments a trial is paused; the scheduler
// decides which paused trial goes on, with what config and checkpoint.
type segmenter interface {
	// next is the paused trial a free slot goes to (nil: none, the queue's
	// next trial starts).
	next() *Trial
	// start is the StartTrial fields of trial t's next segment (its first
	// when it is not paused), given out as attempt, and a line for the log
	// ("" for none). An error fails the trial alone.
	start(t *Trial, attempt uint32) (*messages.StartTrial, string, error)
	// result takes a segment's result: done, the trial is over; ok false,
	// the result is a repeat of a segment recorded already.
	result(a *coordActor, m *messages.TrialResult, t *Trial) (done, ok bool)
	// lost is told that trial's running segment was given up; true: the
	// segment runs again from the scheduler (next), not from the queue.
	lost(trial string) bool
	// idle is called when nothing runs or waits: false ends the sweep (the
	// scheduler records what it still holds), true means it gave out more.
	idle(a *coordActor) (more bool, err error)
	// resume takes back a trial a resumed sweep had paused (its row);
	// false: it starts again from its beginning.
	resume(t *Trial, r Row) bool
	// forget drops a trial that failed.
	forget(trial string)
}

func newCoordActor(o coordOptions, done chan error) *coordActor {
	a := &coordActor{o: o, done: done, byID: map[string]*Trial{}, running: map[string]*assignment{},
		attempts: map[string]uint32{}, finished: map[string]bool{}, busy: map[string]int{},
		backoff: map[string]time.Time{}, watched: map[string]bool{}, pruned: map[string]verdict{}}
	if o.ASHA != nil {
		a.asha = newASHABook(*o.ASHA)
		for _, r := range o.Finished {
			if r.Status == StatusOK || r.Status == StatusPruned || r.Status == StatusPaused {
				a.asha.seed(r.Trial, a.asha.rungValues(r.Rungs))
			}
		}
		if o.ASHA.promotes() {
			a.seg = newPromoter(a.asha, *o.ASHA)
		}
	}
	if o.PBT != nil {
		a.seg = newPBT(*o.PBT, o.Params, o.Resolve, o.Sweep, len(o.Trials))
	}
	for i := range o.Trials {
		t := &o.Trials[i]
		a.byID[t.ID] = t
		if r, ok := o.Finished[t.Key]; ok && r.Status == StatusPaused && a.seg != nil && a.seg.resume(t, r) {
			continue // it waits for a promotion, from the checkpoint it paused with
		}
		a.queue = append(a.queue, t)
	}
	if a.asha != nil {
		a.queue = shuffled(a.queue, o.Sweep)
	}
	return a
}

// shuffled is the trials in a random order of the sweep's own (the same
// each time it runs). ASHA judges each trial against those that reached
// its rung before it, which is fair when trials come in a random order,
// as random search draws them; a grid in its order (learning rates
// ascending, say) lets nearly every newcomer into the top. Measured on a
// 12-trial CartPole grid under the promotion form: 61% of the env steps of
// the whole grid in grid order.
func shuffled(trials []*Trial, sweep string) []*Trial {
	h := fnv.New64a()
	h.Write([]byte(sweep))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x61736861))
	out := slices.Clone(trials)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (a *coordActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		a.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(a.o.Tick, a.o.Tick, ctx.Self(), &coordTick{})
		a.check(ctx)
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
	case *coordTick:
		a.check(ctx)
	case *coordCancel:
		for _, as := range a.running {
			ctx.Send(as.pid, &messages.CancelTrial{Trial: as.trial.ID, Attempt: as.attempt, Reason: m.why})
		}
		a.running = map[string]*assignment{}
		a.queue = nil
		a.ended = true
		ctx.Respond(true)
	case *actor.Terminated:
		a.nodeLost(ctx, m.Who, "its node's remote endpoint terminated (the node died, or gossip declared it failed)")
	case *messages.TrialAccepted:
		as := a.running[m.Trial]
		if as == nil || as.attempt != m.Attempt || as.node != m.Node {
			if w := refPID(m.Worker); w != nil && !a.finished[m.Trial] {
				ctx.Send(w, &messages.CancelTrial{Trial: m.Trial, Attempt: m.Attempt, Reason: "this attempt was given up"})
			}
			return
		}
		if !as.accepted {
			as.accepted = true
			fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s started on %s (attempt %d, seed %d, %s)\n", a.o.Sweep, a.doneCount(), a.o.Total,
				as.trial.ID, as.node, as.attempt, as.trial.Seed, formatParams(as.trial.Params))
		}
		as.lastHeard, as.runDir = time.Now(), m.RunDir
	case *messages.TrialRejected:
		as := a.running[m.Trial]
		if as == nil || as.attempt != m.Attempt || as.node != m.Node {
			return
		}
		// The reason is the worker's text: one line, so that it cannot
		// write lines of the sweep's log of its own.
		fmt.Fprintf(a.o.Log, "sweep %s: %s: %s declined it: %s\n", a.o.Sweep, m.Trial, m.Node, escapeNewlines(m.Reason))
		a.backoff[as.node] = time.Now().Add(5 * time.Second)
		a.requeue(ctx, as, "", false)
		a.dispatch(ctx)
	case *messages.TrialHeartbeat:
		as := a.running[m.Trial]
		w := refPID(m.Worker)
		// The node too: a sweep restarted at the same address numbers its
		// attempts from 1 again, and hears an old run's heartbeats.
		if as == nil || as.attempt != m.Attempt || as.node != m.Node {
			if w != nil {
				// An attempt given up on (its node was presumed lost): stop it.
				ctx.Send(w, &messages.CancelTrial{Trial: m.Trial, Attempt: m.Attempt, Reason: "this attempt was given up"})
			}
			return
		}
		as.lastHeard = time.Now()
		as.accepted = true
		as.progress = m
		if w != nil {
			ctx.Send(w, &messages.TrialHeartbeatAck{Trial: m.Trial, Attempt: m.Attempt})
			a.schedule(ctx, as, w, m)
		}
	case *messages.TrialResult:
		a.result(ctx, m)
	}
}

// schedule hands a trial's progress to the scheduler; a trial it prunes is
// told to stop (and told again at each heartbeat until its result comes, so
// that a lost message or a new attempt stops too).
func (a *coordActor) schedule(ctx actor.Context, as *assignment, w *actor.PID, m *messages.TrialHeartbeat) {
	if a.asha == nil || a.seg != nil {
		return
	}
	v, pruned := a.pruned[m.Trial]
	if !pruned {
		if v = a.asha.report(m.Trial, m.EnvSteps, m.Mean100, m.HasMean100); !v.Stop {
			return
		}
		a.pruned[m.Trial] = v
		fmt.Fprintf(a.o.Log, "sweep %s: %s pruned at %d env steps: %s\n", a.o.Sweep, m.Trial, v.Rung, v.Why)
	}
	ctx.Send(w, &messages.StopTrial{Trial: m.Trial, Attempt: as.attempt, Reason: "pruned: " + v.Why})
}

// rungs are the env steps at which the scheduler judges trials (none
// without one): the first 16, far past any run.
func (a *coordActor) rungs() []uint64 {
	if a.asha == nil || a.seg != nil {
		return nil
	}
	out := make([]uint64, 16)
	for i := range out {
		out[i] = a.asha.a.rung(i)
	}
	return out
}

func (a *coordActor) doneCount() int { return a.o.DoneBefore + len(a.finished) }

// check times out silent attempts, requeues those of lost nodes, then
// hands out what waits.
func (a *coordActor) check(ctx actor.Context) {
	if a.ended {
		return
	}
	now := time.Now()
	live := map[string]*actor.PID{}
	for _, w := range a.o.Workers() {
		live[w.Node] = w.PID
	}
	for _, as := range a.sortedRunning() {
		pid, ok := live[as.node]
		switch {
		case !ok:
			a.requeue(ctx, as, "its node left the cluster or failed", true)
		case pid.Address != as.pid.Address:
			a.requeue(ctx, as, "its node restarted at another address", true)
		case !as.accepted && now.Sub(as.sent) > a.o.AcceptTimeout:
			a.backoff[as.node] = now.Add(a.o.AcceptTimeout)
			a.requeue(ctx, as, fmt.Sprintf("no answer to StartTrial within %v", a.o.AcceptTimeout), true)
		case as.accepted && now.Sub(as.lastHeard) > a.o.HeartbeatTimeout:
			a.requeue(ctx, as, fmt.Sprintf("no heartbeat for %v", a.o.HeartbeatTimeout), true)
		}
	}
	if len(live) > 0 {
		a.sawWorker = true
	} else if len(a.queue) > 0 && now.Sub(a.waitNote) > 15*time.Second {
		a.waitNote = now
		fmt.Fprintf(a.o.Log, "sweep %s: waiting for nodes with the trials role ('qfleet node --roles trials')\n", a.o.Sweep)
	}
	a.dispatch(ctx)
	if a.o.Progress > 0 && len(a.running) > 0 && now.Sub(a.lastProg) >= a.o.Progress {
		if a.lastProg.IsZero() {
			a.lastProg = now // the first line after one interval
			return
		}
		a.lastProg = now
		a.progressLine()
	}
}

// progressLine tells where the running trials are, from their heartbeats.
func (a *coordActor) progressLine() {
	var parts []string
	for _, as := range a.sortedRunning() {
		p := as.progress
		if p == nil {
			parts = append(parts, fmt.Sprintf("%s on %s starting", as.trial.ID, as.node))
			continue
		}
		mean := "-"
		if p.HasMean100 {
			mean = fmt.Sprintf("%.1f", p.Mean100)
		}
		parts = append(parts, fmt.Sprintf("%s on %s %.0fs steps=%d mean100=%s", as.trial.ID, as.node, p.Seconds, p.EnvSteps, mean))
	}
	fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] running: %s; %d waiting\n", a.o.Sweep, a.doneCount(), a.o.Total, strings.Join(parts, ", "), len(a.queue))
}

func (a *coordActor) sortedRunning() []*assignment {
	out := make([]*assignment, 0, len(a.running))
	for _, as := range a.running {
		out = append(out, as)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].trial.Index < out[j].trial.Index })
	return out
}

// nodeLost requeues every attempt on the node whose remote endpoint (who's
// address) terminated.
func (a *coordActor) nodeLost(ctx actor.Context, who *actor.PID, why string) {
	if who == nil {
		return
	}
	delete(a.watched, who.String())
	for _, as := range a.sortedRunning() {
		if as.pid.Address == who.Address {
			a.backoff[as.node] = time.Now().Add(10 * time.Second)
			a.requeue(ctx, as, why, true)
		}
	}
	a.dispatch(ctx)
}

// requeue gives up an attempt; its trial goes to the front of the queue.
// cancel: tell the worker to stop it, in case it still runs.
func (a *coordActor) requeue(ctx actor.Context, as *assignment, why string, cancel bool) {
	delete(a.running, as.trial.ID)
	a.busy[as.node]--
	if cancel {
		ctx.Send(as.pid, &messages.CancelTrial{Trial: as.trial.ID, Attempt: as.attempt, Reason: why})
		fmt.Fprintf(a.o.Log, "sweep %s: %s (attempt %d on %s): %s: it will run again\n", a.o.Sweep, as.trial.ID, as.attempt, as.node, why)
	}
	if a.seg != nil && a.seg.lost(as.trial.ID) {
		return // a later segment: it runs again first, from its checkpoint (segmenter.next)
	}
	a.queue = append([]*Trial{as.trial}, a.queue...)
}

// dispatch hands waiting trials to workers with a free slot, the least busy
// first (then by name), so that trials spread over the nodes.
func (a *coordActor) dispatch(ctx actor.Context) {
	if a.ended {
		return
	}
	now := time.Now()
	workers := a.o.Workers()
	for a.waiting() {
		var best *sweepWorker
		for i := range workers {
			w := &workers[i]
			if a.busy[w.Node] >= a.o.Slots || now.Before(a.backoff[w.Node]) {
				continue
			}
			if best == nil || a.busy[w.Node] < a.busy[best.Node] {
				best = w
			}
		}
		if best == nil {
			return
		}
		t, st := a.nextJob()
		if t == nil {
			return
		}
		as := &assignment{trial: t, attempt: st.Attempt, node: best.Node, pid: best.PID, sent: now}
		a.running[t.ID] = as
		a.busy[best.Node]++
		if !a.watched[best.PID.String()] {
			a.watched[best.PID.String()] = true
			ctx.Watch(best.PID)
		}
		st.Coordinator, st.Sweep, st.Trial, st.Attempt = actors.RefOf(a.self), a.o.Sweep, t.ID, as.attempt
		st.MaxSeconds, st.Rungs = t.MaxTime.Seconds(), a.rungs()
		ctx.Send(best.PID, st)
	}
}

// waiting reports whether a trial or a paused one waits for a slot.
func (a *coordActor) waiting() bool {
	return len(a.queue) > 0 || (a.seg != nil && a.seg.next() != nil)
}

// nextJob is the next trial to give out, with its StartTrial's own fields
// and its attempt number: under a segmenting scheduler, a paused trial
// first (its next segment), else a new trial (its first).
func (a *coordActor) nextJob() (*Trial, *messages.StartTrial) {
	for {
		var t *Trial
		if a.seg != nil {
			t = a.seg.next()
		}
		if t == nil {
			if len(a.queue) == 0 {
				return nil, nil
			}
			t = a.queue[0]
			a.queue = a.queue[1:]
		}
		a.attempts[t.ID]++
		if a.seg == nil {
			return t, &messages.StartTrial{ConfigYaml: t.Config, Attempt: a.attempts[t.ID]}
		}
		st, line, err := a.seg.start(t, a.attempts[t.ID])
		if err == nil {
			st.Attempt = a.attempts[t.ID]
			if line != "" {
				fmt.Fprintf(a.o.Log, "sweep %s: %s\n", a.o.Sweep, escapeNewlines(line))
			}
			return t, st
		}
		// The sweep made this config: it cannot fail to read back. Should
		// it, the trial fails alone rather than the sweep.
		a.seg.forget(t.ID)
		a.finished[t.ID] = true
		fmt.Fprintf(a.o.Log, "sweep %s: %s: its segment's config: %v\n", a.o.Sweep, t.ID, err)
	}
}

func (a *coordActor) result(ctx actor.Context, m *messages.TrialResult) {
	if w := refPID(m.Worker); w != nil {
		ctx.Send(w, &messages.TrialResultAck{Trial: m.Trial, Attempt: m.Attempt})
	}
	t := a.byID[m.Trial]
	if t == nil || a.finished[m.Trial] || a.ended {
		return // not ours, or a repeat: recorded once
	}
	if a.seg != nil {
		done, ok := a.seg.result(a, m, t)
		if !ok || a.ended {
			return
		}
		a.segmentDone(ctx, m, done)
		return
	}
	notes := trialNotes{}
	if a.asha != nil {
		notes.Rungs = a.asha.rungMap(m.Trial)
		if v, ok := a.pruned[m.Trial]; ok {
			notes.PrunedAt, notes.Why = v.Rung, v.Why
		}
	}
	_, line, err := a.o.Record(*t, m, notes)
	if err != nil {
		a.finish(fmt.Errorf("recording %s: %w", m.Trial, err))
		return
	}
	a.finished[m.Trial] = true
	a.endAttempt(ctx, m)
	for i, q := range a.queue {
		if q.ID == m.Trial {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			break
		}
	}
	fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s\n", a.o.Sweep, a.doneCount(), a.o.Total, line)
	if len(a.finished) == len(a.byID) {
		a.finish(nil)
		return
	}
	a.dispatch(ctx)
}

// endAttempt frees the slot of the trial's running attempt once m, its
// result, is recorded, and cancels that attempt if m came from another.
func (a *coordActor) endAttempt(ctx actor.Context, m *messages.TrialResult) {
	if as := a.running[m.Trial]; as != nil {
		delete(a.running, m.Trial)
		a.busy[as.node]--
		if as.attempt != m.Attempt || as.node != m.Node {
			ctx.Send(as.pid, &messages.CancelTrial{Trial: m.Trial, Attempt: as.attempt, Reason: "another attempt finished it"})
		}
	}
}

// segmentDone follows a segment's recorded result: its attempts stop, and
// the sweep ends once no trial runs, waits or can be promoted.
func (a *coordActor) segmentDone(ctx actor.Context, m *messages.TrialResult, trialDone bool) {
	if trialDone {
		a.finished[m.Trial] = true
	}
	a.endAttempt(ctx, m)
	a.dispatch(ctx)
	if len(a.running) == 0 && !a.waiting() {
		more, err := a.seg.idle(a)
		if err != nil {
			a.finish(err)
			return
		}
		if more {
			a.dispatch(ctx)
			return
		}
	}
	if len(a.finished) == len(a.byID) {
		a.finish(nil)
	}
}

func (a *coordActor) finish(err error) {
	if a.ended {
		return
	}
	a.ended = true
	a.done <- err
}
