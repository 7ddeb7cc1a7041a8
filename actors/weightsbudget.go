package actors

import (
	"math"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/messages/wire"
)

// The weights bandwidth budget (weights_max_rate, weights_min_interval):
// what the broadcaster may send one runner on another host, and when. A
// runner on the broadcaster's node gets the Weights message itself, which
// carries no bytes: the budget never applies to it.

// maxWeightsSilence is the longest the budget may keep a runner waiting on
// purpose, between two chunks (weights_max_rate) or between two versions
// (weights_min_interval). A runner that hears nothing from the broadcaster
// for resubscribeAfter subscribes again, and a subscription starts the
// transfer under way over: the rest is margin for the link's own delays.
const maxWeightsSilence = resubscribeAfter * 3 / 4

// weightsChunkOverhead bounds what a WeightsChunk carries besides its
// payload (versions, indices, sizes: a few varints and tags).
const weightsChunkOverhead = 128

// minWeightsRate is the lowest weights_max_rate (bytes/s) at which a whole
// chunk of chunkBytes goes within maxWeightsSilence.
func minWeightsRate(chunkBytes int) int {
	return int(math.Ceil(float64(chunkBytes+weightsChunkOverhead) / maxWeightsSilence.Seconds()))
}

// linkBudget is the budget of one runner's link. Bytes are paid after they
// are sent: the link's clock nextAt moves on by bytes/rate from when they
// went (never from the past, so an idle link saves up no burst), and
// nothing more is sent before it. Over any window T the bytes sent are then
// at most rate·T plus one chunk (the last one, paid after). A transfer of a
// new version starts no sooner than minInterval after the previous one
// started.
type linkBudget struct {
	rate        float64 // bytes/s; 0: unlimited
	minInterval time.Duration
	nextAt      time.Time // nothing is sent before it
	lastStart   time.Time // the start of the last version's transfer: its first chunk sent
	starting    bool      // a transfer started whose first chunk is not sent yet
}

func newLinkBudget(cfg Config) linkBudget {
	return linkBudget{rate: float64(cfg.WeightsMaxRate), minInterval: cfg.WeightsMinInterval}
}

// startAt is the earliest a new version's transfer may start.
func (l *linkBudget) startAt() time.Time {
	at := l.nextAt
	if l.minInterval > 0 && !l.lastStart.IsZero() {
		if s := l.lastStart.Add(l.minInterval); s.After(at) {
			at = s
		}
	}
	return at
}

// sendAt is the earliest the next chunk may go.
func (l *linkBudget) sendAt() time.Time { return l.nextAt }

// started records that a version's transfer starts: when its first chunk
// goes (paid).
func (l *linkBudget) started() { l.starting = true }

// paid charges n bytes sent at now.
func (l *linkBudget) paid(now time.Time, n int) {
	if l.starting {
		l.lastStart, l.starting = now, false
	}
	if l.rate <= 0 {
		return
	}
	if l.nextAt.Before(now) {
		l.nextAt = now
	}
	l.nextAt = l.nextAt.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
}

// budgetWake wakes the broadcaster when a runner's budget allows its next
// send; seq tells the pending timer's from one it replaced.
type budgetWake struct{ seq uint64 }

// wakeAt makes sure a budgetWake comes by at: one timer for the whole
// broadcaster, set for the earliest time any runner waits for.
func (b *broadcaster) wakeAt(ctx actor.Context, at time.Time) {
	if b.wake != nil && !at.Before(b.wakeTime) {
		return
	}
	if b.wake != nil {
		b.wake()
	}
	b.wakeSeq++
	b.wakeTime = at
	b.wake = scheduler.NewTimerScheduler(ctx).SendOnce(time.Until(at), ctx.Self(), &budgetWake{seq: b.wakeSeq})
}

// woken sends what the budget now allows: to each remote runner its next
// chunks, or the start of the newest version (chosen now, so that a
// version that waited is replaced by any newer one).
func (b *broadcaster) woken(ctx actor.Context, w *budgetWake) {
	if w.seq != b.wakeSeq {
		return // a timer that an earlier one replaced, fired before it was stopped
	}
	b.wake = nil
	for _, s := range b.subscribers {
		if s.remote {
			b.send(ctx, s)
		}
	}
}

// stopWake stops the pending timer, if any.
func (b *broadcaster) stopWake() {
	if b.wake != nil {
		b.wake()
		b.wake = nil
	}
}

// publications remembers when recent weights versions reached the
// broadcaster (in order: it keeps only newer ones), for each runner's lag
// in seconds. Versions every runner has are forgotten; at most
// maxPublicationsKept are kept, after which a lag in seconds is that of the
// oldest kept (a lower bound).
type publications struct {
	list []publication
}

type publication struct {
	v  wire.Version
	at time.Time
}

const maxPublicationsKept = 4096

func (p *publications) add(v wire.Version, at time.Time) {
	p.list = append(p.list, publication{v, at})
	if len(p.list) > 2*maxPublicationsKept {
		p.list = append(p.list[:0:0], p.list[len(p.list)-maxPublicationsKept:]...)
	}
}

// forgetUpTo drops the versions up to v (every runner has them).
func (p *publications) forgetUpTo(v wire.Version) {
	i := sort.Search(len(p.list), func(i int) bool { return p.list[i].v.NewerThan(v) })
	if i > len(p.list)/2 { // in bulk: the copy is paid once per half
		p.list = append(p.list[:0:0], p.list[i:]...)
	}
}

// firstNewer is when the oldest version newer than v was published: since
// then the runner that has v lags.
func (p *publications) firstNewer(v wire.Version) (time.Time, bool) {
	i := sort.Search(len(p.list), func(i int) bool { return p.list[i].v.NewerThan(v) })
	if i == len(p.list) {
		return time.Time{}, false
	}
	return p.list[i].at, true
}

// publicationsBehind is how many publications a runner that has acked is
// behind latest: the difference in count within a term; a runner on an
// older term (or on none) lacks every publication of latest's term.
func publicationsBehind(latest, acked wire.Version) uint64 {
	switch {
	case !latest.NewerThan(acked):
		return 0
	case latest.Term == acked.Term:
		return latest.Version&countBits - acked.Version&countBits
	}
	return latest.Version & countBits
}

// reportLinks hands each runner's weights link (the version it has whole,
// its lag) to the node's metrics, and has them publish every link's rates.
func (b *broadcaster) reportLinks(now time.Time) {
	var latest, oldest wire.Version
	if b.latest != nil {
		latest, oldest = wire.VersionOf(b.latest), wire.VersionOf(b.latest)
	}
	for _, s := range b.subscribers {
		lag, secs := publicationsBehind(latest, s.acked), 0.0
		if lag > 0 {
			if at, ok := b.pubs.firstNewer(s.acked); ok {
				secs = now.Sub(at).Seconds()
			}
		}
		if oldest.NewerThan(s.acked) {
			oldest = s.acked
		}
		b.metrics.linkWeights(s.name, s.acked, lag, secs)
	}
	b.pubs.forgetUpTo(oldest)
	b.metrics.publishLinks(now)
}
