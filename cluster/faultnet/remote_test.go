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

	"github.com/qfleet/qfleet/cluster"
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

// What protoactor does with messages sent while a link is cut: the stream
// that broke loses what it held, but a message sent after the break starts
// a new writer whose dial the partition holds (gRPC gives a connect 5 s,
// protoactor tries 5 times, 2 s apart), with the messages queued behind
// it. A partition shorter than that delays them: they arrive after Heal,
// in order. Sender-side bookkeeping that wrote them off must expect them
// late (the runner ignores credits for written-off batches).
func TestFaultnetRemoteHeldAcrossPartition(t *testing.T) {
	n := New()
	nodes := startNodes(t, n, "a", "b")
	a, b := nodes[0], nodes[1]
	got := make(chan uint64, 100)
	if _, err := b.System.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*messages.Credit); ok {
			got <- c.Seq
		}
	}), "sink"); err != nil {
		t.Fatal(err)
	}
	lost := watchLinks(a, b.Address())
	send := func(seq uint64) {
		a.System.Root.Send(actor.NewPID(b.Address(), "sink"), &messages.Credit{Seq: seq})
	}
	send(1)
	if s := <-got; s != 1 {
		t.Fatalf("got %d, want 1", s)
	}
	n.Partition("a", "b")
	waitFor(t, time.Second, "EndpointTerminatedEvent on a", func() bool { return lost.Load() > 0 })
	for seq := uint64(2); seq <= 5; seq++ {
		send(seq)
	}
	select {
	case s := <-got:
		t.Fatalf("message %d crossed the partition", s)
	case <-time.After(300 * time.Millisecond):
	}
	healed := time.Now()
	n.Heal("a", "b")
	for want := uint64(2); want <= 5; want++ {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("after Heal got %d, want %d (in order)", s, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("message %d sent during the partition never arrived", want)
		}
	}
	t.Logf("held messages arrived %v after Heal; a→b %+v", time.Since(healed), n.Stats("a", "b"))
	if st := n.Stats("a", "b"); st.DialsHeld == 0 {
		t.Errorf("no dial was held: %+v", st)
	}
}

// Mutual TLS as in production over a delayed link: the handshake's round
// trips take the delay too, and the guard's identity check passes (the
// peer's certificate names the address it announces).
func TestFaultnetRemoteMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := cluster.GenerateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := New()
	var nodes []*Node
	for _, name := range []string{"a", "b"} {
		f, err := cluster.GenerateNodeCert(dir, name, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		tc, err := cluster.LoadTLS(f.Cert, f.Key, ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		nd, err := n.StartNode(name, NodeConfig{TLS: tc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Close)
		nodes = append(nodes, nd)
	}
	a, b := nodes[0], nodes[1]
	spawnEcho(t, b)
	n.Delay("a", "b", 20*time.Millisecond)
	n.Delay("b", "a", 20*time.Millisecond)
	start := time.Now()
	if err := ask(a, b, 1, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	// TCP, TLS 1.3 (one round trip), the connect request and its
	// response, the request on a's stream, the answer on b's own new
	// stream to a (another dial and handshake): at least 4 round trips.
	if d := time.Since(start); d < 4*40*time.Millisecond {
		t.Errorf("first request over mTLS took %v, want at least 4 round trips of 40 ms", d)
	} else {
		t.Logf("first request over mTLS with 20 ms each way: %v", d)
	}
	for _, nd := range nodes {
		if r := nd.Guard.RejectedTotal(); r != 0 {
			t.Errorf("guard of %s refused %d batches", nd.Name, r)
		}
	}
}
