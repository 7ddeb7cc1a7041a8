package sweep

// The trial worker: the actor of a node with the "trials" role (and of a
// local sweep) that runs sweep trials, each as a child 'qfleet dev'
// process in a run directory of its own, so a trial that crashes takes
// nothing else down. It answers StartTrial with TrialAccepted or
// TrialRejected, sends a TrialHeartbeat for each running trial every
// workerTickEvery, and repeats a trial's TrialResult until the coordinator
// acknowledges it. A trial whose coordinator stops answering heartbeats for
// orphanAfter (the sweep was killed, or is cut off) is stopped.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/freshdir"
	"github.com/qfleet/qfleet/messages"
)

// trialWorkerName is the worker's well-known actor name on its node.
const trialWorkerName = "trials"

// HeartbeatEvery is how often a worker sends a heartbeat for each running
// trial. A coordinator's Options.HeartbeatTimeout must be a few of these
// (the command asks for at least three), so that a few lost heartbeats do
// not cost a trial.
const HeartbeatEvery = 2 * time.Second

// Timing of the worker.
const (
	workerTickEvery   = HeartbeatEvery
	judgedReadEvery   = 250 * time.Millisecond // a judged trial's scalars are read this often
	resultRetryFor    = 10 * time.Minute       // an unacknowledged result is repeated this long
	trialStopGrace    = 15 * time.Second       // after Ctrl-C, a trial has this long to write its summary
	maxReturnedScalar = 1 << 20                // scalars.jsonl travels back with the result up to this size
)

// orphanAfter: a running trial whose heartbeats the coordinator has not
// acknowledged for this long is stopped (the sweep is gone). A variable for
// the tests.
var orphanAfter = 60 * time.Second

// WorkerOptions configure a trial worker.
type WorkerOptions struct {
	// Node is the name of the worker's node: coordinators match it with
	// the member list, and results and log lines show it.
	Node string
	// Dir holds the trials' run directories, Dir/<sweep>/<trial> (""
	// for qfleet.RunsRoot/sweeps).
	Dir string
	// Slots is how many trials run at a time (at least 1).
	Slots int
	// Log gets a line per trial start, end and cancel (nil: none).
	Log io.Writer
	// Logger gets the worker's warnings (nil: none).
	Logger *slog.Logger
	// Executable is the program each trial runs as 'EXE dev --config
	// FILE ...' ("" for os.Executable, this program). A program of its
	// own must therefore dispatch the dev command as cli.Main does, or
	// name a qfleet binary here.
	Executable string

	flat bool // trials run in Dir/<trial> (a local sweep's own directory)
}

// Worker is a running trial worker: the actor, named "trials" on its actor
// system, that coordinators of a cluster find on every node with the
// trials role (cluster.RoleTrials).
type Worker struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

// StartWorker spawns the trial worker on sys. Its directory is made now, so
// a directory that cannot be written is an error here rather than a
// rejected trial later. Stop it with Stop.
func StartWorker(sys *actor.ActorSystem, o WorkerOptions) (*Worker, error) {
	if o.Dir == "" {
		o.Dir = filepath.Join(qfleet.RunsRoot, "sweeps")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("--trials-dir: %w", err)
	}
	o.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--trials-dir: %w", err)
	}
	exe := o.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("trial worker: the qfleet executable: %w", err)
		}
	}
	if o.Slots < 1 {
		o.Slots = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &workerActor{o: o, exe: exe, running: map[string]*workerTrial{}, unacked: map[string]*pendingResult{}}
	})
	pid, err := sys.Root.SpawnNamed(props, trialWorkerName)
	if err != nil {
		return nil, fmt.Errorf("trial worker: %w", err)
	}
	return &Worker{sys: sys, pid: pid}, nil
}

// Stop ends the worker: its trials are stopped (as by Ctrl-C) and waited
// for, up to a grace period each. A nil Worker is stopped already.
func (w *Worker) Stop() {
	if w == nil {
		return
	}
	_ = w.sys.Root.StopFuture(w.pid).Wait()
}

type workerActor struct {
	o        WorkerOptions
	exe      string
	self     *actor.PID
	stopTick scheduler.CancelFunc
	running  map[string]*workerTrial // by trialAttemptKey
	unacked  map[string]*pendingResult
	wg       sync.WaitGroup
}

type workerTrial struct {
	start     *messages.StartTrial
	coord     *actor.PID
	runDir    string
	cancel    context.CancelFunc
	cancelled bool
	stop      chan struct{} // closed by StopTrial: end the run as its time limit would
	stopped   bool
	nextRung  int // the first of start.rungs its progress has not passed
	started   time.Time
	lastAck   time.Time // the coordinator's last heartbeat ack (or the start)
	progress  trialProgress
}

type pendingResult struct {
	res   *messages.TrialResult
	coord *actor.PID
	since time.Time
}

// Local messages (never on the wire).
type (
	workerTick    struct{}
	trialProgress struct {
		key      string
		steps    uint64
		mean100  float64
		hasMean  bool
		lastStep time.Time
	}
	trialEnded struct {
		key string
		out trialOutcome
	}
)

// trialAttemptKey names one attempt of a trial.
func trialAttemptKey(trial string, attempt uint32) string {
	return trial + "#" + strconv.FormatUint(uint64(attempt), 10)
}

func (w *workerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.self = ctx.Self()
		w.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(workerTickEvery, workerTickEvery, ctx.Self(), &workerTick{})
	case *actor.Stopping:
		if w.stopTick != nil {
			w.stopTick()
		}
		for _, t := range w.running {
			t.cancelled = true
			t.cancel()
		}
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(trialStopGrace + 5*time.Second):
		}
	case *messages.StartTrial:
		w.startTrial(ctx, m)
	case *messages.CancelTrial:
		if t := w.running[trialAttemptKey(m.Trial, m.Attempt)]; t != nil && !t.cancelled {
			fmt.Fprintf(w.o.Log, "qfleet trials %s: %s (attempt %d) cancelled by the sweep: %s\n", w.o.Node, m.Trial, m.Attempt, m.Reason)
			t.cancelled = true
			t.cancel()
		}
	case *messages.StopTrial:
		if t := w.running[trialAttemptKey(m.Trial, m.Attempt)]; t != nil && !t.cancelled && !t.stopped {
			fmt.Fprintf(w.o.Log, "qfleet trials %s: %s (attempt %d) stopped by the sweep: %s\n", w.o.Node, m.Trial, m.Attempt, escapeNewlines(m.Reason))
			t.stopped = true
			close(t.stop)
		}
	case *messages.TrialHeartbeatAck:
		if t := w.running[trialAttemptKey(m.Trial, m.Attempt)]; t != nil {
			t.lastAck = time.Now()
		}
	case *messages.TrialResultAck:
		delete(w.unacked, trialAttemptKey(m.Trial, m.Attempt))
	case *trialProgress:
		if t := w.running[m.key]; t != nil {
			t.progress = *m
			// A rung passed: the scheduler hears it now, not at the next tick.
			if r := t.start.GetRungs(); t.nextRung < len(r) && m.steps >= r[t.nextRung] {
				for t.nextRung < len(r) && m.steps >= r[t.nextRung] {
					t.nextRung++
				}
				if !t.cancelled {
					w.heartbeat(ctx, t, time.Now())
				}
			}
		}
	case *trialEnded:
		w.ended(ctx, m)
	case *workerTick:
		w.tick(ctx)
	}
}

func (w *workerActor) startTrial(ctx actor.Context, m *messages.StartTrial) {
	coord := refPID(m.Coordinator)
	if coord == nil {
		return // nowhere to answer
	}
	key := trialAttemptKey(m.Trial, m.Attempt)
	reject := func(reason string) {
		ctx.Send(coord, &messages.TrialRejected{Trial: m.Trial, Attempt: m.Attempt, Node: w.o.Node, Reason: reason})
	}
	if t := w.running[key]; t != nil {
		// A repeated StartTrial (its answer was lost): answer again.
		ctx.Send(coord, &messages.TrialAccepted{Trial: m.Trial, Attempt: m.Attempt, Node: w.o.Node, RunDir: t.runDir, Worker: actors.RefOf(w.self)})
		return
	}
	if len(w.running) >= w.o.Slots {
		reject(fmt.Sprintf("busy: %d of %d trial slots in use", len(w.running), w.o.Slots))
		return
	}
	dir, err := w.makeTrialDir(m.Sweep, m.Trial)
	if err != nil {
		reject(err.Error())
		return
	}
	cfgPath := filepath.Join(dir, "trial.yaml")
	if err := os.WriteFile(cfgPath, m.ConfigYaml, 0o644); err != nil {
		reject(fmt.Sprintf("trial config: %v", err))
		return
	}
	run := trialCommand{exe: w.exe, dir: dir, cfgPath: cfgPath, maxTime: time.Duration(m.MaxSeconds * float64(time.Second)),
		judged: len(m.GetRungs()) > 0, keepCheckpoint: m.KeepCheckpoint}
	if len(m.Checkpoint) > 0 {
		if err := writeResumeFiles(filepath.Join(dir, trialCheckpoints), m.Checkpoint, m.ReplaySnapshot); err != nil {
			reject(err.Error())
			return
		}
		run.resume = true
	}
	runCtx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	t := &workerTrial{start: m, coord: coord, runDir: dir, cancel: cancel, stop: make(chan struct{}), started: now, lastAck: now}
	w.running[key] = t
	ctx.Send(coord, &messages.TrialAccepted{Trial: m.Trial, Attempt: m.Attempt, Node: w.o.Node, RunDir: dir, Worker: actors.RefOf(w.self)})
	fmt.Fprintf(w.o.Log, "qfleet trials %s: %s (attempt %d) of sweep %s started in %s\n", w.o.Node, m.Trial, m.Attempt, m.Sweep, dir)
	sys, self := ctx.ActorSystem(), ctx.Self()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		out := runTrialProcess(runCtx, t.stop, run, func(p trialProgress) {
			p.key = key
			sys.Root.Send(self, &p)
		})
		sys.Root.Send(self, &trialEnded{key: key, out: out})
	}()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// makeTrialDir makes a new run directory for a trial: DIR/<sweep>/<trial>,
// or <trial>-2, -3, ... when an earlier attempt left one.
func (w *workerActor) makeTrialDir(sweep, trial string) (string, error) {
	clean := func(s string) string {
		s = unsafeName.ReplaceAllString(s, "_")
		if s == "" || s == "." || s == ".." {
			s = "_"
		}
		return s
	}
	parent := w.o.Dir
	if !w.o.flat {
		parent = filepath.Join(parent, clean(sweep))
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("trial directory: %v", err)
	}
	d, err := freshdir.Make(filepath.Join(parent, clean(trial)), 1000)
	if err != nil {
		return "", fmt.Errorf("trial directory: %v", err)
	}
	return d, nil
}

func (w *workerActor) ended(ctx actor.Context, m *trialEnded) {
	t := w.running[m.key]
	if t == nil {
		return
	}
	delete(w.running, m.key)
	s := t.start
	status := "finished"
	if !m.out.ok {
		status = "failed: " + m.out.err
	}
	if t.cancelled {
		status = "stopped"
	}
	fmt.Fprintf(w.o.Log, "qfleet trials %s: %s (attempt %d) %s after %.1fs\n", w.o.Node, s.Trial, s.Attempt, status, m.out.wall)
	if t.cancelled {
		return // no one wants the result
	}
	res := &messages.TrialResult{
		Trial: s.Trial, Attempt: s.Attempt, Node: w.o.Node, Ok: m.out.ok, Error: m.out.err, RunDir: t.runDir,
		SummaryJson: m.out.summary, ConfigYaml: m.out.config, ScalarsJsonl: m.out.scalars,
		BestMean100: m.out.best, HasBest: m.out.hasBest, WallSeconds: m.out.wall, TimedOut: m.out.timedOut,
		Worker: actors.RefOf(w.self), Checkpoint: m.out.checkpoint, ReplaySnapshot: m.out.snapshot,
	}
	w.unacked[m.key] = &pendingResult{res: res, coord: t.coord, since: time.Now()}
	ctx.Send(t.coord, res)
}

// heartbeat tells the coordinator a trial runs, and how far it is.
func (w *workerActor) heartbeat(ctx actor.Context, t *workerTrial, now time.Time) {
	p := t.progress
	ctx.Send(t.coord, &messages.TrialHeartbeat{Trial: t.start.Trial, Attempt: t.start.Attempt, Node: w.o.Node,
		EnvSteps: p.steps, Mean100: p.mean100, HasMean100: p.hasMean, Seconds: now.Sub(t.started).Seconds(), Worker: actors.RefOf(w.self)})
}

func (w *workerActor) tick(ctx actor.Context) {
	now := time.Now()
	for _, t := range w.running {
		if t.cancelled {
			continue
		}
		if now.Sub(t.lastAck) > orphanAfter {
			fmt.Fprintf(w.o.Log, "qfleet trials %s: %s (attempt %d): no word from the sweep for %v: stopping it\n",
				w.o.Node, t.start.Trial, t.start.Attempt, orphanAfter)
			t.cancelled = true
			t.cancel()
			continue
		}
		w.heartbeat(ctx, t, now)
	}
	for k, p := range w.unacked {
		if now.Sub(p.since) > resultRetryFor {
			w.o.Logger.Warn("trial result never acknowledged: dropped", "trial", p.res.Trial, "attempt", p.res.Attempt)
			delete(w.unacked, k)
			continue
		}
		ctx.Send(p.coord, p.res)
	}
}

// refPID is the PID of a ref a remote sent, nil when it names no actor (no
// ref, or one without an id): the sweep's actors answer only real senders.
func refPID(r *messages.ActorRef) *actor.PID {
	if r.GetId() == "" {
		return nil
	}
	return actors.PIDOf(r)
}

// trialOutcome is what a trial's process left.
type trialOutcome struct {
	ok       bool
	err      string
	timedOut bool
	stopped  bool // by StopTrial
	wall     float64
	summary  []byte // summary.json
	config   []byte // config.yaml
	scalars  []byte // scalars.jsonl, when small enough
	best     float64
	hasBest  bool
	// With keepCheckpoint: the run's final checkpoint and replay snapshot.
	checkpoint, snapshot []byte
}

// trialCommand is how a trial's process runs.
type trialCommand struct {
	exe, dir, cfgPath string
	maxTime           time.Duration // 0: no limit
	// judged: a scheduler judges the trial at rungs, so its progress is read
	// more often (scalars every second instead of two, read four times a
	// second): a trial it prunes runs on for that long.
	judged bool
	// resume from the checkpoint files in dir's checkpoints (a segment after
	// the first); keepCheckpoint: write the final ones and return them.
	resume, keepCheckpoint bool
}

// args are the 'qfleet dev' arguments.
func (c trialCommand) args() []string {
	every := "0"
	if c.judged {
		every = "1s"
	}
	args := []string{"dev", "--config", c.cfgPath, "--run-dir", c.dir, "--progress", every}
	if c.resume || c.keepCheckpoint {
		// A snapshot interval longer than any trial: the replay is
		// snapshotted once, when the run ends.
		args = append(args, "--checkpoint-dir", filepath.Join(c.dir, trialCheckpoints), "--replay-snapshot-every", "10000h")
	}
	if c.resume {
		args = append(args, "--resume")
	}
	return args
}

// runTrialProcess runs 'qfleet dev' on the trial's config in c.dir until it
// ends, ctx is cancelled, stop is closed or c.maxTime passes (each stops it
// as Ctrl-C does, so it still writes its summary; a stop or the time limit
// is an ok end), reporting progress from its scalars.
func runTrialProcess(ctx context.Context, stop <-chan struct{}, c trialCommand, progress func(trialProgress)) trialOutcome {
	exe, dir, maxTime := c.exe, c.dir, c.maxTime
	start := time.Now()
	var out trialOutcome
	logFile, err := os.Create(filepath.Join(dir, "trial.log"))
	if err != nil {
		return trialOutcome{err: fmt.Sprintf("trial log: %v", err)}
	}
	defer logFile.Close()
	read := workerTickEvery
	if c.judged {
		read = judgedReadEvery
	}
	cmd := exec.Command(exe, c.args()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = trialSysProcAttr()
	// The child dies with this thread (Pdeathsig on Linux): keep the thread
	// for the child's lifetime, so that only the node's death kills it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return trialOutcome{err: fmt.Sprintf("start %s: %v", exe, err), wall: time.Since(start).Seconds()}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var limit <-chan time.Time
	if maxTime > 0 {
		tm := time.NewTimer(maxTime)
		defer tm.Stop()
		limit = tm.C
	}
	tick := time.NewTicker(read)
	defer tick.Stop()
	tail := &scalarTail{path: filepath.Join(dir, qfleet.RunScalarsFile)}
	var kill <-chan time.Time
	interrupt := func() {
		if kill == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			kill = time.After(trialStopGrace)
		}
	}
	done := ctx.Done()
	var werr error
wait:
	for {
		select {
		case werr = <-waited:
			break wait
		case <-done:
			done = nil
			interrupt()
		case <-limit:
			limit = nil
			out.timedOut = true
			interrupt()
		case <-stop:
			stop = nil
			out.stopped = true
			interrupt()
		case <-kill:
			_ = cmd.Process.Kill()
		case <-tick.C:
			if p, ok := tail.read(); ok {
				progress(p)
			}
		}
	}
	out.wall = time.Since(start).Seconds()
	out.summary, _ = os.ReadFile(filepath.Join(dir, qfleet.RunSummaryFile))
	out.config, _ = os.ReadFile(filepath.Join(dir, qfleet.RunConfigFile))
	if st, err := os.Stat(tail.path); err == nil && st.Size() <= maxReturnedScalar {
		out.scalars, _ = os.ReadFile(tail.path)
	}
	if recs, err := qfleet.ReadScalars(tail.path); err == nil {
		for _, r := range recs {
			if r.Name == "mean100" && (!out.hasBest || r.Value > out.best) {
				out.best, out.hasBest = r.Value, true
			}
		}
	}
	var sum qfleet.Summary
	summaryOK := json.Unmarshal(out.summary, &sum) == nil && sum.Env != ""
	if c.keepCheckpoint && summaryOK {
		out.checkpoint, out.snapshot, err = readResumeFiles(filepath.Join(dir, trialCheckpoints))
		if err != nil {
			return trialOutcome{err: err.Error(), wall: out.wall}
		}
	}
	switch {
	case werr == nil && summaryOK:
		out.ok = true
	case (out.timedOut || out.stopped) && summaryOK && ctx.Err() == nil:
		out.ok = true // stopped at max_time or by the sweep's scheduler, as asked
	case werr == nil:
		out.err = "no summary.json written"
	default:
		out.err = fmt.Sprintf("%v", werr)
		if last := lastLine(filepath.Join(dir, "trial.log")); last != "" {
			out.err += ": " + last
		}
	}
	return out
}

// lastLine is the last non-empty line of a small text file (the error a
// failed run printed), at most 300 bytes of it.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 300 {
		l = l[:300] + "..."
	}
	return l
}

// scalarTail follows a growing scalars.jsonl: the latest env steps and mean100.
type scalarTail struct {
	path   string
	offset int64
	last   trialProgress
}

func (s *scalarTail) read() (trialProgress, bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return s.last, false
	}
	defer f.Close()
	if _, err := f.Seek(s.offset, io.SeekStart); err != nil {
		return s.last, false
	}
	r := bufio.NewReader(f)
	got := false
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // EOF, or a line not yet whole: read it next time
		}
		s.offset += int64(len(line))
		var rec qfleet.Scalar
		if json.Unmarshal(bytes.TrimSpace(line), &rec) != nil {
			continue
		}
		got = true
		s.last.steps = max(s.last.steps, rec.Step)
		if rec.Name == "mean100" && !math.IsNaN(rec.Value) {
			s.last.mean100, s.last.hasMean = rec.Value, true
		}
	}
	return s.last, got
}
