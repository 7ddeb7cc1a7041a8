package actors

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// probe is a stand-in role that forwards every message it gets to a channel.
type probe struct{ got chan any }

func (p *probe) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	}
	p.got <- ctx.Message()
}

func spawnProbe(t *testing.T, sys *actor.ActorSystem, name string) chan any {
	t.Helper()
	ch := make(chan any, 100_000)
	if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &probe{got: ch} }), name); err != nil {
		t.Fatal(err)
	}
	return ch
}

func newTestSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(sys.Shutdown)
	return sys
}

// probeRef is the reference of a probe spawned by name, for reply_to fields.
func probeRef(sys *actor.ActorSystem, name string) *messages.ActorRef {
	return &messages.ActorRef{Address: sys.Address(), Id: name}
}

// spawnTestReplay starts a replay for 2-value observations and 3 actions.
func spawnTestReplay(sys *actor.ActorSystem, cfg Config, m *Metrics, snap SnapshotSpec) *actor.PID {
	return sys.Root.Spawn(actor.PropsFromProducer(newReplay(cfg, 2, 3, 1, m, slog.New(slog.DiscardHandler), snap)))
}

// next waits for the first message of type T on ch, skipping others.
func next[T any](t *testing.T, ch chan any) T {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-ch:
			if v, ok := m.(T); ok {
				return v
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T within 5 s", zero)
			return zero
		}
	}
}

func testNet() nets.Spec { return nets.Spec{Inputs: 4, Hidden: []int{8}, Outputs: 2} }

func weights(version, term uint64, fill float32) *messages.Weights {
	p := make([]float32, testNet().NumParams())
	for i := range p {
		p[i] = fill
	}
	return &messages.Weights{Version: version, Term: term, Params: p}
}

// A runner that receives weights out of order keeps the newest: an older
// version (or an older term) arriving late never replaces newer weights.
func TestRunnerKeepsNewestWeights(t *testing.T) {
	sys := newTestSystem(t)
	dir := LocalDirectory{Address: sys.Address()}
	replayCh := spawnProbe(t, sys, ReplayName)
	bcastCh := spawnProbe(t, sys, BroadcasterName)
	spawnProbe(t, sys, StatsName)
	cfg := DefaultConfig()
	cfg.CreditWindow = 64
	cfg.SendBatch = 32
	cfg.NStep = 1 // one transition per step, so credit counts are exact
	spec := RunnerSpec{Name: "r0", Count: 1, EnvID: "CartPole-v1", Seed: 1, Net: testNet()}
	r := sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, cfg, dir, NewMetrics(), slog.New(slog.DiscardHandler))))
	sub := next[*messages.SubscribeWeights](t, bcastCh)
	if sub.GetRunner().GetId() != r.Id {
		t.Fatalf("subscription names %v, want %v", sub.GetRunner(), r)
	}
	// Out of order: v3, then v2 (late), then term 0 v9 (an old learner).
	for _, w := range []*messages.Weights{weights(3, 1, 0.1), weights(2, 1, 0.2), weights(9, 0, 0.3)} {
		sys.Root.Send(r, w)
		ack := next[*messages.WeightsAck](t, bcastCh)
		if ack.GetVersion() != 3 || ack.GetTerm() != 1 {
			t.Fatalf("after weights v%d/t%d the runner acts on v%d/t%d, want v3/t1", w.Version, w.Term, ack.GetVersion(), ack.GetTerm())
		}
	}
	sys.Root.Send(r, weights(1, 2, 0.4)) // a new term wins even with a lower version
	if ack := next[*messages.WeightsAck](t, bcastCh); ack.GetVersion() != 1 || ack.GetTerm() != 2 {
		t.Fatalf("new term not taken: acting on v%d/t%d", ack.GetVersion(), ack.GetTerm())
	}

	// The credit window bounds what the runner sends unacknowledged: with
	// 64 credits it sends 64 transitions, then stops until credit comes back.
	sent := 0
	var first uint64
	for sent < 64 {
		b := next[*messages.ExperienceBatch](t, replayCh)
		if first == 0 {
			first = b.GetSeq()
		}
		sent += int(b.GetCount())
	}
	select {
	case m := <-replayCh:
		if b, ok := m.(*messages.ExperienceBatch); ok {
			t.Fatalf("runner sent %d more transitions without credit", b.GetCount())
		}
	case <-time.After(200 * time.Millisecond):
	}
	sys.Root.Send(r, &messages.Credit{Transitions: 32, Seq: first}) // credit names the batch it answers
	if b := next[*messages.ExperienceBatch](t, replayCh); b.GetCount() != 32 || b.GetReplyTo().GetId() != r.Id {
		t.Fatalf("after 32 credits got a batch of %d (reply_to %v)", b.GetCount(), b.GetReplyTo())
	}
}

// The broadcaster keeps one message in flight per runner and, when the runner
// acks, sends the newest weights: a slow runner skips versions, never works
// through a backlog.
func TestBroadcasterSendsOnlyTheNewest(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "slow-runner")
	runnerPID := actor.NewPID(sys.Address(), "slow-runner")
	b, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newBroadcaster(DefaultConfig(), NewMetrics(), slog.New(slog.DiscardHandler))), BroadcasterName)
	if err != nil {
		t.Fatal(err)
	}
	sys.Root.Send(b, weights(1, 1, 0))
	sys.Root.Send(b, &messages.SubscribeWeights{Runner: RefOf(runnerPID)})
	if w := next[*messages.Weights](t, runnerCh); w.GetVersion() != 1 {
		t.Fatalf("subscriber got v%d first, want the newest v1", w.GetVersion())
	}
	for v := uint64(2); v <= 10; v++ {
		sys.Root.Send(b, weights(v, 1, 0))
	}
	sys.Root.Send(b, weights(4, 1, 0)) // stale publication: ignored
	select {
	case m := <-runnerCh:
		t.Fatalf("broadcaster sent %T while the previous weights were unacknowledged", m)
	case <-time.After(200 * time.Millisecond):
	}
	sys.Root.Send(b, &messages.WeightsAck{Runner: RefOf(runnerPID), Version: 1, Term: 1})
	if w := next[*messages.Weights](t, runnerCh); w.GetVersion() != 10 {
		t.Fatalf("after the ack the runner got v%d, want v10", w.GetVersion())
	}
	sys.Root.Send(b, &messages.WeightsAck{Runner: RefOf(runnerPID), Version: 10, Term: 1})
	select {
	case m := <-runnerCh:
		t.Fatalf("runner that has the newest weights was sent %T", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// The replay defers a runner's credit while the learner lags the sample:insert
// ratio and grants it once samples catch up; it refuses and counts malformed
// experience but returns its credit.
func TestReplayCreditFollowsTheRateLimiter(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "runner")
	learnerCh := spawnProbe(t, sys, "learner")
	runnerRef := probeRef(sys, "runner")
	learnerRef := probeRef(sys, "learner")
	cfg := DefaultConfig()
	cfg.MinReplaySize, cfg.BatchSize, cfg.SamplesPerInsert, cfg.RateTolerance = 64, 64, 4, 64
	m := NewMetrics()
	rp := spawnTestReplay(sys, cfg, m, SnapshotSpec{})
	send := func(start, n int) {
		b := batchOf(start, n, 2)
		b.ReplyTo = runnerRef
		sys.Root.Send(rp, b)
	}
	send(0, 64) // min size reached: diff 256 = set point
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 64 {
		t.Fatalf("credit %d, want 64", c.GetTransitions())
	}
	send(64, 32) // diff 384 > 256+64: credit deferred
	// The runner hears that its batch arrived and its credit is held (a
	// credit of nothing), so that it does not take the credit for lost.
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 0 || c.GetSeq() != 0 {
		t.Fatalf("credit %v while the learner lags, want a held credit of 0", c)
	}
	select {
	case msg := <-runnerCh:
		t.Fatalf("credit %v granted while the learner lags", msg)
	case <-time.After(200 * time.Millisecond):
	}
	sys.Root.Send(rp, &messages.SampleRequest{RequestId: 1, BatchSize: 64, ReplyTo: learnerRef})
	if s := next[*messages.SampleBatch](t, learnerCh); s.GetCount() != 64 || s.GetRequestId() != 1 {
		t.Fatalf("sample batch %d/%d", s.GetCount(), s.GetRequestId())
	}
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 32 {
		t.Fatalf("deferred credit %d, want 32", c.GetTransitions())
	}
	bad := batchOf(96, 8, 3) // wrong observation size
	bad.ReplyTo = runnerRef
	sys.Root.Send(rp, bad)
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 8 {
		t.Fatalf("credit for a refused batch %d, want 8", c.GetTransitions())
	}
	if st := m.Status(); st.ExperienceRejected != 8 {
		t.Fatalf("rejected count %d, want 8", st.ExperienceRejected)
	}
}

// The replay counts exactly what never reached it: each batch says how many
// transitions its runner sent before it, so a missing batch shows as a gap,
// a batch that arrives late fills its part back in, a new runner
// incarnation is a new stream, and a batch received before is a duplicate.
// Credits name the batch they answer.
func TestReplayCountsLostExperienceExactly(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "runner")
	runnerRef := probeRef(sys, "runner")
	cfg := DefaultConfig()
	cfg.MinReplaySize = 1000
	m := NewMetrics()
	rp := spawnTestReplay(sys, cfg, m, SnapshotSpec{})
	send := func(inc, seq, before uint64, n int) {
		b := batchOf(int(before), n, 2)
		b.Runner, b.RunnerIncarnation, b.Seq, b.SentBefore, b.ReplyTo = "r0", inc, seq, before, runnerRef
		sys.Root.Send(rp, b)
		if c := next[*messages.Credit](t, runnerCh); c.GetSeq() != seq || c.GetTransitions() != uint32(n) {
			t.Fatalf("credit for seq %d: got seq %d, %d transitions", seq, c.GetSeq(), c.GetTransitions())
		}
	}
	lost := func(want uint64) {
		t.Helper()
		if st := m.Status(); st.ExperienceLost != want || st.Runners["r0"].ExperienceLost != want {
			t.Fatalf("lost %d (runner r0: %d), want %d", st.ExperienceLost, st.Runners["r0"].ExperienceLost, want)
		}
		// The Prometheus gauge says the same, also after a late batch.
		if g := testutil.ToFloat64(m.ExperienceLost); g != float64(want) {
			t.Fatalf("qfleet_experience_lost = %v, want %d", g, want)
		}
	}
	send(7, 1, 0, 10)
	send(7, 2, 10, 10)
	lost(0)
	send(7, 4, 30, 10) // seq 3 (10 transitions) missing
	lost(10)
	send(7, 3, 20, 10) // ... and arrives late after all
	lost(0)
	send(9, 1, 500, 5) // a new incarnation that sent 500 to a replay that died
	lost(500)
	if st := m.Status(); st.ReplayInserted != 45 {
		t.Fatalf("inserted %d, want 45", st.ReplayInserted)
	}
	// A replayed old batch (a peer re-sending a captured message): refused,
	// no credit, counted apart, and the accounting does not move.
	old := batchOf(10, 10, 2)
	old.Runner, old.RunnerIncarnation, old.Seq, old.SentBefore, old.ReplyTo = "r0", 7, 2, 10, runnerRef
	sys.Root.Send(rp, old)
	send(7, 5, 40, 10) // the stream goes on; its credit is the next message
	lost(500)
	if st := m.Status(); st.ReplayInserted != 55 || testutil.ToFloat64(m.ExperienceDuplicates) != 10 {
		t.Fatalf("inserted %d (want 55), duplicates %v (want 10)", st.ReplayInserted, testutil.ToFloat64(m.ExperienceDuplicates))
	}
}

// A message type a role does not know (a newer peer, a stray tool) is
// ignored: the role neither crashes nor restarts, and keeps serving.
func TestRolesIgnoreUnknownMessages(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "runner")
	runnerRef := probeRef(sys, "runner")
	cfg := DefaultConfig()
	m := NewMetrics()
	rp := spawnTestReplay(sys, cfg, m, SnapshotSpec{})
	for _, unknown := range []any{&messages.ReplayStream{Runner: "x"}, &messages.Checkpoint{}, "a string", 42} {
		sys.Root.Send(rp, unknown)
	}
	b := batchOf(0, 8, 2)
	b.ReplyTo = runnerRef
	sys.Root.Send(rp, b)
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 8 {
		t.Fatalf("credit %d after unknown messages, want 8", c.GetTransitions())
	}
	if st := m.Status(); len(st.Restarts) != 0 || st.ReplayInserted != 8 {
		t.Fatalf("restarts %v, inserted %d: want none and 8", st.Restarts, st.ReplayInserted)
	}
}

// restartingDirectory is a LocalDirectory whose replay can "restart" at the
// same address: a new incarnation, as cluster.Directory reports a node epoch.
type restartingDirectory struct {
	LocalDirectory
	incarnation atomic.Uint64
}

func (d *restartingDirectory) ReplayIncarnation() uint64 { return d.incarnation.Load() }

// A runner waiting for credit from a replay that died notices the replay's
// new incarnation within a poll (250 ms), not after CreditTimeout: it writes
// off the credits due and sends again, continuing its stream.
func TestRunnerNoticesRestartedReplay(t *testing.T) {
	sys := newTestSystem(t)
	dir := &restartingDirectory{LocalDirectory: LocalDirectory{Address: sys.Address()}}
	dir.incarnation.Store(1)
	replayCh := spawnProbe(t, sys, ReplayName)
	spawnProbe(t, sys, BroadcasterName)
	spawnProbe(t, sys, StatsName)
	cfg := DefaultConfig()
	cfg.CreditWindow, cfg.SendBatch, cfg.NStep = 64, 32, 1
	cfg.CreditTimeout = time.Hour // only the new incarnation can restore the window
	spec := RunnerSpec{Name: "r0", Count: 1, EnvID: "CartPole-v1", Seed: 1, Net: testNet()}
	sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, cfg, dir, NewMetrics(), slog.New(slog.DiscardHandler))))
	sent := 0
	for sent < 64 {
		sent += int(next[*messages.ExperienceBatch](t, replayCh).GetCount())
	}
	// Several polls pass: the same replay, no credit, nothing sent.
	select {
	case m := <-replayCh:
		t.Fatalf("sent without credit from the same replay: %T", m)
	case <-time.After(4 * maxCreditPoll):
	}
	restarted := time.Now()
	dir.incarnation.Store(2)
	b := next[*messages.ExperienceBatch](t, replayCh)
	if waited := time.Since(restarted); waited > 8*maxCreditPoll {
		t.Errorf("runner took %v to send to the restarted replay", waited)
	}
	if b.GetSentBefore() != 64 {
		t.Errorf("first batch to the new replay: sent_before %d, want 64 (the stream goes on)", b.GetSentBefore())
	}
}
