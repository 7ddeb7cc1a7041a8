package actors

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// creditSink stands in for the replay: it counts transitions and hands the
// credit straight back, so the runner is the only thing measured.
type creditSink struct{ got *atomic.Int64 }

func (s *creditSink) Receive(ctx actor.Context) {
	if b, ok := ctx.Message().(*messages.ExperienceBatch); ok {
		s.got.Add(int64(b.GetCount()))
		ctx.Send(PIDOf(b.GetReplyTo()), &messages.Credit{Transitions: b.GetCount(), Seq: b.GetSeq()})
	}
}

// BenchmarkRunner measures a runner actor's env steps/s: CartPole, ε-greedy on
// the 4-64-64-2 behaviour net at ε = 0.05, 3-step returns, batches of 32 or
// 128 sent as messages, credit returned by a sink; one env, or a vector of 8
// or 64 (envs_per_runner: one batched forward pass per vector step).
func BenchmarkRunner(b *testing.B) {
	for _, sendBatch := range []int{32, 128} {
		for _, n := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("send_batch=%d/envs_per_runner=%d", sendBatch, n), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.EpsilonStart, cfg.EpsilonEnd, cfg.SendBatch, cfg.CreditWindow = 0.05, 0.05, sendBatch, 8*sendBatch
				cfg.EnvsPerRunner = n
				benchRunner(b, cfg)
			})
		}
	}
}

func benchRunner(b *testing.B, cfg Config) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer sys.Shutdown()
	var got atomic.Int64
	sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &creditSink{got: &got} }), ReplayName)
	sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &probe{got: make(chan any, 1<<20)} }), StatsName)
	bc, _ := sys.Root.SpawnNamed(actor.PropsFromProducer(newBroadcaster(DefaultConfig(), NewMetrics(), slog.New(slog.DiscardHandler))), BroadcasterName)
	net := nets.Spec{Inputs: 4, Hidden: []int{64, 64}, Outputs: 2}
	sys.Root.Send(bc, &messages.Weights{Version: 1, Term: 1, Params: nets.InitParams(net, rand.New(rand.NewPCG(1, 1)))})
	r := sys.Root.Spawn(actor.PropsFromProducer(newRunner(RunnerSpec{Name: "bench", Count: 1, EnvID: "CartPole-v1", Seed: 1, Net: net}, cfg, LocalDirectory{Address: sys.Address()}, NewMetrics(), slog.New(slog.DiscardHandler))))
	defer sys.Root.Stop(r)
	// Warm up until the runner acts on weights.
	for got.Load() < 10_000 {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	start, t0 := got.Load(), time.Now()
	for got.Load()-start < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(got.Load()-start)/el.Seconds(), "steps/s")
}

// BenchmarkReplaySample measures the table's uniform sampling at the learner's batch sizes.
func BenchmarkReplaySample(b *testing.B) {
	tab := NewTable(4, 100_000)
	for i := 0; i < 100_000; i += 1000 {
		tab.Insert(batchOf(i, 1000, 4))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{32, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			var out messages.SampleBatch
			b.ReportAllocs()
			for b.Loop() {
				tab.SampleUniform(rng, n, &out)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "transitions/s")
		})
	}
}
