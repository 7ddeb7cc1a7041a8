//go:build !race

// Two protoactor remotes in one process trip the race detector in
// protoactor itself (remote.Start sets gRPC's global logger), so tests that
// start two nodes are left out of -race builds, as cluster's own are.

package faultnet

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/qfleet/qfleet/messages"
)

func startNodes(t *testing.T, n *Network, names ...string) []*Node {
	t.Helper()
	var out []*Node
	for _, name := range names {
		nd, err := n.StartNode(name, NodeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Close)
		out = append(out, nd)
	}
	return out
}

// spawnEcho answers every Credit with one more transition.
func spawnEcho(t *testing.T, nd *Node) *actor.PID {
	t.Helper()
	pid, err := nd.System.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*messages.Credit); ok {
			ctx.Respond(&messages.Credit{Transitions: c.Transitions + 1, Seq: c.Seq})
		}
	}), "echo")
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// ask sends a Credit from a to the echo on b (a PID made for a's system:
// a PID caches the system that first resolved it) and waits for the answer.
func ask(a, b *Node, seq uint64, timeout time.Duration) error {
	res, err := a.System.Root.RequestFuture(actor.NewPID(b.Address(), "echo"), &messages.Credit{Transitions: 1, Seq: seq}, timeout).Result()
	if err != nil {
		return err
	}
	if c, ok := res.(*messages.Credit); !ok || c.Seq != seq || c.Transitions != 2 {
		return errors.New("wrong answer")
	}
	return nil
}

// watchLinks counts the EndpointTerminatedEvents nd publishes for addr: what
// the runner's onLinkLost reacts to.
func watchLinks(nd *Node, addr string) *atomic.Int64 {
	var lost atomic.Int64
	nd.System.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*remote.EndpointTerminatedEvent); ok && e.Address == addr {
			lost.Add(1)
		}
	})
	return &lost
}

func waitFor(t *testing.T, total time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > total {
			t.Fatalf("no %s within %v", what, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// Real protoactor remote and gRPC over the network, guards in place: a
// partition breaks the streams at once (protoactor publishes
// EndpointTerminatedEvent), messages sent across it are lost without a
// trace, and after Heal the writers reconnect and messages flow again.
func TestFaultnetRemotePartition(t *testing.T) {
	n := New()
	nodes := startNodes(t, n, "a", "b")
	a, b := nodes[0], nodes[1]
	spawnEcho(t, b)
	lost := watchLinks(a, b.Address())
	if err := ask(a, b, 1, 2*time.Second); err != nil {
		t.Fatalf("before the partition: %v", err)
	}
	n.Partition("a", "b")
	d := waitFor(t, time.Second, "EndpointTerminatedEvent on a", func() bool { return lost.Load() > 0 })
	t.Logf("stream loss seen by a %v after the partition", d)
	if err := ask(a, b, 2, 300*time.Millisecond); err == nil {
		t.Fatal("a request crossed the partition")
	}
	healed := time.Now()
	n.Heal("a", "b")
	for seq := uint64(3); ; seq++ {
		if err := ask(a, b, seq, 500*time.Millisecond); err == nil {
			break
		}
		if time.Since(healed) > 5*time.Second {
			t.Fatal("no answer within 5 s of Heal")
		}
	}
	t.Logf("first answer %v after Heal; a→b %+v, b→a %+v", time.Since(healed), n.Stats("a", "b"), n.Stats("b", "a"))
	if st := n.Stats("a", "b"); st.Resets == 0 {
		t.Errorf("a→b: no connection was reset: %+v", st)
	}
	for _, nd := range nodes {
		if r := nd.Guard.RejectedTotal(); r != 0 {
			t.Errorf("guard of %s refused %d batches: the network corrupted a stream", nd.Name, r)
		}
	}
}

// Delay reaches the actors: a request and its answer take the two delays.
func TestFaultnetRemoteDelay(t *testing.T) {
	n := New()
	nodes := startNodes(t, n, "a", "b")
	a, b := nodes[0], nodes[1]
	spawnEcho(t, b)
	spawnEcho(t, a)
	if err := ask(a, b, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ask(b, a, 1, 2*time.Second); err != nil { // b's stream to a is open too
		t.Fatal(err)
	}
	n.Delay("a", "b", 40*time.Millisecond)
	n.Delay("b", "a", 60*time.Millisecond)
	start := time.Now()
	if err := ask(a, b, 2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > time.Second {
		t.Errorf("request and answer took %v, want 100 ms (40 there, 60 back)", d)
	}
}

// A blackholed stream hangs (no EndpointTerminatedEvent: gRPC notices only
// by keepalive, 15 s), what is sent into it is lost, and Heal resets it:
// the stream's loss is then published and the next message reconnects.
func TestFaultnetRemoteDrop(t *testing.T) {
	n := New()
	nodes := startNodes(t, n, "a", "b")
	a, b := nodes[0], nodes[1]
	spawnEcho(t, b)
	lost := watchLinks(a, b.Address())
	if err := ask(a, b, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	n.Drop("a", "b")
	if err := ask(a, b, 2, 300*time.Millisecond); err == nil {
		t.Fatal("a request crossed a dropped link")
	}
	if lost.Load() != 0 {
		t.Fatal("a blackholed stream was reported lost before Heal")
	}
	if st := n.Stats("a", "b"); st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
	healed := time.Now()
	n.Heal("a", "b")
	waitFor(t, time.Second, "EndpointTerminatedEvent after Heal", func() bool { return lost.Load() > 0 })
	for seq := uint64(3); ; seq++ {
		if err := ask(a, b, seq, 500*time.Millisecond); err == nil {
			break
		}
		if time.Since(healed) > 5*time.Second {
			t.Fatal("no answer within 5 s of Heal")
		}
	}
	t.Logf("first answer %v after Heal; a→b %+v", time.Since(healed), n.Stats("a", "b"))
	if st := n.Stats("a", "b"); st.Terminated == 0 {
		t.Errorf("the stream that lost bytes was not reset: %+v", st)
	}
}
