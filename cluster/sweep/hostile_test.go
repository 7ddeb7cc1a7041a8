package sweep

// The sweep's actors take fields of remote messages as they come: trial ids,
// attempts, node names, actor refs, reasons, floats. Any values, of any
// message, at any time, must leave the coordinator counting and recording
// correctly and the worker answering, without a panic (an actor that panics
// is restarted by protoactor and forgets its trials) and without writing
// outside its directory.

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/messages"
)

// coordCtx is the actor.Context the coordinator's handlers are called with:
// the few methods they use; any other panics (the embedded interface is nil),
// which the test would report.
type coordCtx struct {
	actor.Context
	msg  any
	self *actor.PID
	sent []any
}

func (c *coordCtx) Message() any                 { return c.msg }
func (c *coordCtx) Self() *actor.PID             { return c.self }
func (c *coordCtx) Send(_ *actor.PID, m any)     { c.sent = append(c.sent, m) }
func (c *coordCtx) Watch(*actor.PID)             {}
func (c *coordCtx) Respond(any)                  {}
func (c *coordCtx) deliver(a *coordActor, m any) { c.msg = m; a.Receive(c) }

func TestSweepCoordinatorHostileMessages(t *testing.T) {
	out := t.TempDir()
	trials := []Trial{{Index: 0, ID: "t000-a", Key: "a"}, {Index: 1, ID: "t001-b", Key: "b"}}
	rec := &recorder{path: filepath.Join(out, ResultsFile), outDir: out, trials: trials}
	worker := actor.NewPID("127.0.0.1:9", trialWorkerName)
	var log bytes.Buffer
	done := make(chan error, 1)
	a := newCoordActor(coordOptions{Sweep: "s", Trials: trials, Total: 2, Slots: 1, Log: &log, Record: rec.record,
		Workers:       func() []sweepWorker { return []sweepWorker{{Node: "W", PID: worker}} },
		AcceptTimeout: time.Hour, HeartbeatTimeout: time.Hour}, done)
	ctx := &coordCtx{self: actor.NewPID("127.0.0.1:8", coordinatorName)}
	a.self = ctx.self
	ctx.deliver(a, &coordTick{})
	if as := a.running["t000-a"]; as == nil || as.attempt != 1 {
		t.Fatalf("t000-a not handed out: %v", a.running)
	}
	nan, inf := math.NaN(), math.Inf(1)
	for i, m := range []any{
		&messages.TrialAccepted{},
		&messages.TrialAccepted{Trial: "t000-a", Attempt: math.MaxUint32, Node: "W", Worker: &messages.ActorRef{}},
		&messages.TrialAccepted{Trial: "t000-a", Attempt: 1, Node: "evil", Worker: &messages.ActorRef{Id: "x"}},
		&messages.TrialAccepted{Trial: "t000-a", Attempt: 1, Node: "W", RunDir: "../../../etc"},
		&messages.TrialRejected{},
		&messages.TrialRejected{Trial: "nope", Attempt: 1, Node: "W"},
		&messages.TrialRejected{Trial: "t000-a", Attempt: 1, Node: "other"},
		&messages.TrialHeartbeat{},
		&messages.TrialHeartbeat{Trial: "t000-a", Attempt: 1, Node: "W", EnvSteps: math.MaxUint64, Mean100: nan, HasMean100: true,
			Seconds: inf, Worker: &messages.ActorRef{Address: "x", Id: "y"}},
		&messages.TrialHeartbeat{Trial: "\x00", Attempt: 0, Worker: &messages.ActorRef{Id: "z"}},
		&messages.TrialResult{},
		&messages.TrialResult{Trial: "nope", Worker: &messages.ActorRef{Id: "z"}},
		// A result of the waiting trial from a node that never had it:
		// the first result of any attempt is the trial's, and its floats
		// must not make the row unwritable.
		&messages.TrialResult{Trial: "t001-b", Attempt: 7, Node: "ghost\nsweep s: FORGED", Ok: true, WallSeconds: nan,
			BestMean100: inf, HasBest: true, SummaryJson: []byte("{"), RunDir: "/"},
		&messages.TrialResult{Trial: "t001-b", Attempt: 8, Node: "ghost"}, // recorded once
		&actor.Terminated{},
		&actor.Terminated{Who: actor.NewPID("", "")},
	} {
		ctx.deliver(a, m)
		select {
		case err := <-done:
			t.Fatalf("message %d (%T %v) ended the sweep: %v", i, m, m, err)
		default:
		}
		a.progressLine()
	}
	if !a.finished["t001-b"] || a.finished["t000-a"] || a.running["t000-a"] == nil {
		t.Fatalf("finished %v, running %v: want t001-b recorded and t000-a still running", a.finished, a.running)
	}
	// The worker declines with a reason of its own making; then its result
	// comes anyway (a lost cancel): recorded, and the sweep is done.
	ctx.deliver(a, &messages.TrialRejected{Trial: "t000-a", Attempt: 1, Node: "W", Reason: "busy\nsweep s: FORGED"})
	ctx.deliver(a, &messages.TrialResult{Trial: "t000-a", Attempt: 1, Node: "W", Ok: true, WallSeconds: 3})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sweep ended with %v", err)
		}
	default:
		t.Fatalf("both trials recorded, the sweep is not done: finished %v", a.finished)
	}
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "FORGED") && !strings.Contains(l, `\nsweep s: FORGED`) {
			t.Errorf("a remote's text wrote a line of the log of its own: %q", l)
		}
	}
	rows, err := ReadResults(rec.path)
	if err != nil || len(rows) != 2 {
		t.Fatalf("results.jsonl: %d rows, %v", len(rows), err)
	}
}

// The worker answers every StartTrial it can answer, whatever its names and
// numbers, and makes run directories only inside its own.
func TestSweepWorkerHostileStart(t *testing.T) {
	r := newWorkerRig(t, sleeper, 8)
	root := filepath.Join(r.dir, "trials")
	r.sys.Root.Send(r.w.pid, &messages.StartTrial{Trial: "no-coordinator"}) // nowhere to answer: ignored
	r.sys.Root.Send(r.w.pid, &messages.StartTrial{Trial: "empty-ref", Coordinator: &messages.ActorRef{}})
	for i, m := range []*messages.StartTrial{
		{Sweep: "../../..", Trial: "../../escape", Attempt: 1},
		{Sweep: "", Trial: "", Attempt: 0},
		{Sweep: ".", Trial: "..", Attempt: math.MaxUint32},
		{Sweep: "s", Trial: strings.Repeat("long", 100), Attempt: 1}, // longer than a file name may be
		{Sweep: "s\x00", Trial: "nan", MaxSeconds: math.NaN(), ConfigYaml: []byte("\xff\xfe{")},
		{Sweep: "s", Trial: "inf", MaxSeconds: math.Inf(1)},
		{Sweep: "s", Trial: "negative", MaxSeconds: -5},
		{Sweep: "s", Trial: "huge", MaxSeconds: 1e300},
	} {
		m.Coordinator = actors.RefOf(r.coord)
		r.sys.Root.Send(r.w.pid, m)
		var runDir string
		select {
		case got := <-r.fc.msgs:
			switch v := got.(type) {
			case *messages.TrialAccepted:
				runDir = v.RunDir
			case *messages.TrialRejected:
				if v.Trial != m.Trial || v.Reason == "" {
					t.Errorf("start %d: rejected %+v", i, v)
				}
			default:
				t.Fatalf("start %d: answered %T", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("start %d (%q of %q): no answer", i, m.Trial, m.Sweep)
		}
		if runDir != "" {
			if rel, err := filepath.Rel(root, runDir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
				t.Errorf("start %d (%q of %q): run directory %s outside %s", i, m.Trial, m.Sweep, runDir, root)
			}
			if _, err := os.Stat(filepath.Join(runDir, "trial.yaml")); err != nil {
				t.Errorf("start %d: %v", i, err)
			}
		}
		r.sys.Root.Send(r.w.pid, &messages.CancelTrial{Trial: m.Trial, Attempt: m.Attempt})
	}
	for _, m := range []any{&messages.CancelTrial{}, &messages.StopTrial{Trial: "?", Attempt: 3}, &messages.TrialHeartbeatAck{Trial: "?"}, &messages.TrialResultAck{Attempt: 9}} {
		r.sys.Root.Send(r.w.pid, m)
	}
	// Still answering: a well-formed trial is accepted.
	r.start("after", 1)
	next[*messages.TrialAccepted](t, r, 10*time.Second)
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "trials" && e.Name() != "fake-qfleet.sh" {
			t.Errorf("%s written next to the worker's directory", e.Name())
		}
	}
}
