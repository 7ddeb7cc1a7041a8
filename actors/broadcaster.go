package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors/lograte"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// broadcaster is the weight broadcaster role. It keeps only the newest
// weights and lets each subscribed runner have one message in flight: the
// next send waits for the runner's ack and is then the newest weights, so a
// slow runner skips versions instead of building a backlog.
//
// A runner on this node gets the Weights message itself. A runner on another
// host gets the weights packed (zstd, optionally as a delta against the
// version it acknowledged) in chunks of WeightsChunkBytes, up to chunkWindow
// of them unacknowledged, so that credits and acks on the same link never
// wait behind a big transfer. A started transfer is finished before the next
// (newest) version starts, or a runner on a slow link would never complete
// any version. Chunks whose ack never comes (at-most-once delivery across
// hosts) are sent again after resendAfter without progress.
//
// Each runner on another host has a bandwidth budget (weightsbudget.go:
// weights_max_rate, weights_min_interval): a chunk waits until the budget
// allows it, and a new version's transfer starts only when it may; the
// version started is the newest at that moment, so one that waited is
// replaced by a newer one.
type broadcaster struct {
	cfg     Config
	metrics *Metrics
	log     *slog.Logger

	latest      *messages.Weights
	packed      map[wire.Version]*wire.WeightsPacker // chunks of latest, by the base's key (zero: whole), packed as first needed
	subscribers map[string]*subscriber               // by PID string
	pubs        publications                         // when recent versions came, for the runners' lag in seconds
	stopTick    scheduler.CancelFunc
	refusedLog  *lograte.Limiter

	// The one pending budget wake-up (weightsbudget.go): nil when none.
	wake     scheduler.CancelFunc
	wakeTime time.Time
	wakeSeq  uint64
}

type subscriber struct {
	pid      *actor.PID
	remote   bool
	name     string // in the run's stats ("B/runner-0"), or pidLinkName
	inFlight bool   // local: a Weights unacknowledged
	sentAt   time.Time
	acked    wire.Version      // newest version the runner has whole
	base     *messages.Weights // that version, the base of a delta (remote only)

	sending *messages.Weights // the version being transferred in chunks
	chunks  *wire.WeightsPacker
	next    int // index of the next chunk to send
	done    int // chunks acknowledged (acks are cumulative)

	budget linkBudget // remote only
}

// awaitingAck says whether s has something sent and not acknowledged: a
// Weights (local), or chunks (remote). Chunks the budget holds back have
// not been sent: they are not awaited.
func (s *subscriber) awaitingAck() bool {
	if !s.remote {
		return s.inFlight
	}
	return s.sending != nil && s.next > s.done
}

// chunkWindow is how many chunks of one transfer may be in flight to a runner:
// enough to cover a round trip on a fast link (one at a time made a 1M-param
// transfer 100 round trips long), few enough that a credit waits behind at
// most chunkWindow·WeightsChunkBytes on a slow one.
const chunkWindow = 8

// resendAfter is how long the broadcaster waits for an ack before it sends the
// same message again.
const resendAfter = 2 * time.Second

type broadcasterTick struct{}

func newBroadcaster(cfg Config, m *Metrics, log *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &broadcaster{cfg: cfg, metrics: m, log: log.With("role", "broadcaster"), subscribers: map[string]*subscriber{},
			refusedLog: lograte.New(10 * time.Second)}
	}
}

func (b *broadcaster) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Restarting:
		b.log.Warn("broadcaster restarting")
		b.metrics.countRestart("broadcaster", ctx.Self().GetId())
	case *actor.Started:
		b.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(resendAfter/2, resendAfter/2, ctx.Self(), &broadcasterTick{})
	case *actor.Stopping:
		b.stopTick()
		b.stopWake()
	case *messages.Weights:
		if b.latest != nil && !wire.VersionOf(msg).NewerThan(wire.VersionOf(b.latest)) {
			return
		}
		b.latest = msg
		b.packed = map[wire.Version]*wire.WeightsPacker{}
		b.pubs.add(wire.VersionOf(msg), time.Now())
		for _, s := range b.subscribers {
			b.send(ctx, s)
		}
	case *messages.SubscribeWeights:
		b.subscribe(ctx, msg.GetRunner(), msg)
	case *messages.WeightsAck:
		s := b.subscriber(msg.GetRunner())
		if s == nil {
			// An ack from a runner we dropped (its host was cut off, or we
			// restarted): it is evidently alive, so take it back.
			b.subscribe(ctx, msg.GetRunner(), nil)
			return
		}
		if s.remote {
			return
		}
		s.inFlight = false
		if k := (wire.Version{Term: msg.GetTerm(), Version: msg.GetVersion()}); k.NewerThan(s.acked) {
			s.acked = k
		}
		b.send(ctx, s)
	case *messages.WeightsChunkAck:
		b.chunkAck(ctx, msg)
	case *actor.Terminated:
		delete(b.subscribers, msg.GetWho().String())
	case *broadcasterTick:
		now := time.Now()
		for _, s := range b.subscribers {
			if s.awaitingAck() && now.Sub(s.sentAt) > resendAfter {
				// Go back to the first unacknowledged chunk (or message);
				// what is sent again is paid for as the first time.
				if s.remote {
					b.metrics.linkResent(s.name, s.next-s.done)
				}
				s.inFlight, s.next = false, s.done
				b.send(ctx, s)
			}
		}
		b.reportLinks(now)
	case *budgetWake:
		b.woken(ctx, msg)
	}
}

// chunkAck takes a runner's ack of a chunk: progress on the transfer, and
// the version whole after its last chunk.
func (b *broadcaster) chunkAck(ctx actor.Context, msg *messages.WeightsChunkAck) {
	s := b.subscriber(msg.GetRunner())
	if s == nil {
		b.subscribe(ctx, msg.GetRunner(), nil) // as for WeightsAck
		return
	}
	if s.sending == nil || (wire.Version{Term: msg.GetTerm(), Version: msg.GetVersion()}) != wire.VersionOf(s.sending) || int(msg.GetIndex()) < s.done || int(msg.GetIndex()) >= s.next {
		return // a late ack of something already re-sent or superseded
	}
	s.done = int(msg.GetIndex()) + 1
	s.sentAt = time.Now() // progress: the resend timer starts over
	if s.done == s.chunks.Total() {
		// The runner has this version whole: it is the next delta's base.
		s.acked, s.base, s.sending, s.chunks = wire.VersionOf(s.sending), s.sending, nil, nil
	}
	b.send(ctx, s)
}

// subscribe (re)starts a runner's subscription (sub: its SubscribeWeights;
// nil when an ack of a runner we did not know took it back). A runner we
// know that subscribes again keeps its budget, whatever it says (a
// subscription never buys a burst), and its delta base when it still holds
// the version we last delivered whole; the transfer under way starts over
// with the newest version.
func (b *broadcaster) subscribe(ctx actor.Context, r *messages.ActorRef, sub *messages.SubscribeWeights) {
	p := PIDOf(r)
	if p == nil {
		return
	}
	key := p.String()
	old, known := b.subscribers[key]
	if !known {
		if len(b.subscribers) >= MaxRunners {
			if ok, held := b.refusedLog.Allow("full", time.Now()); ok {
				b.log.Warn("subscription refused: the broadcaster has the most runners it serves", "runner", key, "max", MaxRunners, "refused_since_last_line", held)
			}
			return
		}
		ctx.Watch(p)
	}
	s := &subscriber{pid: p, remote: p.Address != ctx.Self().Address, name: b.subscriberName(key, p, sub), budget: newLinkBudget(b.cfg)}
	if known {
		s.budget = old.budget
		if s.remote && old.base != nil && sub != nil &&
			(wire.Version{Term: sub.GetBaseTerm(), Version: sub.GetBaseVersion()}) == wire.VersionOf(old.base) {
			s.acked, s.base = old.acked, old.base
		}
	}
	b.subscribers[key] = s
	b.send(ctx, s)
}

// subscriberName is the name a subscription goes by in the link books: the
// runner's own when it gave a usable one that no other runner here uses,
// else its PID's (pidLinkName).
func (b *broadcaster) subscriberName(key string, p *actor.PID, sub *messages.SubscribeWeights) string {
	name := sub.GetRunnerName()
	if !validLinkName(name) {
		return pidLinkName(p)
	}
	for k, s := range b.subscribers {
		if k != key && s.name == name {
			return pidLinkName(p)
		}
	}
	return name
}

func (b *broadcaster) subscriber(r *messages.ActorRef) *subscriber {
	if p := PIDOf(r); p != nil {
		return b.subscribers[p.String()]
	}
	return nil
}

// send gives s what it may have next: for a local runner the newest weights
// if it lacks them (one message in flight); for a remote one the next chunks
// of the transfer in progress, or the start of the newest version's, as far
// as its budget allows (else a wake-up is set for when it will).
func (b *broadcaster) send(ctx actor.Context, s *subscriber) {
	if !s.remote {
		if s.inFlight || b.latest == nil || !wire.VersionOf(b.latest).NewerThan(s.acked) {
			return
		}
		s.inFlight, s.sentAt = true, time.Now()
		ctx.Send(s.pid, b.latest)
		return
	}
	now := time.Now()
	if s.sending == nil {
		if b.latest == nil || !wire.VersionOf(b.latest).NewerThan(s.acked) {
			return
		}
		if at := s.budget.startAt(); now.Before(at) {
			b.wakeAt(ctx, at)
			return
		}
		chunks, err := b.chunksFor(s)
		if err != nil {
			b.log.Error("weights not packed", "err", err, "version", b.latest.GetVersion())
			return
		}
		s.sending, s.chunks, s.next, s.done = b.latest, chunks, 0, 0
		s.budget.started()
	}
	for s.next < s.chunks.Total() && s.next-s.done < chunkWindow {
		if at := s.budget.sendAt(); now.Before(at) {
			b.wakeAt(ctx, at)
			return
		}
		c, err := s.chunks.Chunk(s.next)
		if err != nil {
			b.log.Error("weights chunk not packed", "err", err, "version", s.sending.GetVersion())
			s.sending, s.chunks = nil, nil
			return
		}
		// Paid from when it goes, after packing (which takes time).
		sent, n := time.Now(), proto.Size(c)
		s.next++
		s.sentAt = sent
		s.budget.paid(sent, n)
		b.metrics.WireBytes.WithLabelValues("weights", "sent").Add(float64(n))
		b.metrics.linkWeightsSent(s.name, n, sent)
		ctx.Send(s.pid, c)
	}
}

// chunksFor packs the latest weights for s: a delta against the version s
// has whole when there is one of the same term, else whole; packed once per
// base and shared.
func (b *broadcaster) chunksFor(s *subscriber) (*wire.WeightsPacker, error) {
	var base *messages.Weights
	if b.cfg.WeightsDelta && s.base != nil && s.base.GetTerm() == b.latest.GetTerm() && len(s.base.GetParams()) == len(b.latest.GetParams()) {
		base = s.base
	}
	var key wire.Version
	if base != nil {
		key = wire.VersionOf(base)
	}
	if pk, ok := b.packed[key]; ok {
		return pk, nil
	}
	pk, err := wire.NewWeightsPacker(b.latest, base, b.cfg.WeightsChunkBytes, true)
	if err != nil {
		return nil, err
	}
	b.packed[key] = pk
	return pk, nil
}
