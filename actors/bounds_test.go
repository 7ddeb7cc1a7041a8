package actors

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// A peer inventing runner names cannot grow the stats' books (and /status)
// past MaxRunners; the runners already known are still counted.
func TestStatsKeepBooksForAtMostMaxRunners(t *testing.T) {
	sys := newTestSystem(t)
	m := NewMetrics()
	st, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newStats(StopRule{TargetReturn: 1e9}, m, slog.New(slog.DiscardHandler), func() {})), StatsName)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MaxRunners+100; i++ {
		sys.Root.Send(st, &messages.RunnerProgress{Runner: fmt.Sprintf("invented-%d", i), EnvSteps: 1, RunnerIncarnation: 1})
	}
	sys.Root.Send(st, &messages.RunnerProgress{Runner: "invented-0", EnvSteps: 5, RunnerIncarnation: 1})
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := m.Status(); s.EnvSteps != MaxRunners+5 {
			return fmt.Errorf("env steps %d, runners %d: want %d and %d", s.EnvSteps, len(s.Runners), MaxRunners+5, MaxRunners)
		}
		return nil
	})
	if s := m.Status(); len(s.Runners) != MaxRunners {
		t.Fatalf("%d runners in the books, want %d", len(s.Runners), MaxRunners)
	}
}

// An experience message claiming more transitions than any runner may send
// at once is dropped unread (a few bytes of zstd could inflate to 100+ MB),
// without a credit; one of another observation size is refused before it is
// decoded, counted and credited like any malformed batch; a good one after
// both is stored.
func TestReplayRefusesImpossibleExperienceUnread(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "runner")
	cfg := DefaultConfig()
	m := NewMetrics()
	rp := spawnTestReplay(sys, cfg, m, SnapshotSpec{})
	pack := func(b *messages.ExperienceBatch) *messages.PackedExperience {
		b.ReplyTo = probeRef(sys, "runner")
		p, err := wire.PackExperience(b, wire.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	huge := pack(batchOf(0, 8, 2))
	huge.Count = 1 << 20
	sys.Root.Send(rp, huge)
	sys.Root.Send(rp, pack(batchOf(0, 8, 4))) // 4-value observations to a 2-value replay
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 8 {
		t.Fatalf("credit %d for the refused batch, want 8 (and none for the oversized one)", c.GetTransitions())
	}
	sys.Root.Send(rp, pack(batchOf(0, 8, 2)))
	if c := next[*messages.Credit](t, runnerCh); c.GetTransitions() != 8 {
		t.Fatalf("credit %d for the good batch, want 8", c.GetTransitions())
	}
	if st := m.Status(); st.ExperienceRejected != 8 || st.ReplayInserted != 8 {
		t.Fatalf("rejected %d (want 8), inserted %d (want 8)", st.ExperienceRejected, st.ReplayInserted)
	}
}

// A weights chunk claiming another network's parameter count is refused
// before the assembler allocates for it; the runner goes on to act on real
// weights.
func TestRunnerRefusesChunksOfAnotherNetwork(t *testing.T) {
	sys := newTestSystem(t)
	spawnProbe(t, sys, ReplayName)
	bc := spawnProbe(t, sys, BroadcasterName)
	spawnProbe(t, sys, StatsName)
	m := NewMetrics()
	net := testNet()
	spec := RunnerSpec{Name: "r0", Count: 1, EnvID: "CartPole-v1", Seed: 1, Net: net}
	var logged testutil.SyncBuffer
	r := sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, DefaultConfig(), LocalDirectory{Address: sys.Address()}, m, slog.New(slog.NewTextHandler(&logged, nil)))))
	// A runner steps until stopped (ActorSystem.Shutdown does not stop
	// actors): left running it would allocate under later tests' counts.
	t.Cleanup(func() { _ = sys.Root.StopFuture(r).Wait() })
	sys.Root.Send(r, &messages.WeightsChunk{Version: 9, Term: 1, Index: 0, Total: 1, NumParams: 1 << 24, SegmentParams: 1 << 24})
	w := &messages.Weights{Version: 2, Term: 1, Params: make([]float32, net.NumParams())}
	chunks, err := wire.PackWeights(w, nil, 32<<10, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		sys.Root.Send(r, c)
	}
	for {
		ack := next[*messages.WeightsChunkAck](t, bc)
		if ack.GetActingVersion() == 2 {
			break // acting on the real weights, not on version 9
		}
		if ack.GetActingVersion() == 9 {
			t.Fatal("the runner took the oversized chunk's version")
		}
	}
	if want := fmt.Sprintf("16777216 params, this runner's network has %d", net.NumParams()); strings.Count(logged.String(), want) != 1 {
		t.Fatalf("the refusal does not say %q once (the assembler saw the chunk first?)", want)
	}
}
