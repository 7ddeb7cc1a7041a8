package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"google.golang.org/protobuf/proto"
)

// wireSenderStats are the sender process's cumulative counters.
type wireSenderStats struct {
	Packed       uint64  `json:"packed"`
	PackNanos    uint64  `json:"pack_ns"`
	SentBytes    uint64  `json:"sent_bytes"`
	Sent         uint64  `json:"sent"`
	StalledNanos uint64  `json:"stalled_ns"`
	CPU          float64 `json:"cpu_s"`
}

// wireSender is a runner without the env: it streams prepared batches to
// the replay through the runner's own ExperienceSender, keeping its outbox
// a batch ahead of the credit window, so that the stream is as fast as the
// sender's packing and the replay's credit allow.
type wireSender struct {
	replay        string // the replay's node address
	batches       []*messages.ExperienceBatch
	window, batch int
	stats         *wireCounters

	sender  *actors.ExperienceSender
	stream  actors.ExperienceStream
	next    int
	stalled time.Time // when the last send ended; zero while sending
}

// wireCounters are shared by a process's senders, as a node's metrics are
// shared by its runners (the wire bytes are counted there).
type wireCounters struct {
	packed, packNanos, sent, stalledNanos atomic.Uint64
	metrics                               *actors.Metrics
	fail                                  chan error
}

func (s *wireSender) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		cfg := actors.DefaultConfig()
		cfg.SendBatch, cfg.CreditWindow = s.batch, s.window
		cfg.OutboxLimit = s.window + s.batch // a batch waits whenever credit comes
		s.stream.Incarnation = rand.Uint64() | 1
		s.sender = actors.NewExperienceSender(cfg, actors.LocalDirectory{Address: s.replay}, s.stats.metrics, slog.New(failOnError{slog.LevelError, s.stats.fail}), &s.stream)
		s.send(ctx)
	case *messages.Credit:
		if s.sender.Credit(msg) && !s.stalled.IsZero() {
			s.stats.stalledNanos.Add(uint64(time.Since(s.stalled)))
			s.stalled = time.Time{}
		}
		s.send(ctx)
	}
}

// send fills the outbox and lets the sender send what the credit allows.
func (s *wireSender) send(ctx actor.Context) {
	for s.sender.HasRoom() {
		s.sender.Enqueue(s.batches[s.next])
		s.next = (s.next + 1) % len(s.batches)
	}
	sent, seq := s.stream.Sent, s.stream.Seq
	t := time.Now()
	s.sender.TrySend(ctx, 7)
	if n := s.stream.Seq - seq; n > 0 {
		s.stats.packNanos.Add(uint64(time.Since(t)))
		s.stats.packed.Add(n)
		s.stats.sent.Add(s.stream.Sent - sent)
	}
	s.stalled = time.Now()
}

// failOnError is a log handler that hands the first record at level or
// above (a batch the sender could not pack, a weights chunk refused) to the
// process as its failure: the benchmark measures a flow that works.
type failOnError struct {
	level slog.Level
	fail  chan error
}

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	select {
	case h.fail <- errors.New(msg):
	default:
	}
	return nil
}

func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

func childWireSender(args []string, stdout, stderr io.Writer) error {
	var replayAddr string
	var batch, window, distinct, senders int
	var seed uint64
	if err := childFlags("wire-sender", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&replayAddr, "replay", "", "")
		fs.IntVar(&batch, "batch", 128, "")
		fs.IntVar(&window, "window", 1024, "")
		fs.IntVar(&distinct, "batches", 256, "")
		fs.IntVar(&senders, "senders", 1, "")
		fs.Uint64Var(&seed, "seed", 1, "")
	}); err != nil {
		return err
	}
	batches, err := cartPoleBatches(batch, distinct, seed)
	if err != nil {
		return err
	}
	sys, rem, logs, err := system(stderr)
	if err != nil {
		return err
	}
	defer func() { logs.mute(); rem.Shutdown(false) }()
	st := &wireCounters{metrics: actors.NewMetrics(), fail: make(chan error, 1)}
	for i := range senders {
		// Each sender stamps its own copies; they start at different batches.
		own := make([]*messages.ExperienceBatch, len(batches))
		for j := range own {
			own[j] = proto.Clone(batches[(j+i*len(batches)/senders)%len(batches)]).(*messages.ExperienceBatch)
			own[j].Runner = fmt.Sprintf("bench/runner-%d", i)
		}
		s := &wireSender{replay: replayAddr, batches: own, window: window, batch: batch, stats: st}
		pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return s }), fmt.Sprintf("bench/runner-%d", i))
		if err != nil {
			return err
		}
		defer sys.Root.Stop(pid)
	}
	fmt.Fprintf(stdout, "ready %s\n", sys.Address())
	var failed error
	childCommands(func(cmd string) {
		select {
		case failed = <-st.fail:
		default:
		}
		if cmd == "stats" {
			if failed != nil {
				fmt.Fprintf(stdout, "error %v\n", failed)
				return
			}
			_ = printJSON(stdout, wireSenderStats{
				Packed: st.packed.Load(), PackNanos: st.packNanos.Load(), SentBytes: uint64(counterValue(st.metrics, "qfleet_wire_bytes_total", "flow", "experience", "direction", "sent")),
				Sent: st.sent.Load(), StalledNanos: st.stalledNanos.Load(), CPU: cpuSeconds(),
			})
		}
	})
	return failed
}

// cartPoleBatches runs CartPole-v1 with uniformly random actions through
// 3-step transitions (γ 0.99) and cuts them into batches as a runner does: a
// batch is sent once it holds at least size transitions (an episode end can
// add a few more).
func cartPoleBatches(size, count int, seed uint64) ([]*messages.ExperienceBatch, error) {
	env, err := envs.Make(envs.CartPoleID)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x62656e6368))
	d := env.Spec().ObsSize()
	newBatch := func() *messages.ExperienceBatch {
		n := size + 3
		return &messages.ExperienceBatch{
			Runner: "bench/runner-0", ObsSize: uint32(d),
			Observations: make([]float32, 0, n*d), NextObservations: make([]float32, 0, n*d),
			Actions: make([]uint32, 0, n), Rewards: make([]float32, 0, n), Discounts: make([]float32, 0, n),
		}
	}
	out := make([]*messages.ExperienceBatch, 0, count)
	b := newBatch()
	acc := actors.NewNStepAccumulator(3, 0.99)
	emit := func(obs []float32, action int, reward, discount float64, next []float32) {
		b.Append(obs, action, reward, discount, next)
	}
	obs := slices.Clone(env.Reset(rng.Int64()))
	for len(out) < count {
		a := rng.IntN(env.Spec().NumActions)
		next, reward, terminated, truncated := env.Step(a)
		acc.Add(obs, a, reward, next, terminated, truncated, emit)
		if terminated || truncated {
			obs = append(obs[:0], env.Reset(rng.Int64())...)
		} else {
			obs = append(obs[:0], next...)
		}
		if int(b.Count) >= size {
			out = append(out, b)
			b = newBatch()
		}
	}
	return out, nil
}
