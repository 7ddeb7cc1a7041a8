package actors

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m.Status()
		if s.EnvSteps == MaxRunners+5 {
			if len(s.Runners) != MaxRunners {
				t.Fatalf("%d runners in the books, want %d", len(s.Runners), MaxRunners)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("env steps %d, runners %d: want %d and %d", s.EnvSteps, len(s.Runners), MaxRunners+5, MaxRunners)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
