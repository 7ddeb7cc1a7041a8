package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// sendRecorder stands in for the runner's actor context: it records what
// the sender and the weights client send.
type sendRecorder struct {
	self *actor.PID
	sent []recordedSend
}

type recordedSend struct {
	to  *actor.PID
	msg any
}

func (r *sendRecorder) Self() *actor.PID            { return r.self }
func (r *sendRecorder) Send(to *actor.PID, msg any) { r.sent = append(r.sent, recordedSend{to, msg}) }

// take returns what was sent since the last call.
func (r *sendRecorder) take() []recordedSend {
	s := r.sent
	r.sent = nil
	return s
}

// roleDirectory is a Directory whose answers a test sets, with the replay's
// incarnation.
type roleDirectory struct {
	replay, broadcaster, stats *actor.PID
	incarnation                uint64
}

func (d *roleDirectory) Replay() *actor.PID        { return d.replay }
func (d *roleDirectory) Broadcaster() *actor.PID   { return d.broadcaster }
func (d *roleDirectory) Stats() *actor.PID         { return d.stats }
func (d *roleDirectory) ReplayIncarnation() uint64 { return d.incarnation }

const (
	runnerHost = "10.0.0.2:8090"
	replayHost = "10.0.0.1:8090"
)

// newTestSender is a sender on runnerHost with a window of 64 transitions,
// an outbox of 96, and a replay on replayHost (remote) or on runnerHost
// (local).
func newTestSender(t *testing.T, remote bool) (*ExperienceSender, *roleDirectory, *sendRecorder) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CreditWindow, cfg.OutboxLimit, cfg.CreditTimeout = 64, 96, time.Second
	host := runnerHost
	if remote {
		host = replayHost
	}
	dir := &roleDirectory{replay: actor.NewPID(host, ReplayName), incarnation: 1}
	acct := &ExperienceStream{Incarnation: 77}
	s := NewExperienceSender(cfg, dir, NewMetrics(), slog.New(slog.DiscardHandler), acct)
	return s, dir, &sendRecorder{self: actor.NewPID(runnerHost, "runner-1")}
}

// sentBatches are the batches among sends, unpacked when they went packed.
func sentBatches(t *testing.T, sends []recordedSend) []*messages.ExperienceBatch {
	t.Helper()
	var out []*messages.ExperienceBatch
	for _, s := range sends {
		switch m := s.msg.(type) {
		case *messages.ExperienceBatch:
			out = append(out, m)
		case *messages.PackedExperience:
			b, err := wire.UnpackExperience(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		default:
			t.Fatalf("sent %T", s.msg)
		}
	}
	return out
}

func TestSenderCreditExhaustedBlocksSending(t *testing.T) {
	s, _, ctx := newTestSender(t, false)
	for i := range 3 {
		s.Enqueue(batchOf(32*i, 32, 4))
	}
	s.TrySend(ctx, 5)
	got := sentBatches(t, ctx.take())
	if len(got) != 2 || s.credits != 0 || s.outboxN != 32 {
		t.Fatalf("sent %d batches, %d credits left, %d transitions waiting; want 2, 0, 32", len(got), s.credits, s.outboxN)
	}
	for i, b := range got {
		if b.Seq != uint64(i+1) || b.SentBefore != uint64(32*i) || b.WeightsVersion != 5 || b.RunnerIncarnation != 77 || b.ReplyTo.GetId() != "runner-1" {
			t.Fatalf("batch %d: seq %d sent_before %d version %d incarnation %d reply_to %v", i, b.Seq, b.SentBefore, b.WeightsVersion, b.RunnerIncarnation, b.ReplyTo)
		}
	}
	s.TrySend(ctx, 5)
	if n := len(ctx.take()); n != 0 {
		t.Fatalf("%d sends without credit", n)
	}
	// A credit for the first batch lets the third go.
	if !s.Credit(&messages.Credit{Seq: 1, Transitions: 32}) {
		t.Fatal("credit refused")
	}
	s.TrySend(ctx, 6)
	got = sentBatches(t, ctx.take())
	if len(got) != 1 || got[0].Seq != 3 || got[0].SentBefore != 64 || got[0].WeightsVersion != 6 || s.outboxN != 0 {
		t.Fatalf("after a credit: %d batches sent (%+v), %d waiting", len(got), got, s.outboxN)
	}
	if s.stream.Sent != 96 || s.stream.Seq != 3 {
		t.Fatalf("accounting: sent %d seq %d, want 96 and 3", s.stream.Sent, s.stream.Seq)
	}
}

func TestSenderOutboxRoom(t *testing.T) {
	s, _, _ := newTestSender(t, false)
	for i := range 3 {
		if !s.HasRoom() {
			t.Fatalf("no room after %d batches of 32 (limit 96)", i)
		}
		s.Enqueue(batchOf(32*i, 32, 4))
	}
	if s.HasRoom() {
		t.Fatal("room in a full outbox")
	}
	// Drop mode: always room, the oldest batches go.
	s, _, ctx := newTestSender(t, false)
	s.cfg.DropWhenFull = true
	for i := range 5 {
		s.Enqueue(batchOf(32*i, 32, 4))
		if !s.HasRoom() {
			t.Fatal("no room in drop mode")
		}
	}
	if s.outboxN != 96 || s.stream.Dropped != 64 || promtest.ToFloat64(s.metrics.ExperienceDropped) != 64 {
		t.Fatalf("drop mode: %d waiting, %d dropped (metric %v); want 96 and 64", s.outboxN, s.stream.Dropped, promtest.ToFloat64(s.metrics.ExperienceDropped))
	}
	s.TrySend(ctx, 0)
	if got := sentBatches(t, ctx.take()); len(got) != 2 || got[0].Observations[0] != 64 {
		t.Fatalf("drop mode sent %d batches starting at %v; want the newest, from 64", len(got), got[0].Observations[0])
	}
}

func TestSenderPacksForAnotherHost(t *testing.T) {
	s, _, ctx := newTestSender(t, true)
	b := batchOf(0, 32, 4)
	s.Enqueue(b)
	s.TrySend(ctx, 9)
	sends := ctx.take()
	if len(sends) != 1 || sends[0].to.Address != replayHost {
		t.Fatalf("sends %+v", sends)
	}
	p, ok := sends[0].msg.(*messages.PackedExperience)
	if !ok {
		t.Fatalf("sent %T to another host, want *PackedExperience", sends[0].msg)
	}
	if p.Codec != uint32(messages.Codec_CODEC_FRAMES|messages.Codec_CODEC_FLOAT16|messages.Codec_CODEC_ZSTD) {
		t.Fatalf("codec %#x", p.Codec)
	}
	got := sentBatches(t, sends)[0]
	if got.Seq != 1 || got.WeightsVersion != 9 || got.Count != 32 || got.Observations[4*31] != 31 {
		t.Fatalf("unpacked batch: seq %d version %d count %d", got.Seq, got.WeightsVersion, got.Count)
	}
	// A batch that does not pack is dropped, and its credit and sequence
	// number are not spent.
	bad := batchOf(32, 16, 4)
	bad.Rewards = bad.Rewards[:3]
	s.Enqueue(bad)
	s.Enqueue(batchOf(48, 16, 4))
	s.TrySend(ctx, 9)
	got2 := sentBatches(t, ctx.take())
	if len(got2) != 1 || got2[0].Seq != 2 || got2[0].SentBefore != 32 || s.credits != 64-32-16 || s.stream.Dropped != 16 {
		t.Fatalf("after a bad batch: %d sent, seq %d, sent_before %d, %d credits, %d dropped", len(got2), got2[0].Seq, got2[0].SentBefore, s.credits, s.stream.Dropped)
	}
}

func TestSenderCreditRestoredOnLinkLost(t *testing.T) {
	s, _, ctx := newTestSender(t, true)
	s.Enqueue(batchOf(0, 32, 4))
	s.Enqueue(batchOf(32, 32, 4))
	s.TrySend(ctx, 0)
	ctx.take()
	if s.LinkLost("10.9.9.9:1") {
		t.Fatal("window restored for another host's link")
	}
	if !s.LinkLost(replayHost) || s.credits != 64 {
		t.Fatalf("link to the replay lost: %d credits, want the window (64)", s.credits)
	}
	// The credits of the batches in flight were written off: if they come
	// after all, they do not count twice.
	if s.Credit(&messages.Credit{Seq: 2, Transitions: 32}) || s.credits != 64 {
		t.Fatalf("written-off credit counted: %d credits", s.credits)
	}
	// At most once per CreditTimeout: a chain of lost-link events restores
	// one window.
	s.Enqueue(batchOf(64, 32, 4))
	s.TrySend(ctx, 0)
	if s.LinkLost(replayHost) || s.credits != 32 {
		t.Fatalf("second lost link within CreditTimeout restored the window: %d credits", s.credits)
	}
	// A later batch's credit counts.
	if !s.Credit(&messages.Credit{Seq: 3, Transitions: 32}) || s.credits != 64 {
		t.Fatalf("credit of a batch sent after the restore: %d credits", s.credits)
	}
}

func TestSenderLocalReplayKeepsItsCredits(t *testing.T) {
	s, _, ctx := newTestSender(t, false)
	s.Enqueue(batchOf(0, 64, 4))
	s.Enqueue(batchOf(64, 32, 4))
	s.TrySend(ctx, 0)
	if s.LinkLost(runnerHost) {
		t.Fatal("window restored for a replay in this process")
	}
	s.lastCredit = time.Now().Add(-time.Hour)
	s.RecoverCredit()
	if s.credits != 0 {
		t.Fatalf("credit timeout restored the window of a local replay (a slow learner): %d credits", s.credits)
	}
}

func TestSenderCreditTimeout(t *testing.T) {
	s, _, ctx := newTestSender(t, true)
	s.Enqueue(batchOf(0, 64, 4))
	s.Enqueue(batchOf(64, 32, 4))
	s.TrySend(ctx, 0)
	s.RecoverCredit()
	if s.credits != 0 {
		t.Fatal("window restored before CreditTimeout")
	}
	s.lastCredit = time.Now().Add(-2 * s.cfg.CreditTimeout)
	s.RecoverCredit()
	s.TrySend(ctx, 0)
	if got := sentBatches(t, ctx.take()); len(got) != 2 || got[1].Seq != 2 || s.writtenOff != 1 {
		t.Fatalf("after CreditTimeout: %d batches sent, written off up to %d", len(got), s.writtenOff)
	}
}

// A credit of nothing (the replay holds the credit back for its rate
// limiter) keeps a remote runner from taking its credit for lost.
func TestSenderHeldCreditIsNotLost(t *testing.T) {
	s, _, ctx := newTestSender(t, true)
	s.Enqueue(batchOf(0, 64, 4))
	s.Enqueue(batchOf(64, 32, 4))
	s.TrySend(ctx, 0)
	s.lastCredit = time.Now().Add(-2 * s.cfg.CreditTimeout)
	if !s.Credit(&messages.Credit{Seq: 1}) {
		t.Fatal("held credit refused")
	}
	s.RecoverCredit()
	if s.credits != 0 || s.writtenOff != 0 {
		t.Fatalf("window restored although the replay holds the credit: %d credits, written off up to %d", s.credits, s.writtenOff)
	}
}

func TestSenderNoticesANewReplay(t *testing.T) {
	s, dir, ctx := newTestSender(t, true)
	s.Enqueue(batchOf(0, 64, 4))
	s.Enqueue(batchOf(64, 32, 4))
	s.TrySend(ctx, 0)
	ctx.take()
	// The same address, a new process: its incarnation tells.
	dir.incarnation = 2
	s.TrySend(ctx, 0)
	if got := sentBatches(t, ctx.take()); len(got) != 1 || s.writtenOff != 1 {
		t.Fatalf("new replay incarnation: %d batches sent, written off up to %d; want 1 and 1", len(got), s.writtenOff)
	}
	// Another address.
	s.Enqueue(batchOf(96, 64, 4))
	dir.replay = actor.NewPID("10.0.0.3:8090", ReplayName)
	s.TrySend(ctx, 0)
	sends := ctx.take()
	if len(sends) != 1 || sends[0].to.Address != "10.0.0.3:8090" || s.writtenOff != 2 {
		t.Fatalf("new replay address: sends %+v, written off up to %d", sends, s.writtenOff)
	}
	// No replay known: nothing is sent, nothing is lost.
	dir.replay = nil
	s.Enqueue(batchOf(160, 8, 4))
	s.credits = 64
	s.TrySend(ctx, 0)
	if n := len(ctx.take()); n != 0 || s.outboxN != 8 {
		t.Fatalf("%d sends without a replay, %d waiting", n, s.outboxN)
	}
}
