package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// Outbound is what the runner's helpers need of its actor context: the
// runner's own PID and a way to send. actor.Context has both; tests use a
// recorder.
type Outbound interface {
	Self() *actor.PID
	Send(pid *actor.PID, message any)
}

// ExperienceSender is the runner's way to the replay: the outbox of full
// batches, the credit window the replay grants, packing for a replay on
// another host, and noticing that the replay changed or that the link to it
// broke (whatever was in flight then never earns its credit, so the window
// is restored instead of waited for). A plain struct owned by the runner
// actor: it is called from the runner's Receive only.
type ExperienceSender struct {
	cfg     Config
	dir     Directory
	metrics *Metrics
	log     *slog.Logger
	stream  *ExperienceStream // seq and the counters: they outlive the actor

	credits        int // transitions the replay still accepts from us (sent, not yet credited back = window − credits)
	lastCredit     time.Time
	outbox         []*messages.ExperienceBatch // built, waiting for credit or a replay
	outboxN        int                         // transitions in the outbox
	replayKey      replayKey                   // the replay we send to, to notice a change
	replayLocal    bool                        // the replay is in this process: nothing sent to it can be lost
	linkRestoredAt time.Time                   // the last credit window restored for a lost link
	// Credits for batches up to this seq were written off (the window was
	// restored without them); if they come after all, they are ignored.
	writtenOff uint64
}

// ExperienceStream is one stream's identity and counters, kept apart from
// the sender because they outlive it: a runner actor restarted by its
// supervisor goes on with the same stream, so the replay's gap detection
// (ExperienceBatch.sent_before) and the run's totals stay exact.
type ExperienceStream struct {
	Incarnation uint64 // random per process: a new process is a new stream
	Seq         uint64 // of the last batch sent
	Sent        uint64 // transitions sent
	Dropped     uint64 // transitions dropped (outbox overflow, packing failed)
}

// NewExperienceSender starts with a full window. Credits for batches of a
// predecessor (a restarted actor that shares the stream) are not ours: they
// are written off.
func NewExperienceSender(cfg Config, dir Directory, m *Metrics, log *slog.Logger, stream *ExperienceStream) *ExperienceSender {
	return &ExperienceSender{cfg: cfg, dir: dir, metrics: m, log: log, stream: stream,
		credits: cfg.CreditWindow, writtenOff: stream.Seq, lastCredit: time.Now()}
}

// HasRoom says whether the runner may build more experience: always when
// the oldest of a full outbox is dropped, else while the outbox has room.
func (s *ExperienceSender) HasRoom() bool {
	return s.cfg.DropWhenFull || s.outboxN < s.cfg.OutboxLimit
}

// Credit takes the replay's Credit, and says whether it counted: credits
// for written-off batches do not.
func (s *ExperienceSender) Credit(c *messages.Credit) bool {
	if c.GetSeq() <= s.writtenOff {
		return false // its batch was written off when the window was restored
	}
	s.credits += int(c.GetTransitions())
	s.lastCredit = time.Now()
	return true
}

// Enqueue puts a full batch in the outbox, dropping (and counting) the
// oldest batches if the outbox overflows in drop mode.
func (s *ExperienceSender) Enqueue(b *messages.ExperienceBatch) {
	s.outbox = append(s.outbox, b)
	s.outboxN += int(b.Count)
	for s.cfg.DropWhenFull && s.outboxN > s.cfg.OutboxLimit && len(s.outbox) > 1 {
		n := s.outbox[0].Count
		s.outbox[0] = nil
		s.outbox = s.outbox[1:]
		s.outboxN -= int(n)
		s.stream.Dropped += uint64(n)
		s.metrics.ExperienceDropped.Add(float64(n))
	}
}

// TrySend hands outbox batches to the replay while there is credit, each
// stamped with its sequence, the stream's position and weightsVersion (the
// weights the runner acts on). A new replay (another address, or the first
// one) starts with a full window; what the old one never credited is
// counted as lost in flight.
func (s *ExperienceSender) TrySend(ctx Outbound, weightsVersion uint64) {
	replay := s.dir.Replay()
	if replay == nil {
		return
	}
	// Compared field by field: formatting the PID (its String) on every
	// send was ~5% of a runner's CPU.
	key := replayKey{address: replay.Address, id: replay.Id}
	if inc, ok := s.dir.(ReplayIncarnations); ok {
		key.incarnation = inc.ReplayIncarnation()
	}
	if key != s.replayKey {
		if s.replayKey != (replayKey{}) {
			s.log.Warn("replay changed: credit window restored", "from", s.replayKey, "to", key, "uncredited", s.cfg.CreditWindow-s.credits)
			s.restoreWindow()
		}
		s.replayKey = key
	}
	self := ctx.Self()
	s.replayLocal = replay.Address == self.Address
	a := s.stream
	for len(s.outbox) > 0 && s.credits > 0 {
		b := s.outbox[0]
		s.outbox[0] = nil
		s.outbox = s.outbox[1:]
		n := int(b.Count)
		s.outboxN -= n
		s.credits -= n
		b.SentBefore, b.RunnerIncarnation = a.Sent, a.Incarnation
		a.Sent += uint64(n)
		a.Seq++
		b.Seq = a.Seq
		b.WeightsVersion = weightsVersion
		b.ReplyTo = RefOf(self)
		if replay.Address == self.Address {
			ctx.Send(replay, b)
			continue
		}
		// Another host: pack (frames, zstd, optional float16) and count bytes.
		p, err := wire.PackExperience(b, wire.Options{Frames: true, Float16: s.cfg.WireFloat16, Zstd: true})
		if err != nil {
			s.log.Error("experience not packed: dropped", "err", err, "transitions", n)
			a.Dropped += uint64(n)
			s.metrics.ExperienceDropped.Add(float64(n))
			s.credits += n // never sent, so no credit will come back for it
			a.Sent -= uint64(n)
			a.Seq--
			continue
		}
		s.metrics.WireBytes.WithLabelValues("experience", "sent").Add(float64(proto.Size(p)))
		ctx.Send(replay, p)
	}
}

// RecoverCredit restores the credit window when credit has been missing for
// CreditTimeout: delivery between hosts is at-most-once, so a Credit (or the
// batch it answers) can be lost, and waiting for it would stall forever.
// Whether the batches themselves were lost only the replay can tell: it
// counts the gap exactly from sent_before.
//
// Only for a replay on another host: in-process delivery never loses a
// message, and a credit held back that long only means the learner is slow
// (a loaded machine); restoring the window then would overrun the
// sample:insert ratio the replay is holding the runner to.
func (s *ExperienceSender) RecoverCredit() {
	if s.replayLocal || s.credits > 0 || s.outboxN == 0 || time.Since(s.lastCredit) < s.cfg.CreditTimeout {
		return
	}
	s.log.Warn("no credit from the replay: window restored", "waited", time.Since(s.lastCredit), "uncredited", s.cfg.CreditWindow-s.credits)
	s.restoreWindow()
}

// LinkLost acts on a broken stream to address (see runner.onLinkLost): if it
// was the stream to a replay on another host with credits due, they are
// written off and the window restored, at most once per CreditTimeout. It
// says whether it restored the window.
func (s *ExperienceSender) LinkLost(address string) bool {
	now := time.Now()
	rp := s.dir.Replay()
	if rp == nil || rp.Address != address || s.replayLocal || s.credits >= s.cfg.CreditWindow ||
		now.Sub(s.linkRestoredAt) < s.cfg.CreditTimeout {
		return false
	}
	s.log.Info("link to the replay lost: credits due written off", "uncredited", s.cfg.CreditWindow-s.credits)
	s.linkRestoredAt = now
	s.restoreWindow()
	return true
}

// replayKey tells replays apart: a PID, and the incarnation of the process
// behind it where the Directory knows it (ReplayIncarnations).
type replayKey struct {
	address, id string
	incarnation uint64
}

func (k replayKey) String() string { return fmt.Sprintf("%s/%s#%d", k.address, k.id, k.incarnation) }

// Discard empties the outbox, for an owner that is being replaced, and
// says how many transitions it held (never sent: the owner counts them
// dropped).
func (s *ExperienceSender) Discard() int {
	n := s.outboxN
	clear(s.outbox)
	s.outbox, s.outboxN = s.outbox[:0], 0
	return n
}

// restoreWindow gives the runner a full credit window and writes off the
// credits still due for the batches sent so far.
func (s *ExperienceSender) restoreWindow() {
	s.credits = s.cfg.CreditWindow
	s.writtenOff = s.stream.Seq
	s.lastCredit = time.Now()
}
