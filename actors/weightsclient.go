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

// weightsClient is the runner's side of the broadcaster: it subscribes (and
// subscribes again when the broadcaster changes, goes silent or its link
// breaks), assembles WeightsChunks from a broadcaster on another host,
// acknowledges every message, and keeps the newest weights by (term,
// version): older ones can arrive late or out of order and are ignored. A
// plain struct owned by the runner actor: it is called from the runner's
// Receive only.
type weightsClient struct {
	dir       Directory
	metrics   *Metrics
	log       *slog.Logger
	numParams int // of the runner's network: chunks announcing another size are refused unread
	// apply loads weights newer than the acting ones into the runner's
	// network; on an error they are refused and the acting ones stay.
	apply func(*messages.Weights) error

	acting       weightsKey // of the weights acting; zero before the first arrive
	assembler    wire.WeightsAssembler
	subscribedTo string // broadcaster PID we subscribed to
	heardFrom    time.Time
	subscribedAt time.Time
	awaiting     bool             // subscribed, nothing heard since
	refusedLog   *lograte.Limiter // refused weights chunks, logged once per 10 s
}

func newWeightsClient(dir Directory, m *Metrics, log *slog.Logger, numParams int, apply func(*messages.Weights) error) *weightsClient {
	return &weightsClient{dir: dir, metrics: m, log: log, numParams: numParams, apply: apply, refusedLog: lograte.New(10 * time.Second)}
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

// subscribe sends SubscribeWeights when it is due (above).
func (c *weightsClient) subscribe(ctx outbound) {
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
	ctx.Send(b, &messages.SubscribeWeights{Runner: RefOf(ctx.Self())})
}

// linkLost subscribes again at once when the broken stream was the one to
// the broadcaster (it may have carried the subscription), unless it just
// subscribed.
func (c *weightsClient) linkLost(ctx outbound, address string) {
	if b := c.dir.Broadcaster(); b != nil && b.Address == address && time.Since(c.subscribedAt) >= resubscribeRetry/4 {
		c.subscribedAt, c.awaiting = time.Time{}, true
		c.subscribe(ctx)
	}
}

// chunk takes one WeightsChunk: assembled with the others of its version,
// the whole weights are taken when it was the last one. Every chunk is
// acknowledged with the version acting, so that the broadcaster sends the
// next one (and deltas against what the runner has).
func (c *weightsClient) chunk(ctx outbound, msg *messages.WeightsChunk) {
	c.heardFrom, c.awaiting = time.Now(), false
	c.metrics.WireBytes.WithLabelValues("weights", "received").Add(float64(proto.Size(msg)))
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
			ActingVersion: c.acting.version, ActingTerm: c.acting.term})
	}
}

// whole takes Weights from a broadcaster in this process and acknowledges
// them with the version acting.
func (c *weightsClient) whole(ctx outbound, w *messages.Weights) {
	c.heardFrom, c.awaiting = time.Now(), false
	c.take(w)
	if b := c.dir.Broadcaster(); b != nil {
		ctx.Send(b, &messages.WeightsAck{Runner: RefOf(ctx.Self()), Version: c.acting.version, Term: c.acting.term})
	}
}

// take applies weights that are newer than the ones acting, and ignores
// older ones (they can arrive late or out of order).
func (c *weightsClient) take(w *messages.Weights) {
	k := keyOf(w)
	if !k.newerThan(c.acting) {
		return
	}
	if err := c.apply(w); err != nil {
		c.log.Error("weights refused", "err", err, "version", w.GetVersion())
		return
	}
	c.acting = k
	c.metrics.setWeightsVersion(k.version) // on a runner node: the version acted on
}
