package cluster

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// guardedNode starts one remote with a guard and an actor "sink" that counts
// the Credit messages it gets.
func guardedNode(t *testing.T, cfg GuardConfig) (*actor.ActorSystem, *Guard, *atomic.Int64) {
	t.Helper()
	log := testLogger(t, slog.LevelWarn)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	cfg.Logger = log
	g := NewGuard(sys, cfg)
	r, err := StartRemote(sys, RemoteConfig("127.0.0.1", 0, "", nil, g))
	if err != nil {
		t.Fatalf("start remote: %v", err)
	}
	t.Cleanup(func() { r.Shutdown(false); sys.Shutdown() })
	var got atomic.Int64
	sink := actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*messages.Credit); ok {
			got.Add(int64(c.Transitions))
		}
	})
	if _, err := sys.Root.SpawnNamed(sink, "sink"); err != nil {
		t.Fatal(err)
	}
	return sys, g, &got
}

// connectedPeer is a hostile peer's stream to addr, connected as from,
// closed at the end of the test.
func connectedPeer(t *testing.T, addr, from string) *hostile.Peer {
	t.Helper()
	p, err := hostile.DialConnected(addr, nil, from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Every crafted batch is refused with its reason, the stream is closed, the
// process lives on, and a well-formed message on a new stream still arrives.
func TestGuardRefusesCraftedBatches(t *testing.T) {
	sys, g, got := guardedNode(t, GuardConfig{})
	target := actor.NewPID(sys.Address(), "sink")
	const from = "127.0.0.1:1"
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	name := string(proto.MessageName(&messages.Credit{}))
	probes := hostile.Probes(target, from, name, credit)
	for i, p := range probes {
		reason := -1
		for r := 0; r < numRejectReasons; r++ {
			if RejectReasonName(r) == p.Reason {
				reason = r
			}
		}
		if reason < 0 {
			t.Fatalf("probe %q expects reason %q, which the guard does not have", p.Name, p.Reason)
		}
		before := g.Rejected(reason)
		if err := hostile.Run(sys.Address(), from, p, 5*time.Second); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if g.Rejected(reason) != before+1 {
			t.Errorf("%s: %s count %d, want %d", p.Name, p.Reason, g.Rejected(reason), before+1)
		}
		if g.RejectedTotal() != uint64(i+1) {
			t.Errorf("after %d probes %d refusals in all", i+1, g.RejectedTotal())
		}
	}
	if got.Load() != 0 {
		t.Fatalf("the sink got %d credits from refused batches", got.Load())
	}
	// The node still takes a well-formed message.
	peer := connectedPeer(t, sys.Address(), from)
	if err := peer.Send(hostile.Valid(target, name, credit)); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got.Load() == 1 {
			return nil
		}
		return fmt.Errorf("waiting for the valid credit to arrive: %d credits", got.Load())
	})
}

// A bad envelope after good ones drops the whole batch: protoactor's reader
// alone would deliver the good ones first.
func TestGuardDropsWholeBatch(t *testing.T) {
	sys, g, got := guardedNode(t, GuardConfig{})
	target := actor.NewPID(sys.Address(), "sink")
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	b := hostile.Valid(target, string(proto.MessageName(&messages.Credit{})), credit)
	b.Envelopes = append(b.Envelopes, b.Envelopes[0], &remote.MessageEnvelope{TypeId: 3})
	peer := connectedPeer(t, sys.Address(), "127.0.0.1:1")
	if err := peer.Send(b); err != nil {
		t.Fatal(err)
	}
	if err := peer.Closed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if g.Rejected(RejectTypeID) != 1 || got.Load() != 0 {
		t.Fatalf("type_id refusals %d (want 1), credits delivered %d (want 0)", g.Rejected(RejectTypeID), got.Load())
	}
}

// protoactor's unimplemented unary methods panic; the guard answers them.
func TestGuardRefusesUnaryMethods(t *testing.T) {
	sys, g, _ := guardedNode(t, GuardConfig{})
	if err := hostile.CallUnimplemented(sys.Address()); err == nil {
		t.Fatal("ListProcesses answered without an error")
	}
	if g.Rejected(RejectMethod) != 1 {
		t.Fatalf("method refusals %d, want 1", g.Rejected(RejectMethod))
	}
}

// A peer over the message rate is slowed down, not cut off: everything it
// sends arrives, later.
func TestGuardPacesFastPeer(t *testing.T) {
	sys, g, got := guardedNode(t, GuardConfig{Rate: 200, MaxEnvelopes: 50})
	target := actor.NewPID(sys.Address(), "sink")
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	name := string(proto.MessageName(&messages.Credit{}))
	peer := connectedPeer(t, sys.Address(), "127.0.0.1:1")
	b := hostile.Valid(target, name, credit)
	for len(b.Envelopes) < 50 {
		b.Envelopes = append(b.Envelopes, b.Envelopes[0])
	}
	start := time.Now()
	const batches = 8 // 400 messages at 200/s after a burst of 50: ≥ 1.75 s
	for i := 0; i < batches; i++ {
		if err := peer.Send(b); err != nil {
			t.Fatal(err)
		}
	}
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got.Load() == batches*50 {
			return nil
		}
		return fmt.Errorf("waiting for every paced credit to arrive: %d credits", got.Load())
	})
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("400 messages at 200/s arrived in %v", el)
	}
	if g.RejectedTotal() != 0 || g.paced.Load() == 0 {
		t.Fatalf("refusals %d (want 0), paced batches %d (want > 0)", g.RejectedTotal(), g.paced.Load())
	}
}
