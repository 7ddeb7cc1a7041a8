package sweep

// The trial worker's protocol, against a fake coordinator and fake trial
// processes (shell scripts in place of 'qfleet dev'): accept, busy, repeated
// StartTrial, cancel, heartbeats, results repeated until acknowledged, and a
// trial stopped when the sweep stops acknowledging its heartbeats.

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

type fakeCoord struct {
	ack  atomic.Bool // acknowledge heartbeats
	msgs chan any
}

func (f *fakeCoord) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.TrialHeartbeat:
		if f.ack.Load() {
			ctx.Send(refPID(m.Worker), &messages.TrialHeartbeatAck{Trial: m.Trial, Attempt: m.Attempt})
		}
		f.msgs <- m
	case *messages.TrialAccepted, *messages.TrialRejected, *messages.TrialResult:
		f.msgs <- m
	}
}

// workerRig is a worker on a local actor system, a fake coordinator, and a
// fake trial program.
type workerRig struct {
	sys   *actor.ActorSystem
	w     *Worker
	coord *actor.PID
	fc    *fakeCoord
	dir   string
}

func newWorkerRig(t *testing.T, script string, slots int) *workerRig {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-qfleet.sh")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &workerRig{sys: actor.NewActorSystem(), fc: &fakeCoord{msgs: make(chan any, 100)}, dir: dir}
	var err error
	if r.w, err = StartWorker(r.sys, WorkerOptions{Node: "W", Dir: filepath.Join(dir, "trials"), Slots: slots, Executable: exe}); err != nil {
		t.Fatal(err)
	}
	r.coord = r.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r.fc }))
	t.Cleanup(func() {
		r.w.Stop()
		r.sys.Shutdown()
	})
	return r
}

func (r *workerRig) start(trial string, attempt uint32) {
	r.sys.Root.Send(r.w.pid, &messages.StartTrial{Coordinator: actors.RefOf(r.coord), Sweep: "s", Trial: trial, Attempt: attempt, ConfigYaml: []byte("env: CartPole-v1\n")})
}

// next waits for the next message of type T from the worker, skipping others
// (heartbeats, unless T is one).
func next[T any](t *testing.T, r *workerRig, d time.Duration) T {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-r.fc.msgs:
			if v, ok := m.(T); ok {
				return v
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T from the worker within %v", zero, d)
			return zero
		}
	}
}

// none checks that no message of type T arrives within d.
func none[T any](t *testing.T, r *workerRig, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-r.fc.msgs:
			if _, ok := m.(T); ok {
				t.Fatalf("unexpected %T: %v", m, m)
			}
		case <-deadline:
			return
		}
	}
}

// sleeper is a trial that runs until interrupted (then logs it and fails).
const sleeper = "sleep 60 &\ntrap 'kill $!; echo interrupted >&2; exit 1' INT\nwait\n"

func TestSweepWorkerAcceptBusyCancel(t *testing.T) {
	r := newWorkerRig(t, sleeper, 1)
	r.start("a", 1)
	acc := next[*messages.TrialAccepted](t, r, 5*time.Second)
	if acc.Trial != "a" || acc.Node != "W" || acc.RunDir != filepath.Join(r.dir, "trials", "s", "a") {
		t.Fatalf("accepted %+v", acc)
	}
	if cfg, err := os.ReadFile(filepath.Join(acc.RunDir, "trial.yaml")); err != nil || string(cfg) != "env: CartPole-v1\n" {
		t.Errorf("trial.yaml: %q %v", cfg, err)
	}
	// A repeated StartTrial (the answer was lost) is answered again, same run.
	r.start("a", 1)
	if again := next[*messages.TrialAccepted](t, r, 5*time.Second); again.RunDir != acc.RunDir {
		t.Errorf("repeated StartTrial: run dir %s, want %s", again.RunDir, acc.RunDir)
	}
	// One slot: another trial is declined.
	r.start("b", 1)
	if rej := next[*messages.TrialRejected](t, r, 5*time.Second); rej.Trial != "b" || !strings.Contains(rej.Reason, "busy") {
		t.Errorf("rejected %+v, want b busy", rej)
	}
	// Heartbeats come while it runs.
	if hb := next[*messages.TrialHeartbeat](t, r, 5*time.Second); hb.Trial != "a" || hb.Attempt != 1 {
		t.Errorf("heartbeat %+v", hb)
	}
	// Cancel: the process is interrupted, no result is sent.
	r.sys.Root.Send(r.w.pid, &messages.CancelTrial{Trial: "a", Attempt: 1, Reason: "test"})
	testutil.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if log, _ := os.ReadFile(filepath.Join(acc.RunDir, "trial.log")); !strings.Contains(string(log), "interrupted") {
			return os.ErrNotExist
		}
		return nil
	})
	none[*messages.TrialResult](t, r, 3*time.Second)
	// The slot is free again; a new attempt of a gets a new run directory.
	r.start("a", 2)
	if acc2 := next[*messages.TrialAccepted](t, r, 5*time.Second); acc2.RunDir != acc.RunDir+"-2" {
		t.Errorf("attempt 2 run dir %s, want %s-2", acc2.RunDir, acc.RunDir)
	}
}

func TestSweepWorkerOrphanStopped(t *testing.T) {
	old := orphanAfter
	orphanAfter = 3 * time.Second
	defer func() { orphanAfter = old }()
	r := newWorkerRig(t, sleeper, 1)
	r.start("a", 1) // the fake coordinator does not acknowledge heartbeats
	acc := next[*messages.TrialAccepted](t, r, 5*time.Second)
	started := time.Now()
	testutil.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		if log, _ := os.ReadFile(filepath.Join(acc.RunDir, "trial.log")); !strings.Contains(string(log), "interrupted") {
			return os.ErrNotExist
		}
		return nil
	})
	if d := time.Since(started); d < orphanAfter {
		t.Errorf("stopped after %v, before orphanAfter %v", d, orphanAfter)
	}
	none[*messages.TrialResult](t, r, 2*time.Second)
}

func TestSweepWorkerResultRepeatedUntilAcked(t *testing.T) {
	old := orphanAfter
	orphanAfter = 3 * time.Second
	defer func() { orphanAfter = old }()
	// A 6 s trial that writes a summary: it outlives orphanAfter because
	// its heartbeats are acknowledged.
	r := newWorkerRig(t, `sleep 6
printf '{"env":"CartPole-v1","env_steps":123,"mean_return_100":5,"mean_return_100_episodes":3}\n' > "$5/summary.json"
printf '{"step":100,"wall":1,"name":"mean100","value":7}\n{"step":123,"wall":2,"name":"mean100","value":5}\n' > "$5/scalars.jsonl"
`, 1)
	r.fc.ack.Store(true)
	r.start("a", 1)
	next[*messages.TrialAccepted](t, r, 5*time.Second)
	res := next[*messages.TrialResult](t, r, 15*time.Second)
	if !res.Ok || res.Node != "W" || !res.HasBest || res.BestMean100 != 7 || !strings.Contains(string(res.SummaryJson), `"env_steps":123`) || res.Worker == nil {
		t.Fatalf("result %+v", res)
	}
	if res.WallSeconds < 6 {
		t.Errorf("wall %.1fs, want >= 6 (it ran to its end)", res.WallSeconds)
	}
	// Not acknowledged: repeated.
	again := next[*messages.TrialResult](t, r, 5*time.Second)
	if again.Trial != "a" || again.Attempt != 1 {
		t.Errorf("repeat %+v", again)
	}
	r.sys.Root.Send(r.w.pid, &messages.TrialResultAck{Trial: "a", Attempt: 1})
	time.Sleep(500 * time.Millisecond) // an in-flight repeat may still come
	for len(r.fc.msgs) > 0 {
		<-r.fc.msgs
	}
	none[*messages.TrialResult](t, r, 5*time.Second)
}

// A promoted segment: the worker writes the checkpoint it was given where
// 'qfleet dev --resume' reads it, and sends back the checkpoint and replay
// snapshot the run left; a run that left none fails with a clear error.
func TestSweepWorkerCarriesCheckpoints(t *testing.T) {
	r := newWorkerRig(t, `d="$5/checkpoints"
case " $* " in *" --resume "*) ;; *) echo "no --resume: $*" >&2; exit 1;; esac
[ "$(cat "$d/learner.ckpt")" = C1 ] && [ "$(cat "$d/replay.snap")" = S1 ] || { echo "not given C1/S1" >&2; exit 1; }
[ "$1" = dev ] && [ "$8" = --checkpoint-dir ] || { echo "args $*" >&2; exit 1; }
case "$3" in *second*) rm "$d/learner.ckpt";; *) printf C2 > "$d/learner.ckpt"; printf S2 > "$d/replay.snap";; esac
printf '{"env":"CartPole-v1","env_steps":10}\n' > "$5/summary.json"
`, 1)
	r.fc.ack.Store(true)
	send := func(trial string) {
		r.sys.Root.Send(r.w.pid, &messages.StartTrial{Coordinator: actors.RefOf(r.coord), Sweep: "s", Trial: trial, Attempt: 1,
			ConfigYaml: []byte("env: CartPole-v1\n"), Checkpoint: []byte("C1"), ReplaySnapshot: []byte("S1"), KeepCheckpoint: true})
	}
	send("first")
	res := next[*messages.TrialResult](t, r, 15*time.Second)
	if !res.Ok || string(res.Checkpoint) != "C2" || string(res.ReplaySnapshot) != "S2" {
		t.Fatalf("result ok %v (%s), checkpoint %q, snapshot %q", res.Ok, res.Error, res.Checkpoint, res.ReplaySnapshot)
	}
	r.sys.Root.Send(r.w.pid, &messages.TrialResultAck{Trial: "first", Attempt: 1})
	send("second")
	res = next[*messages.TrialResult](t, r, 15*time.Second)
	for res.Trial != "second" {
		res = next[*messages.TrialResult](t, r, 15*time.Second)
	}
	if res.Ok || !strings.Contains(res.Error, "learner.ckpt: none was written") {
		t.Fatalf("a run that left no checkpoint: ok %v, error %q", res.Ok, res.Error)
	}
}
