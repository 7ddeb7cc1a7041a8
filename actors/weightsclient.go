package actors

import (
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors/lograte"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// WeightsClient is the runner's side of the broadcaster: it subscribes (and
// subscribes again when the broadcaster changes, goes silent or its link
// breaks), assembles WeightsChunks from a broadcaster on another host,
// acknowledges every message, and keeps the newest weights by (term,
// version): older ones can arrive late or out of order and are ignored. A
// plain struct owned by one actor (the runner, or the benchmark harness's
// stand-in for it): call it from that actor's Receive only.
type WeightsClient struct {
	dir       Directory
	metrics   *Metrics
	log       *slog.Logger
	numParams int // of the runner's network: chunks announcing another size are refused unread
	// apply loads weights newer than the acting ones into the runner's
	// network; on an error they are refused and the acting ones stay.
	apply func(*messages.Weights) error
	// Name is what the subscriber goes by in the run's stats ("B/runner-0"),
	// given to the broadcaster for its link books; empty: its PID's.
	Name string

	acting wire.Version // of the weights acting; zero before the first arrive
	// newest is the newest version heard of (a chunk of it came), and
	// newerSince when it first was newer than the acting one: the lag.
	newest       wire.Version
	newerSince   time.Time
	takenAt      time.Time // when the acting weights were taken
	assembler    wire.WeightsAssembler
	subscribedTo string // broadcaster PID we subscribed to
	heardFrom    time.Time
	subscribedAt time.Time
	awaiting     bool             // subscribed, nothing heard since
	refusedLog   *lograte.Limiter // refused weights chunks, logged once per 10 s
}

func NewWeightsClient(dir Directory, m *Metrics, log *slog.Logger, numParams int, apply func(*messages.Weights) error) *WeightsClient {
	return &WeightsClient{dir: dir, metrics: m, log: log, numParams: numParams, apply: apply, refusedLog: lograte.New(10 * time.Second)}
}

// A runner subscribes again when the broadcaster changes, when weights have
// not come within resubscribeRetry of subscribing (the subscription or the
// broadcaster's state was lost: a cut link, a restart), or when the
// broadcaster has been silent for resubscribeAfter. Subscribing is
// idempotent; the broadcaster answers with the newest weights.
const (
	resubscribeRetry = 2 * time.Second
	resubscribeAfter = 8 * time.Second
)

// Subscribe sends SubscribeWeights when it is due (above).
func (c *WeightsClient) Subscribe(ctx Outbound) {
	b := c.dir.Broadcaster()
	if b == nil {
		return
	}
	now := time.Now()
	due := now.Sub(c.subscribedAt) >= resubscribeRetry &&
		(c.awaiting || now.Sub(c.heardFrom) >= resubscribeAfter)
	if b.String() == c.subscribedTo && !due {
		return
	}
	c.subscribedTo, c.subscribedAt, c.awaiting = b.String(), now, true
	sub := &messages.SubscribeWeights{Runner: RefOf(ctx.Self()), RunnerName: c.Name}
	if last := c.assembler.Last(); last != nil {
		sub.BaseVersion, sub.BaseTerm = last.GetVersion(), last.GetTerm()
	}
	ctx.Send(b, sub)
}

// LinkLost subscribes again at once when the broken stream was the one to
// the broadcaster (it may have carried the subscription), unless it
// subscribed less than resubscribeRetry/4 ago: then the subscription may
// have been lost with the link, so it counts as unanswered and is sent
// again resubscribeRetry after the last one, not after resubscribeAfter of
// silence.
func (c *WeightsClient) LinkLost(ctx Outbound, address string) {
	b := c.dir.Broadcaster()
	if b == nil || b.Address != address {
		return
	}
	c.awaiting = true
	if time.Since(c.subscribedAt) >= resubscribeRetry/4 {
		c.subscribedAt = time.Time{}
		c.Subscribe(ctx)
	}
}

// Acting is the version of the weights acting: zero before the first are
// taken.
func (c *WeightsClient) Acting() wire.Version { return c.acting }

// Chunk takes one WeightsChunk: assembled with the others of its version,
// the whole weights are taken when it was the last one. Every chunk is
// acknowledged with the version acting, so that the broadcaster sends the
// next one (and deltas against what the runner has).
func (c *WeightsClient) Chunk(ctx Outbound, msg *messages.WeightsChunk) {
	c.heardFrom, c.awaiting = time.Now(), false
	c.metrics.WireBytes.WithLabelValues("weights", "received").Add(float64(proto.Size(msg)))
	c.heard(wire.Version{Version: msg.GetVersion(), Term: msg.GetTerm()}, c.heardFrom)
	var w *messages.Weights
	var err error
	if int(msg.GetNumParams()) == c.numParams {
		// Checked before the assembler allocates for the claimed size.
		w, err = c.assembler.Add(msg)
	} else {
		err = fmt.Errorf("%d params, this runner's network has %d", msg.GetNumParams(), c.numParams)
	}
	if err != nil {
		if ok, held := c.refusedLog.Allow("chunk", time.Now()); ok {
			c.log.Warn("weights chunk refused", "err", err, "version", msg.GetVersion(), "index", msg.GetIndex(), "refused_since_last_line", held)
		}
	} else if w != nil {
		c.take(w)
	}
	if b := c.dir.Broadcaster(); b != nil {
		ctx.Send(b, &messages.WeightsChunkAck{Runner: RefOf(ctx.Self()), Version: msg.GetVersion(), Term: msg.GetTerm(), Index: msg.GetIndex(),
			ActingVersion: c.acting.Version, ActingTerm: c.acting.Term})
	}
}

// Whole takes Weights from a broadcaster in this process and acknowledges
// them with the version acting.
func (c *WeightsClient) Whole(ctx Outbound, w *messages.Weights) {
	c.heardFrom, c.awaiting = time.Now(), false
	c.take(w)
	if b := c.dir.Broadcaster(); b != nil {
		ctx.Send(b, &messages.WeightsAck{Runner: RefOf(ctx.Self()), Version: c.acting.Version, Term: c.acting.Term})
	}
}

// take applies weights that are newer than the ones acting, and ignores
// older ones (they can arrive late or out of order).
func (c *WeightsClient) take(w *messages.Weights) {
	k := wire.VersionOf(w)
	if !k.NewerThan(c.acting) {
		return
	}
	if err := c.apply(w); err != nil {
		c.log.Error("weights refused", "err", err, "version", w.GetVersion())
		return
	}
	c.acting, c.takenAt = k, time.Now()
	c.heard(k, c.takenAt)
	c.metrics.setWeightsVersion(k.Version) // on a runner node: the version acted on
}

// heard notes that version v exists (a chunk of it came, or it was taken).
func (c *WeightsClient) heard(v wire.Version, now time.Time) {
	if v.NewerThan(c.newest) {
		c.newest = v
	}
	switch {
	case !c.newest.NewerThan(c.acting):
		c.newerSince = time.Time{}
	case c.newerSince.IsZero():
		c.newerSince = now
	}
}

// Age is the seconds since the acting weights were taken (0 before the
// first): what a runner on a weights budget can see of its staleness on its
// own, as it hears of a newer version only when that version comes.
func (c *WeightsClient) Age(now time.Time) float64 { return sinceOrZero(c.takenAt, now) }

// Lag is how far the acting weights are behind the newest this runner has
// heard of: in publications (0 across learner terms, which do not
// compare) and in seconds since it first heard of a newer one.
func (c *WeightsClient) Lag(now time.Time) (publications uint64, seconds float64) {
	pubs, _ := WeightsLag(c.newest.Version, c.acting.Version)
	return pubs, sinceOrZero(c.newerSince, now)
}
