package actors

import (
	"log/slog"
	"math/rand/v2"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

// replay is the replay role: it owns the experience table and the
// sample:insert rate limiter, grants runners credit for more experience, and
// answers the learner's sample requests when the limiter allows.
type replay struct {
	cfg        Config
	obsSize    int
	numActions int
	seed       uint64
	metrics    *Metrics
	log        *slog.Logger

	table   *Table
	limiter *RateLimiter
	rng     *rand.Rand

	waiting  []*messages.SampleRequest // requests the limiter holds back, oldest first
	deferred []deferredCredit          // credits the limiter holds back

	streams map[streamKey]uint64 // per runner stream: transitions received (inserted or rejected)
	lost    uint64               // transitions that never arrived: gaps in the streams
}

type deferredCredit struct {
	to  *actor.PID
	n   uint32
	seq uint64
}

// streamKey names one runner's stream of experience: its name and the
// incarnation of its process (a restarted runner process starts over).
type streamKey struct {
	runner      string
	incarnation uint64
}

func newReplay(cfg Config, obsSize, numActions int, seed uint64, m *Metrics, log *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &replay{cfg: cfg, obsSize: obsSize, numActions: numActions, seed: seed, metrics: m, log: log.With("role", "replay")}
	}
}

func (r *replay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Restarting:
		r.log.Warn("replay restarting")
		r.metrics.countRestart("replay", ctx.Self().GetId())
	case *actor.Started:
		r.table = NewTable(r.obsSize, r.cfg.ReplayCapacity)
		r.table.LimitActions(r.numActions)
		r.limiter = NewRateLimiter(r.cfg.SamplesPerInsert, r.cfg.MinReplaySize, r.cfg.RateTolerance)
		r.rng = rand.New(rand.NewPCG(r.seed, 0x7265706c6179))
		r.streams = make(map[streamKey]uint64)
		r.log.Info("replay started", "capacity", r.cfg.ReplayCapacity, "min_size", r.cfg.MinReplaySize, "samples_per_insert", r.cfg.SamplesPerInsert)
	case *messages.ExperienceBatch:
		r.insert(ctx, msg)
		r.serve(ctx)
	case *messages.PackedExperience:
		r.metrics.WireBytes.WithLabelValues("experience", "received").Add(float64(proto.Size(msg)))
		b, err := UnpackExperience(msg)
		if err != nil {
			// Refused and counted like any malformed batch; the credit goes back.
			b = &messages.ExperienceBatch{Runner: msg.GetRunner(), Count: msg.GetCount(), ReplyTo: msg.GetReplyTo()}
			r.log.Warn("packed experience refused", "runner", msg.GetRunner(), "err", err)
		}
		r.insert(ctx, b)
		r.serve(ctx)
	case *messages.SampleRequest:
		if msg.GetBatchSize() == 0 || msg.GetReplyTo() == nil {
			r.log.Warn("sample request ignored: needs batch_size > 0 and reply_to", "batch_size", msg.GetBatchSize())
			return
		}
		for _, w := range r.waiting {
			if w.GetRequestId() == msg.GetRequestId() && proto.Equal(w.GetReplyTo(), msg.GetReplyTo()) {
				return // a re-sent request we already hold
			}
		}
		r.waiting = append(r.waiting, msg)
		r.serve(ctx)
	}
}

// insert checks and stores a batch, then returns the runner's credit now or,
// when the table is ahead of the learner, once the learner has caught up.
func (r *replay) insert(ctx actor.Context, b *messages.ExperienceBatch) {
	n := b.GetCount()
	if err := r.table.CheckBatch(b); err != nil {
		// Refused and counted; the credit still goes back, or a runner
		// that sent one bad batch would lose part of its window for good.
		r.metrics.ExperienceRejected.Add(float64(n))
		r.metrics.update(func(s *RunStatus) { s.ExperienceRejected += uint64(n) })
		r.log.Warn("experience rejected", "err", err)
	} else {
		r.table.Insert(b)
		r.limiter.Inserted(int(n))
		r.metrics.ReplayInserted.Add(float64(n))
		r.metrics.ReplaySize.Set(float64(r.table.Size()))
		r.metrics.update(func(s *RunStatus) { s.ReplaySize, s.ReplayInserted = r.table.Size(), r.table.Inserted() })
	}
	r.account(b)
	to := pid(b.GetReplyTo())
	if to == nil || n == 0 {
		return
	}
	if r.limiter.CanInsert() {
		ctx.Send(to, &messages.Credit{Transitions: n, Seq: b.GetSeq()})
	} else {
		r.deferred = append(r.deferred, deferredCredit{to: to, n: n, seq: b.GetSeq()})
	}
}

// account counts what never arrived. A batch says how many transitions its
// runner sent before it; what this replay has not received of those is a
// gap: batches lost between hosts, or held by a replay that died (or by this
// one after its last snapshot). A batch that arrives after a later one fills
// its part of a gap back in. Batches without an incarnation (tools, old
// runners) are not accounted.
func (r *replay) account(b *messages.ExperienceBatch) {
	if b.GetRunnerIncarnation() == 0 {
		return
	}
	k := streamKey{b.GetRunner(), b.GetRunnerIncarnation()}
	got, before, n := r.streams[k], b.GetSentBefore(), uint64(b.GetCount())
	var gap int64
	switch {
	case before >= got:
		gap = int64(before - got)
		r.streams[k] = before + n
	default: // late: it was counted in a gap already
		gap = -int64(min(n, r.lost))
	}
	if gap == 0 {
		return
	}
	r.lost = uint64(int64(r.lost) + gap)
	if gap > 0 {
		r.log.Warn("experience lost before reaching the replay", "runner", b.GetRunner(), "transitions", gap)
		r.metrics.ExperienceLost.Add(float64(gap))
	}
	r.metrics.update(func(s *RunStatus) {
		s.ExperienceLost = r.lost
		rs := s.Runners[b.GetRunner()]
		rs.ExperienceLost = uint64(max(0, int64(rs.ExperienceLost)+gap))
		s.Runners[b.GetRunner()] = rs
	})
}

// serve answers waiting sample requests while the limiter allows, then
// releases credits that the samples made room for.
func (r *replay) serve(ctx actor.Context) {
	for len(r.waiting) > 0 {
		req := r.waiting[0]
		n := int(req.GetBatchSize())
		if !r.limiter.CanSample(n) {
			break
		}
		r.waiting = r.waiting[1:]
		out := &messages.SampleBatch{RequestId: req.GetRequestId()}
		r.table.SampleUniform(r.rng, n, out)
		r.limiter.Sampled(n)
		ctx.Send(pid(req.GetReplyTo()), out)
	}
	for len(r.deferred) > 0 && r.limiter.CanInsert() {
		c := r.deferred[0]
		r.deferred = r.deferred[1:]
		ctx.Send(c.to, &messages.Credit{Transitions: c.n, Seq: c.seq})
	}
}
