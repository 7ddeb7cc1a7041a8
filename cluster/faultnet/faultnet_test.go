package faultnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// echo serves node name on n: every connection gets back what it sends.
// ended receives the error that ended each connection's copy (nil for an
// orderly close by the client).
func echo(t *testing.T, n *Network, name string) (addr string, ended chan error) {
	t.Helper()
	ln, err := n.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ended = make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, err := io.Copy(c, c)
				c.Close()
				ended <- err
			}()
		}
	}()
	return ln.Addr().String(), ended
}

func dial(t *testing.T, n *Network, from, addr string) net.Conn {
	t.Helper()
	c, err := n.Dial(context.Background(), from, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo " + string(got) + ", want " + msg)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// Delay holds every byte for the link's delay, each way: a dial takes one
// round trip, an echo one round trip, and bytes stay in order when the
// delay shrinks while some are under way.
func TestFaultnetDelay(t *testing.T) {
	n := New()
	addr, _ := echo(t, n, "b")
	n.Delay("a", "b", 60*time.Millisecond)
	n.Delay("b", "a", 40*time.Millisecond)
	start := time.Now()
	c := dial(t, n, "a", addr)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("dial took %v, want one round trip (100 ms)", d)
	}
	start = time.Now()
	if err := roundTrip(c, "ping", time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("echo took %v, want 100 ms (60 there, 40 back)", d)
	}
	// "1" is under way with 60 ms when the delay drops to 0: "2" waits
	// behind it.
	c.Write([]byte("1"))
	n.Delay("a", "b", 0)
	c.Write([]byte("2"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "12" {
		t.Fatalf("read %q, %v; want \"12\"", got, err)
	}
	n.Delay("b", "a", 0)
	start = time.Now()
	if err := roundTrip(c, "fast", time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("echo without delay took %v", d)
	}
}

// Drop is a one-way blackhole: writes succeed, nothing arrives, dials hang;
// Heal resets the connections that lost bytes (and only those), and a dial
// held by the drop goes on.
func TestFaultnetDrop(t *testing.T) {
	n := New()
	addr, _ := echo(t, n, "b")
	addrA, _ := echo(t, n, "a")
	lossy, idle := dial(t, n, "a", addr), dial(t, n, "a", addr)
	if err := roundTrip(lossy, "up", time.Second); err != nil {
		t.Fatal(err)
	}
	n.Drop("a", "b")
	if k, err := lossy.Write([]byte("lost")); k != 4 || err != nil {
		t.Fatalf("write into a blackhole: %d, %v; want 4, nil", k, err)
	}
	lossy.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if _, err := lossy.Read(make([]byte, 4)); !isTimeout(err) {
		t.Fatalf("read across a blackhole: %v, want a timeout", err)
	}
	lossy.SetReadDeadline(time.Time{})
	if st := n.Stats("a", "b"); st.Dropped != 4 {
		t.Errorf("dropped %d bytes, want 4", st.Dropped)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// The other way too: a handshake needs both directions.
	if _, err := n.Dial(ctx, "b", addrA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial during the drop: %v, want it held until its deadline", err)
	}
	held := make(chan net.Conn, 1)
	go func() {
		c, err := n.Dial(context.Background(), "a", addr)
		if err != nil {
			t.Error(err)
		}
		held <- c
	}()
	select {
	case <-held:
		t.Fatal("dial went through a dropped link")
	case <-time.After(100 * time.Millisecond):
	}

	n.Heal("a", "b")
	if _, err := lossy.Read(make([]byte, 4)); !errors.Is(err, ErrReset) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a connection that lost bytes, after Heal: %v, want a reset", err)
	}
	if err := roundTrip(idle, "still here", time.Second); err != nil {
		t.Fatalf("a connection that lost nothing did not survive Heal: %v", err)
	}
	var c net.Conn
	select {
	case c = <-held:
	case <-time.After(time.Second):
		t.Fatal("held dial did not go on after Heal")
	}
	defer c.Close()
	if err := roundTrip(c, "new", time.Second); err != nil {
		t.Fatal(err)
	}
	st := n.Stats("a", "b")
	if st.Terminated != 1 || st.Resets != 1 || st.DialsHeld != 1 || st.Conns != 2 || n.Stats("b", "a").DialsHeld != 1 {
		t.Errorf("stats %+v (b→a %+v): want 1 terminated, 1 reset, 1 held dial each way, 2 open", st, n.Stats("b", "a"))
	}

	// One way only: a's bytes arrive (the echo sends them back), the
	// echo vanishes.
	n.Drop("b", "a")
	before := n.Stats("a", "b").Delivered
	if err := roundTrip(c, "x", 150*time.Millisecond); !isTimeout(err) {
		t.Fatalf("echo across b→a dropped: %v, want a timeout", err)
	}
	if st := n.Stats("a", "b"); st.Delivered != before+1 {
		t.Errorf("a→b delivered %d more bytes, want 1", st.Delivered-before)
	}
	if st := n.Stats("b", "a"); st.Dropped != 1 {
		t.Errorf("b→a dropped %d bytes, want 1", st.Dropped)
	}
}

// Partition resets the open connections at once (the blocked reader and the
// peer both see it) and holds dials until Heal.
func TestFaultnetPartition(t *testing.T) {
	n := New()
	addr, ended := echo(t, n, "b")
	c := dial(t, n, "a", addr)
	if err := roundTrip(c, "up", time.Second); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond) // the reader blocks
	cut := time.Now()
	n.Partition("a", "b")
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrReset) {
			t.Fatalf("blocked read: %v, want a reset", err)
		}
		if d := time.Since(cut); d > 100*time.Millisecond {
			t.Errorf("blocked read took %v to fail", d)
		}
	case <-time.After(time.Second):
		t.Fatal("blocked read did not fail on Partition")
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the peer saw an orderly close, want a reset")
		}
	case <-time.After(time.Second):
		t.Fatal("the peer did not see the connection end")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrReset) {
		t.Fatalf("write after Partition: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := n.Dial(ctx, "a", addr); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 90*time.Millisecond {
		t.Fatalf("dial across a partition: %v after %v, want it held to its deadline", err, time.Since(start))
	}
	n.Heal("a", "b")
	if err := roundTrip(dial(t, n, "a", addr), "healed", time.Second); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats("a", "b"); st.Resets != 1 || st.Terminated != 0 || st.DialsHeld != 1 {
		t.Errorf("stats %+v: want 1 reset (not for lost bytes), 1 held dial", st)
	}
}

// Reset breaks the open connections once; the link stays up.
func TestFaultnetReset(t *testing.T) {
	n := New()
	addr, _ := echo(t, n, "b")
	c1, c2 := dial(t, n, "a", addr), dial(t, n, "a", addr)
	if k := n.Reset("b", "a"); k != 2 {
		t.Fatalf("reset %d connections, want 2", k)
	}
	for _, c := range []net.Conn{c1, c2} {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
			t.Fatalf("read after Reset: %v", err)
		}
	}
	if err := roundTrip(dial(t, n, "a", addr), "again", time.Second); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats("a", "b"); st.Resets != 2 || st.Conns != 1 {
		t.Errorf("stats %+v: want 2 resets, 1 open", st)
	}
}

// Many megabytes under a delay arrive whole and in order: a writer ahead of
// the link waits (MaxInFlight), none of it is lost or reordered.
func TestFaultnetBulkUnderDelay(t *testing.T) {
	n := New()
	addr, _ := echo(t, n, "b")
	n.Delay("a", "b", 2*time.Millisecond)
	n.Delay("b", "a", 3*time.Millisecond)
	c := dial(t, n, "a", addr)
	want := make([]byte, 3*MaxInFlight+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	go func() {
		for b := want; len(b) > 0; {
			k := min(len(b), 1+r.IntN(100_000))
			if _, err := c.Write(b[:k]); err != nil {
				t.Error(err)
				return
			}
			b = b[k:]
		}
	}()
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
}

// Closing flushes what was written, as a socket does; closing the network
// resets everything and fails dials; unknown addresses are refused.
func TestFaultnetCloseAndUnknown(t *testing.T) {
	n := New()
	ln, err := n.Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n.Delay("a", "b", 30*time.Millisecond)
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(s)
		got <- b
	}()
	c := dial(t, n, "a", ln.Addr().String())
	c.Write([]byte("last words"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "last words" {
		t.Fatalf("peer read %q after the close", b)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}

	if _, err := n.Dial(context.Background(), "a", "127.0.0.1:1"); !errors.Is(err, ErrUnknownAddress) {
		t.Fatalf("dial to an address no node has: %v", err)
	}
	open := dial(t, n, "a", ln.Addr().String())
	n.Close()
	if _, err := open.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("read after the network closed: %v", err)
	}
	if _, err := n.Dial(context.Background(), "a", ln.Addr().String()); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after the network closed: %v", err)
	}
}
