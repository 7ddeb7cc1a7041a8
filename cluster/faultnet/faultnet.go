// Package faultnet is a network for tests between two or more nodes in one
// process, whose links the test cuts, delays and heals: protocol faults
// tested without root and in milliseconds, beside the namespace lab
// (cluster/netlab), which needs root and runs whole processes.
//
// Each node listens on a real loopback port (protoactor's remote.Start opens
// its own TCP listener and takes no net.Listener) and dials every connection
// through the Network (Dial, DialOption, RemoteOption, StartNode), which
// wraps it. The wrapper sees both directions of its connection, so every
// fault is applied on the dialling side: what the node writes travels the
// link dialler→listener, what it reads travels listener→dialler. A
// connection that did not go through a Network's Dial sees no faults.
//
// The faults, per directed link between two node names:
//
//   - Delay(from, to, d): every byte from→to arrives d later, in order (a
//     dial waits one round trip). Writes return at once while at most
//     MaxInFlight bytes are under way, as into a socket buffer.
//   - Drop(from, to): a one-way blackhole. Bytes from→to vanish while the
//     writer sees them sent; connections stay open and hang; a dial between
//     the two hangs (its handshake needs both ways) until Heal or its
//     context ends. A byte stream cannot resume with a hole in it, so when
//     the link heals, each connection that lost bytes is reset: what gRPC's
//     keepalive does to a blackholed connection after 15 s, at once.
//     Acknowledgements are not modelled: bytes to→from keep flowing.
//   - Partition(a, b): both ways. Open connections between a and b are reset
//     at once (their reads and writes fail, the peer sees the socket reset,
//     as after a keepalive timeout or an RST), and dials hang as under Drop.
//     Drop(a, b) with Drop(b, a) is the silent partition: connections hang
//     until Heal.
//   - Heal(a, b): both directions back to no faults at all.
//   - Reset(a, b): reset the open connections between a and b once, without
//     cutting the link (a peer restarted, a NAT mapping expired).
//
// Stats counts per directed link what went through and what was lost, so
// that a test can check that its fault was exercised.
//
// Models: raft's InmemTransport and memberlist's MockNetwork, which fail
// messages; this fails bytes under real gRPC and protoactor remote, so the
// stock stack's own reactions (stream errors, EndpointTerminatedEvent,
// reconnects) are what the protocol meets. Gossip (memberlist) does not run
// over it: tests give roles a static directory.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MaxInFlight bounds the bytes one direction of a connection holds in the
// network (delayed, not yet delivered); a writer beyond it waits, as on a
// full socket buffer.
const MaxInFlight = 4 << 20

// Errors of the network's connections and dials.
var (
	// ErrReset is what reads and writes of a reset connection return
	// (Partition, Reset, Heal after Drop, Close of the Network).
	ErrReset = errors.New("faultnet: connection reset")
	// ErrUnknownAddress: no node of this Network listens there.
	ErrUnknownAddress = errors.New("faultnet: no node at this address")
	// ErrClosed: the Network is closed.
	ErrClosed = errors.New("faultnet: network closed")
)

// LinkStats are the counts of one directed link from→to since New.
type LinkStats struct {
	Dials      uint64 // dials from→to begun
	DialsHeld  uint64 // of those, dials that waited for the link (Drop or Partition)
	Conns      int    // connections from→to open now
	Delivered  uint64 // bytes from→to that arrived
	Dropped    uint64 // bytes from→to lost (Drop)
	Resets     uint64 // connections from→to reset
	Terminated uint64 // of those, connections reset because they lost bytes
}

// Network is a set of named nodes and the links between them. The zero
// value is not usable: use New. Safe for concurrent use.
type Network struct {
	mu      sync.Mutex
	addrs   map[string]string // listening address → node name
	links   map[linkKey]*link
	conns   map[*conn]struct{}
	changed chan struct{} // closed and replaced on every fault change: held dials look again
	closed  bool
}

type linkKey struct{ from, to string }

// link is the state of one direction between two nodes.
type link struct {
	delay time.Duration
	drop  bool // Drop: bytes vanish, dials hang
	cut   bool // Partition: connections reset, dials hang

	dials, dialsHeld, delivered, dropped, resets, terminated atomic.Uint64
}

// New returns an empty Network: no nodes, no faults.
func New() *Network {
	return &Network{addrs: map[string]string{}, links: map[linkKey]*link{}, conns: map[*conn]struct{}{}, changed: make(chan struct{})}
}

// Bind says that node name listens on addr (host:port, as peers dial it).
// A node may listen on several addresses.
func (n *Network) Bind(name, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = name
}

// Listen opens a TCP listener on a free loopback port for node name and
// binds it. Connections it accepts are faulted by their dialler's Network.
func (n *Network) Listen(name string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.Bind(name, ln.Addr().String())
	return ln, nil
}

// lk returns the link from→to, creating it; n.mu held.
func (n *Network) lk(from, to string) *link {
	k := linkKey{from, to}
	l := n.links[k]
	if l == nil {
		l = &link{}
		n.links[k] = l
	}
	return l
}

// notify wakes held dials; n.mu held.
func (n *Network) notify() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// Delay makes every byte from→to arrive d later (0: no delay). Bytes already
// under way keep the delay they were sent with.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lk(from, to).delay = max(d, 0)
	n.notify()
}

// Drop blackholes the link from→to until Heal: see the package doc.
func (n *Network) Drop(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lk(from, to).drop = true
	n.notify()
}

// Partition cuts a and b apart both ways until Heal: open connections
// between them are reset now, new dials hang.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	n.lk(a, b).cut, n.lk(b, a).cut = true, true
	n.notify()
	victims := n.connsBetween(a, b, func(*conn) bool { return true })
	n.mu.Unlock()
	resetAll(victims, false)
}

// Heal removes every fault between a and b, both ways, and resets the
// connections between them that lost bytes to a Drop. Held dials go on.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	for _, k := range []linkKey{{a, b}, {b, a}} {
		if l := n.links[k]; l != nil {
			l.delay, l.drop, l.cut = 0, false, false
		}
	}
	n.notify()
	victims := n.connsBetween(a, b, (*conn).lostBytes)
	n.mu.Unlock()
	resetAll(victims, true)
}

// HealAll heals every link of the network.
func (n *Network) HealAll() {
	n.mu.Lock()
	var pairs []linkKey
	for k := range n.links {
		pairs = append(pairs, k)
	}
	n.mu.Unlock()
	for _, k := range pairs {
		n.Heal(k.from, k.to)
	}
}

// Reset resets the open connections between a and b (either dialling) once
// and returns how many; the link stays up and new dials go through.
func (n *Network) Reset(a, b string) int {
	n.mu.Lock()
	victims := n.connsBetween(a, b, func(*conn) bool { return true })
	n.mu.Unlock()
	resetAll(victims, false)
	return len(victims)
}

// connsBetween lists the open connections between a and b that pass keep;
// n.mu held.
func (n *Network) connsBetween(a, b string, keep func(*conn) bool) []*conn {
	var out []*conn
	for c := range n.conns {
		if ((c.from == a && c.to == b) || (c.from == b && c.to == a)) && keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Stats returns the counts of the link from→to.
func (n *Network) Stats(from, to string) LinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.lk(from, to)
	open := 0
	for c := range n.conns {
		if c.from == from && c.to == to {
			open++
		}
	}
	return LinkStats{Dials: l.dials.Load(), DialsHeld: l.dialsHeld.Load(), Conns: open, Delivered: l.delivered.Load(),
		Dropped: l.dropped.Load(), Resets: l.resets.Load(), Terminated: l.terminated.Load()}
}

// Close resets every connection and fails every dial from now on.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	n.notify()
	var all []*conn
	for c := range n.conns {
		all = append(all, c)
	}
	n.mu.Unlock()
	resetAll(all, false)
}

// Dial connects node from to the node listening on addr, over the link
// between them. It waits while the link is dropped or cut either way (a
// handshake needs both) until the fault heals or ctx ends, and one round
// trip of Delay.
func (n *Network) Dial(ctx context.Context, from, addr string) (net.Conn, error) {
	n.mu.Lock()
	to, ok := n.addrs[addr]
	n.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, from, ErrUnknownAddress)
	}
	n.lk2(from, to).dials.Add(1)
	held := false
	var rtt time.Duration
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, fmt.Errorf("dial %s (%s) from %s: %w", addr, to, from, ErrClosed)
		}
		out, back := n.lk(from, to), n.lk(to, from)
		wait := n.changed
		up := !out.drop && !out.cut && !back.drop && !back.cut
		if up {
			rtt = out.delay + back.delay
		} else if !held {
			held = true
			out.dialsHeld.Add(1)
		}
		n.mu.Unlock()
		if up {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s (%s) from %s: link down: %w", addr, to, from, ctx.Err())
		}
	}
	if rtt > 0 {
		t := time.NewTimer(rtt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("dial %s (%s) from %s: %w", addr, to, from, ctx.Err())
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newConn(n, raw, from, to)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		raw.Close()
		return nil, fmt.Errorf("dial %s (%s) from %s: %w", addr, to, from, ErrClosed)
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	c.start()
	return c, nil
}

// Dialer returns Dial for node from, in the form gRPC's WithContextDialer
// and net/http's Transport.DialContext (network ignored) take.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) { return n.Dial(ctx, from, addr) }
}

// send is what a connection learns of its link when bytes enter it: their
// delay, or that they vanish. A cut link resets its connections itself.
func (n *Network) send(from, to string, size int) (delay time.Duration, drop bool) {
	n.mu.Lock()
	l := n.lk(from, to)
	delay, drop = l.delay, l.drop
	n.mu.Unlock()
	if drop {
		l.dropped.Add(uint64(size))
	}
	return delay, drop
}

// forget removes a closed or reset connection.
func (n *Network) forget(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}
