package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/messages"
)

// broadcaster is the weight broadcaster role. It keeps only the newest
// weights and lets each subscribed runner have one Weights message in flight:
// the next send waits for the runner's ack and is then the newest weights, so
// a slow runner skips versions instead of building a backlog. A send whose ack
// never comes (at-most-once delivery across hosts) is repeated after
// resendAfter.
type broadcaster struct {
	metrics *Metrics
	log     *slog.Logger

	latest      *messages.Weights
	subscribers map[string]*subscriber // by PID string
	stopTick    scheduler.CancelFunc
}

type subscriber struct {
	pid      *actor.PID
	inFlight bool
	sentAt   time.Time
	acked    weightsKey
}

// resendAfter is how long the broadcaster waits for an ack before it sends the
// newest weights again.
const resendAfter = 2 * time.Second

type broadcasterTick struct{}

func newBroadcaster(m *Metrics, log *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &broadcaster{metrics: m, log: log.With("role", "broadcaster"), subscribers: map[string]*subscriber{}}
	}
}

func (b *broadcaster) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		b.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(resendAfter/2, resendAfter/2, ctx.Self(), &broadcasterTick{})
	case *actor.Stopping:
		b.stopTick()
	case *messages.Weights:
		if b.latest != nil && !keyOf(msg).newerThan(keyOf(b.latest)) {
			return
		}
		b.latest = msg
		for _, s := range b.subscribers {
			if !s.inFlight {
				b.send(ctx, s)
			}
		}
	case *messages.SubscribeWeights:
		p := pid(msg.GetRunner())
		if p == nil {
			return
		}
		s, ok := b.subscribers[p.String()]
		if !ok {
			s = &subscriber{pid: p}
			b.subscribers[p.String()] = s
			ctx.Watch(p)
		}
		// A (re)subscribing runner has no weights in flight from us.
		s.inFlight = false
		s.acked = weightsKey{}
		b.send(ctx, s)
	case *messages.WeightsAck:
		p := pid(msg.GetRunner())
		if p == nil {
			return
		}
		s, ok := b.subscribers[p.String()]
		if !ok {
			return
		}
		s.inFlight = false
		if k := (weightsKey{term: msg.GetTerm(), version: msg.GetVersion()}); k.newerThan(s.acked) {
			s.acked = k
		}
		b.send(ctx, s)
	case *actor.Terminated:
		delete(b.subscribers, msg.GetWho().String())
	case *broadcasterTick:
		for _, s := range b.subscribers {
			if s.inFlight && time.Since(s.sentAt) > resendAfter {
				s.inFlight = false
				b.send(ctx, s)
			}
		}
	}
}

// send gives s the newest weights if it does not have them yet.
func (b *broadcaster) send(ctx actor.Context, s *subscriber) {
	if b.latest == nil || s.inFlight || !keyOf(b.latest).newerThan(s.acked) {
		return
	}
	s.inFlight = true
	s.sentAt = time.Now()
	ctx.Send(s.pid, b.latest)
}
