package actors

import (
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

const broadcasterHost = "10.0.0.1:8090"

// weightsClientUnderTest is a weights client of a 1000-parameter network on
// runnerHost, with a broadcaster on broadcasterHost, that records the
// weights it applies and refuses them while refuse is set.
type weightsClientUnderTest struct {
	*WeightsClient
	dir     *roleDirectory
	ctx     *sendRecorder
	applied []wire.Version
	refuse  bool
}

const testClientParams = 1000

func newTestWeightsClient(t *testing.T) *weightsClientUnderTest {
	t.Helper()
	c := &weightsClientUnderTest{
		dir: &roleDirectory{broadcaster: actor.NewPID(broadcasterHost, BroadcasterName)},
		ctx: &sendRecorder{self: actor.NewPID(runnerHost, "runner-1")},
	}
	c.WeightsClient = NewWeightsClient(c.dir, NewMetrics(), slog.New(slog.DiscardHandler), testClientParams, func(w *messages.Weights) error {
		if c.refuse {
			return errors.New("refused by the test")
		}
		if len(w.Params) != testClientParams {
			t.Fatalf("applied %d params", len(w.Params))
		}
		c.applied = append(c.applied, wire.VersionOf(w))
		return nil
	})
	return c
}

// testWeightsOf are weights of (term, version) whose params say which.
func testWeightsOf(term, version uint64) *messages.Weights {
	p := make([]float32, testClientParams)
	for i := range p {
		p[i] = float32(term*1000+version) + float32(i)/1024
	}
	return &messages.Weights{Term: term, Version: version, Params: p}
}

// acked checks that the client sent exactly one ack, to the broadcaster,
// naming acting as the version it acts on, and returns it.
func (c *weightsClientUnderTest) acked(t *testing.T, acting wire.Version) any {
	t.Helper()
	sends := c.ctx.take()
	if len(sends) != 1 || sends[0].to.Address != broadcasterHost {
		t.Fatalf("sends %+v, want one ack to the broadcaster", sends)
	}
	var got wire.Version
	switch m := sends[0].msg.(type) {
	case *messages.WeightsAck:
		got = wire.Version{Term: m.Term, Version: m.Version}
	case *messages.WeightsChunkAck:
		got = wire.Version{Term: m.ActingTerm, Version: m.ActingVersion}
	default:
		t.Fatalf("sent %T, want an ack", m)
	}
	if got != acting {
		t.Fatalf("ack names %v as acting, want %v", got, acting)
	}
	return sends[0].msg
}

func TestWeightsClientKeepsTheNewest(t *testing.T) {
	c := newTestWeightsClient(t)
	for _, step := range []struct {
		term, version uint64
		acting        wire.Version // after the message
	}{
		{1, 2, wire.Version{Term: 1, Version: 2}},
		{1, 1, wire.Version{Term: 1, Version: 2}}, // older: late or out of order
		{1, 2, wire.Version{Term: 1, Version: 2}}, // the same again
		{1, 3, wire.Version{Term: 1, Version: 3}},
		{2, 1, wire.Version{Term: 2, Version: 1}}, // a new learner term wins over a higher version
		{1, 9, wire.Version{Term: 2, Version: 1}},
	} {
		c.Whole(c.ctx, testWeightsOf(step.term, step.version))
		c.acked(t, step.acting)
		if c.acting != step.acting {
			t.Fatalf("after %d/%d: acting %v, want %v", step.term, step.version, c.acting, step.acting)
		}
	}
	if want := []wire.Version{{Term: 1, Version: 2}, {Term: 1, Version: 3}, {Term: 2, Version: 1}}; len(c.applied) != len(want) || c.applied[0] != want[0] || c.applied[1] != want[1] || c.applied[2] != want[2] {
		t.Fatalf("applied %v, want %v", c.applied, want)
	}
}

func TestWeightsClientApplyRefused(t *testing.T) {
	c := newTestWeightsClient(t)
	c.refuse = true
	c.Whole(c.ctx, testWeightsOf(1, 1))
	c.acked(t, wire.Version{})
	if c.acting != (wire.Version{}) {
		t.Fatalf("acting %v after the network refused the weights", c.acting)
	}
	c.refuse = false
	c.Whole(c.ctx, testWeightsOf(1, 1))
	c.acked(t, wire.Version{Term: 1, Version: 1})
}

// chunksOf packs w into 4 chunks.
func chunksOf(t *testing.T, w *messages.Weights) []*messages.WeightsChunk {
	t.Helper()
	chunks, err := wire.PackWeights(w, nil, testClientParams, true)
	if err != nil || len(chunks) != 4 {
		t.Fatalf("%d chunks, %v", len(chunks), err)
	}
	return chunks
}

func TestWeightsClientAssemblesChunks(t *testing.T) {
	c := newTestWeightsClient(t)
	v5, v6, v7 := chunksOf(t, testWeightsOf(1, 5)), chunksOf(t, testWeightsOf(1, 6)), chunksOf(t, testWeightsOf(1, 7))

	// Out of order within a version; every chunk is acknowledged by index.
	for k, i := range []int{2, 0, 3, 1} {
		c.Chunk(c.ctx, v5[i])
		acting := wire.Version{}
		if k == 3 {
			acting = wire.Version{Term: 1, Version: 5}
		}
		if ack := c.acked(t, acting).(*messages.WeightsChunkAck); ack.Index != uint32(i) || ack.Version != 5 {
			t.Fatalf("ack of chunk %d: %+v", i, ack)
		}
	}
	if len(c.applied) != 1 || c.applied[0] != (wire.Version{Term: 1, Version: 5}) {
		t.Fatalf("applied %v, want 1/5 once", c.applied)
	}
	if c.WeightsClient.assembler.Last().Params[999] != testWeightsOf(1, 5).Params[999] {
		t.Fatal("assembled params differ")
	}

	// A newer version started, an older one arriving meanwhile: the older
	// is ignored, the newest completes.
	c.Chunk(c.ctx, v7[0])
	c.acked(t, wire.Version{Term: 1, Version: 5})
	for _, ch := range v6 {
		c.Chunk(c.ctx, ch)
		c.acked(t, wire.Version{Term: 1, Version: 5})
	}
	for _, ch := range v7[1:] {
		c.Chunk(c.ctx, ch)
	}
	c.ctx.take()
	if c.acting != (wire.Version{Term: 1, Version: 7}) || len(c.applied) != 2 {
		t.Fatalf("acting %v, applied %v; want 1/7 after 1/5", c.acting, c.applied)
	}

	// Stale chunks after the newest completed: ignored.
	for _, ch := range append(v5, v6...) {
		c.Chunk(c.ctx, ch)
		c.acked(t, wire.Version{Term: 1, Version: 7})
	}
	if len(c.applied) != 2 {
		t.Fatalf("stale chunks applied: %v", c.applied)
	}
}

func TestWeightsClientChunksOlderThanActing(t *testing.T) {
	// Whole weights from a broadcaster in this process made 1/8 act; chunks
	// of 1/7 that complete afterwards are older and must not replace them.
	c := newTestWeightsClient(t)
	v7 := chunksOf(t, testWeightsOf(1, 7))
	c.Chunk(c.ctx, v7[0])
	c.Whole(c.ctx, testWeightsOf(1, 8))
	for _, ch := range v7[1:] {
		c.Chunk(c.ctx, ch)
	}
	if c.acting != (wire.Version{Term: 1, Version: 8}) || len(c.applied) != 1 {
		t.Fatalf("acting %v, applied %v; want 1/8 only", c.acting, c.applied)
	}
}

func TestWeightsClientRefusesChunksOfAnotherNetwork(t *testing.T) {
	c := newTestWeightsClient(t)
	ch := &messages.WeightsChunk{Term: 1, Version: 1, Total: 1, NumParams: math.MaxUint32, SegmentParams: math.MaxUint32}
	c.Chunk(c.ctx, ch)
	c.acked(t, wire.Version{})
	bigger, err := wire.PackWeights(&messages.Weights{Term: 1, Version: 1, Params: make([]float32, testClientParams+1)}, nil, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	c.Chunk(c.ctx, bigger[0])
	c.acked(t, wire.Version{})
	if len(c.applied) != 0 || c.assembler.Last() != nil {
		t.Fatalf("weights of another network applied: %v", c.applied)
	}
}

// subscribed says whether the client sent a SubscribeWeights (and only that).
func (c *weightsClientUnderTest) subscribed(t *testing.T) bool {
	t.Helper()
	sends := c.ctx.take()
	switch {
	case len(sends) == 0:
		return false
	case len(sends) > 1:
		t.Fatalf("%d sends", len(sends))
	}
	m, ok := sends[0].msg.(*messages.SubscribeWeights)
	if !ok || m.Runner.GetId() != "runner-1" || sends[0].to.String() != c.dir.broadcaster.String() {
		t.Fatalf("sent %T %v to %v, want a subscription to the broadcaster", sends[0].msg, sends[0].msg, sends[0].to)
	}
	return true
}

func TestWeightsClientSubscribes(t *testing.T) {
	c := newTestWeightsClient(t)
	past := func(d time.Duration) time.Time { return time.Now().Add(-d) }

	if c.Subscribe(c.ctx); !c.subscribed(t) {
		t.Fatal("no first subscription")
	}
	if c.Subscribe(c.ctx); c.subscribed(t) {
		t.Fatal("subscribed again at once")
	}
	// No weights within resubscribeRetry of subscribing: again.
	c.subscribedAt = past(resubscribeRetry + time.Second)
	if c.Subscribe(c.ctx); !c.subscribed(t) {
		t.Fatal("no second subscription while waiting for weights")
	}
	// Weights came: no need, until the broadcaster is silent for
	// resubscribeAfter.
	c.Whole(c.ctx, testWeightsOf(1, 1))
	c.ctx.take()
	c.subscribedAt = past(resubscribeRetry + time.Second)
	if c.Subscribe(c.ctx); c.subscribed(t) {
		t.Fatal("subscribed again while the broadcaster sends")
	}
	c.heardFrom = past(resubscribeAfter + time.Second)
	if c.Subscribe(c.ctx); !c.subscribed(t) {
		t.Fatal("no subscription after the broadcaster went silent")
	}
	// Another broadcaster: at once.
	c.dir.broadcaster = actor.NewPID("10.0.0.4:8090", BroadcasterName)
	if c.Subscribe(c.ctx); !c.subscribed(t) {
		t.Fatal("no subscription to a new broadcaster")
	}
	// No broadcaster known: nothing to do.
	saved := c.dir.broadcaster
	c.dir.broadcaster = nil
	c.subscribedAt = time.Time{}
	if c.Subscribe(c.ctx); c.subscribed(t) {
		t.Fatal("subscribed to no broadcaster")
	}
	c.dir.broadcaster = saved
}

func TestWeightsClientResubscribesOnLinkLost(t *testing.T) {
	c := newTestWeightsClient(t)
	c.Subscribe(c.ctx)
	c.ctx.take()
	c.Whole(c.ctx, testWeightsOf(1, 1))
	c.ctx.take()
	// Just subscribed: a lost link now is the stream the subscription
	// replaced.
	if c.LinkLost(c.ctx, broadcasterHost); c.subscribed(t) {
		t.Fatal("subscribed again right after subscribing")
	}
	// But that subscription may have died with the link: it is retried
	// resubscribeRetry after it was sent, although weights came lately
	// (not after resubscribeAfter of silence).
	saved := c.subscribedAt
	c.subscribedAt = time.Now().Add(-resubscribeRetry)
	if c.Subscribe(c.ctx); !c.subscribed(t) {
		t.Fatal("the subscription sent just before the link broke is not retried after resubscribeRetry")
	}
	c.subscribedAt = saved
	c.subscribedAt = time.Now().Add(-resubscribeRetry)
	if c.LinkLost(c.ctx, "10.9.9.9:1"); c.subscribed(t) {
		t.Fatal("subscribed again for another host's link")
	}
	if c.LinkLost(c.ctx, broadcasterHost); !c.subscribed(t) {
		t.Fatal("no subscription after the broadcaster's link broke")
	}
	if !c.awaiting {
		t.Fatal("not awaiting weights after subscribing")
	}
}
