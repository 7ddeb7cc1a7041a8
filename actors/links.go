package actors

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages/wire"
)

// Per-runner link accounting, kept where the bytes are counted: the
// broadcaster counts the weights it sends each runner (and the version the
// runner has whole, its lag), the replay the experience it receives from
// each. Each keeps a small rate meter over the last ~10 s; every second
// they publish the figures into the runner's RunnerStatus (live or
// departed) on this node, so that /status shows them with the runner. A
// runner the stats here do not know gets no entry from the link books
// (Links has them all).

// LinkStatus is one runner's link as this node counts it.
type LinkStatus struct {
	WeightsBytesSent        uint64  `json:"weights_bytes_sent"`
	WeightsBytesPerS        float64 `json:"weights_bytes_per_s"` // over the last ~10 s
	WeightsChunksResent     uint64  `json:"weights_chunks_resent"`
	ExperienceBytesReceived uint64  `json:"experience_bytes_received"`
	ExperienceBytesPerS     float64 `json:"experience_bytes_per_s"` // over the last ~10 s
	// The weights the runner has whole (acknowledged), and how far behind
	// the newest published they are: in publications and in seconds since
	// the oldest version it lacks was published (0 when it has the newest).
	WeightsAcked           wire.Version `json:"weights_acked"`
	WeightsLagPublications uint64       `json:"weights_lag_publications"`
	WeightsLagSeconds      float64      `json:"weights_lag_seconds"`
	weightsKnown           bool         // a broadcaster here serves the runner
}

// linkBook holds the links of one node, by runner name (at most
// MaxRunners: names beyond are not booked).
type linkBook struct {
	mu    sync.Mutex
	links map[string]*runnerLink
}

type runnerLink struct {
	LinkStatus
	weights, experience rateMeter
}

// link is name's link, nil when the book is full; call with mu held.
func (b *linkBook) link(name string) *runnerLink {
	if l, ok := b.links[name]; ok {
		return l
	}
	if b.links == nil {
		b.links = map[string]*runnerLink{}
	}
	if len(b.links) >= MaxRunners {
		return nil
	}
	l := &runnerLink{}
	b.links[name] = l
	return l
}

func (b *linkBook) with(name string, f func(l *runnerLink)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.link(name); l != nil {
		f(l)
	}
}

// linkWeightsSent counts n bytes of weights sent to runner at now.
func (m *Metrics) linkWeightsSent(runner string, n int, now time.Time) {
	m.links.with(runner, func(l *runnerLink) {
		l.WeightsBytesSent += uint64(n)
		l.weights.add(now, uint64(n))
	})
}

// linkResent counts chunks sent to runner again (no ack came).
func (m *Metrics) linkResent(runner string, chunks int) {
	m.links.with(runner, func(l *runnerLink) { l.WeightsChunksResent += uint64(chunks) })
}

// linkExperienceReceived counts n bytes of experience received from runner.
func (m *Metrics) linkExperienceReceived(runner string, n int, now time.Time) {
	m.links.with(runner, func(l *runnerLink) {
		l.ExperienceBytesReceived += uint64(n)
		l.experience.add(now, uint64(n))
	})
}

// linkWeights records the weights runner has whole and its lag.
func (m *Metrics) linkWeights(runner string, acked wire.Version, lagPublications uint64, lagSeconds float64) {
	m.links.with(runner, func(l *runnerLink) {
		l.WeightsAcked, l.WeightsLagPublications, l.WeightsLagSeconds, l.weightsKnown = acked, lagPublications, lagSeconds, true
	})
}

// Links is every runner link this node counts, with its rates as of now.
func (m *Metrics) Links() map[string]LinkStatus {
	return m.links.snapshot(time.Now())
}

func (b *linkBook) snapshot(now time.Time) map[string]LinkStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]LinkStatus, len(b.links))
	for name, l := range b.links {
		st := l.LinkStatus
		st.WeightsBytesPerS, st.ExperienceBytesPerS = l.weights.rate(now), l.experience.rate(now)
		out[name] = st
	}
	return out
}

// publishLinks writes the links' figures as of now into the status of the
// runners this node's books know (live or departed).
func (m *Metrics) publishLinks(now time.Time) {
	links := m.links.snapshot(now)
	if len(links) == 0 {
		return
	}
	m.update(func(s *RunStatus) {
		for name, l := range links {
			if r, ok := s.Runners[name]; ok {
				l.into(&r)
				s.Runners[name] = r
			} else if d, ok := s.Departed[name]; ok {
				l.into(&d.RunnerStatus)
				s.Departed[name] = d
			}
		}
	})
}

// into writes the link's figures into a runner's status: the weights' only
// where a broadcaster here serves the runner (on a runner's own node the
// lag is the runner's view, not ours).
func (l LinkStatus) into(r *RunnerStatus) {
	r.WeightsBytesSent, r.WeightsBytesPerS = l.WeightsBytesSent, l.WeightsBytesPerS
	r.ExperienceBytesReceived, r.ExperienceBytesPerS = l.ExperienceBytesReceived, l.ExperienceBytesPerS
	if l.weightsKnown {
		r.WeightsAckedTerm, r.WeightsAckedPublication = SplitVersion(l.WeightsAcked.Version)
		r.WeightsLagPublications, r.WeightsLagSeconds = l.WeightsLagPublications, l.WeightsLagSeconds
	}
}

// meterSeconds is the window of a rate meter.
const meterSeconds = 10

// rateMeter is bytes per second over the last meterSeconds: a bucket per
// second of the clock, the current one filling.
type rateMeter struct {
	first time.Time // the first bytes: a younger meter divides by its age
	sec   [meterSeconds]int64
	bytes [meterSeconds]uint64
}

func (r *rateMeter) add(now time.Time, n uint64) {
	if r.first.IsZero() {
		r.first = now
	}
	s := now.Unix()
	i := int(s % meterSeconds)
	if r.sec[i] != s {
		r.sec[i], r.bytes[i] = s, 0
	}
	r.bytes[i] += n
}

// rate is the bytes of the window's buckets (the last meterSeconds−1 whole
// seconds and the current one) over the time they span.
func (r *rateMeter) rate(now time.Time) float64 {
	if r.first.IsZero() {
		return 0
	}
	s := now.Unix()
	var sum uint64
	for i := range r.sec {
		if r.sec[i] > s-meterSeconds && r.sec[i] <= s {
			sum += r.bytes[i]
		}
	}
	from := time.Unix(s-meterSeconds+1, 0)
	if r.first.After(from) {
		from = r.first
	}
	span := max(now.Sub(from), time.Second) // no rate from a blink
	return float64(sum) / span.Seconds()
}

// maxLinkName bounds a runner name a subscription may give.
const maxLinkName = 256

// validLinkName says whether a runner name from the wire may name a link:
// short, valid UTF-8, printable, no spaces at its ends (it shows in /status
// and logs).
func validLinkName(s string) bool {
	if s == "" || len(s) > maxLinkName || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	r0, _ := utf8.DecodeRuneInString(s)
	r1, _ := utf8.DecodeLastRuneInString(s)
	return !unicode.IsSpace(r0) && !unicode.IsSpace(r1)
}

// pidLinkName names the link of a runner that gave no usable name: its
// address and actor id when those make a usable name, else a digest of
// them (they came from the wire too).
func pidLinkName(p *actor.PID) string {
	if name := p.Address + "/" + p.Id; validLinkName(name) {
		return name
	}
	h := sha256.Sum256([]byte(p.Address + "\x00" + p.Id))
	return "pid-" + hex.EncodeToString(h[:8])
}
