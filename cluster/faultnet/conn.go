package faultnet

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errReset wraps ErrReset in the errno a reset TCP socket gives, so code
// that checks for ECONNRESET sees one.
var errReset = fmt.Errorf("%w: %w", ErrReset, syscall.ECONNRESET)

// conn is one connection node from dialled to node to. The real loopback
// socket carries the bytes; two pipes stand between it and the node, one
// per direction, and apply the links' faults as bytes enter them: out holds
// what the node wrote (link from→to) until it is due to be written to the
// socket, in holds what the socket gave (link to→from) until it is due to be
// read.
type conn struct {
	net      *Network
	raw      net.Conn
	from, to string
	out, in  pipe
	lost     atomic.Bool // bytes vanished (Drop) either way: the stream has a hole

	wmu, rmu          sync.Mutex // one Write, one Read at a time, as pipes need
	rdl, wdl          deadline
	outLink, backLink *link

	// done: the node's side is closed (Close, or a reset): its reads and
	// writes return why. kill: the socket goes now, with whatever the
	// pipes hold. After a Close, the socket goes once out has drained, as
	// a kernel sends what was written before a close.
	done, kill         chan struct{}
	doneOnce, killOnce sync.Once
	why                error
}

func newConn(n *Network, raw net.Conn, from, to string) *conn {
	c := &conn{net: n, raw: raw, from: from, to: to, done: make(chan struct{}), kill: make(chan struct{}),
		rdl: newDeadline(), wdl: newDeadline(), outLink: n.lk2(from, to), backLink: n.lk2(to, from)}
	c.out.init()
	c.in.init()
	return c
}

// lk2 is lk taking the lock.
func (n *Network) lk2(from, to string) *link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lk(from, to)
}

func (c *conn) start() {
	go c.pumpOut()
	go c.pumpIn()
}

func (c *conn) lostBytes() bool { return c.lost.Load() }

// end closes the node's side once, with why for its reads and writes.
func (c *conn) end(why error) bool {
	first := false
	c.doneOnce.Do(func() {
		first = true
		c.why = why
		close(c.done)
	})
	return first
}

// destroy closes the socket once; rst makes the peer see a reset instead of
// an orderly close.
func (c *conn) destroy(rst bool) {
	c.killOnce.Do(func() {
		close(c.kill)
		if tc, ok := c.raw.(*net.TCPConn); ok && rst {
			_ = tc.SetLinger(0)
		}
		_ = c.raw.Close()
		c.net.forget(c)
	})
}

// resetAll breaks the connections, both sides at once; lost says they are
// reset because bytes vanished on them. Every connection is claimed (its
// node's side ended with errReset) before any socket goes: a socket closed
// first makes the peer node react, and its reaction (closing its own
// connections to this node) must not win the race against the fault for
// the connections still in the list.
func resetAll(cs []*conn, lost bool) {
	for _, c := range cs {
		// Linger 0 before done closes: once done is closed, pumpOut may
		// close the socket itself, and must then send the RST too.
		if tc, ok := c.raw.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	for _, c := range cs {
		if c.end(errReset) {
			c.outLink.resets.Add(1)
			if lost {
				c.outLink.terminated.Add(1)
			}
		}
	}
	for _, c := range cs {
		c.destroy(true)
	}
}

// failed returns why the connection ended, or nil.
func (c *conn) failed() error {
	select {
	case <-c.done:
		return c.why
	default:
		return nil
	}
}

func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.failed(); err != nil {
		return 0, err
	}
	if expired(c.wdl.wait()) {
		return 0, os.ErrDeadlineExceeded
	}
	if len(b) == 0 {
		return 0, nil
	}
	delay, drop := c.net.send(c.from, c.to, len(b))
	if drop {
		c.lost.Store(true)
		return len(b), nil // the sender cannot tell
	}
	if err := c.out.push(chunk{b: append([]byte(nil), b...), due: time.Now().Add(delay)}, c.done, &c.wdl); err != nil {
		if err == errDone {
			err = c.why
		}
		return 0, err
	}
	return len(b), nil
}

// pumpOut writes the node's bytes to the socket as they fall due, and
// closes the socket once the node has closed and everything is written.
func (c *conn) pumpOut() {
	for {
		ch, ok := c.out.waitFront(c.done, c.kill)
		if !ok {
			c.destroy(false)
			return
		}
		if !sleepUntil(ch.due, c.kill) {
			return
		}
		// Counted before the write returns: the peer can read the bytes
		// and answer (and a test read the count) before it does.
		c.outLink.delivered.Add(uint64(len(ch.b)))
		_, err := c.raw.Write(ch.b)
		c.out.pop(len(ch.b))
		if err != nil {
			c.outLink.delivered.Add(^uint64(len(ch.b) - 1)) // not delivered after all
			c.end(err)
			c.destroy(false)
			return
		}
	}
}

// pumpIn reads the socket and queues what arrives for the node, or drops it.
func (c *conn) pumpIn() {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.raw.Read(buf)
		if n > 0 {
			delay, drop := c.net.send(c.to, c.from, n)
			if drop {
				c.lost.Store(true)
			} else if c.in.push(chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}, c.done, nil) != nil {
				return
			}
		}
		if err != nil {
			if expired(c.kill) {
				return // our own end of it, not the peer's
			}
			// The peer's close travels the link too (and vanishes with a
			// drop: the reader then hangs, as it would).
			if delay, drop := c.net.send(c.to, c.from, 0); !drop {
				_ = c.in.push(chunk{err: err, due: time.Now().Add(delay)}, c.done, nil)
			}
			return
		}
	}
}

func (c *conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if err := c.failed(); err != nil {
			return 0, err
		}
		dl := c.rdl.wait()
		if expired(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		ch, ok, signal := c.in.front()
		var timer *time.Timer
		var due <-chan time.Time
		if ok {
			wait := time.Until(ch.due)
			if wait <= 0 {
				if ch.err != nil {
					return 0, ch.err // stays at the front: every later Read gets it too
				}
				n := copy(b, ch.b)
				c.in.pop(n)
				c.backLink.delivered.Add(uint64(n))
				return n, nil
			}
			timer = time.NewTimer(wait)
			due = timer.C
		}
		select {
		case <-signal:
		case <-due:
		case <-c.done:
		case <-dl:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (c *conn) Close() error {
	if !c.end(net.ErrClosed) {
		return net.ErrClosed
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// chunk is bytes in a pipe, due at the far end at due; or the end of the
// stream (err) there.
type chunk struct {
	b   []byte
	due time.Time
	err error
}

// pipe is a FIFO of chunks holding at most MaxInFlight bytes.
type pipe struct {
	mu     sync.Mutex
	q      []chunk
	size   int
	signal chan struct{} // closed and replaced on every change
}

var errDone = fmt.Errorf("faultnet: connection ended")

func (p *pipe) init() { p.signal = make(chan struct{}) }

// changed wakes waiters; p.mu held.
func (p *pipe) changed() {
	close(p.signal)
	p.signal = make(chan struct{})
}

// push appends ch, waiting while the pipe is full (a chunk larger than
// MaxInFlight goes into an empty pipe).
func (p *pipe) push(ch chunk, done <-chan struct{}, dl *deadline) error {
	for {
		var dlc <-chan struct{}
		if dl != nil {
			dlc = dl.wait()
			if expired(dlc) {
				return os.ErrDeadlineExceeded
			}
		}
		p.mu.Lock()
		if p.size == 0 || p.size+len(ch.b) <= MaxInFlight {
			p.q = append(p.q, ch)
			p.size += len(ch.b)
			p.changed()
			p.mu.Unlock()
			return nil
		}
		signal := p.signal
		p.mu.Unlock()
		select {
		case <-signal:
		case <-done:
			return errDone
		case <-dlc:
		}
	}
}

// front returns the first chunk, if any, and the channel that says the pipe
// changed.
func (p *pipe) front() (chunk, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return chunk{}, false, p.signal
	}
	return p.q[0], true, p.signal
}

// waitFront waits for a first chunk; false on kill, or on done with the
// pipe empty.
func (p *pipe) waitFront(done, kill <-chan struct{}) (chunk, bool) {
	for {
		ch, ok, signal := p.front()
		if ok {
			return ch, true
		}
		select {
		case <-signal:
		case <-kill:
			return chunk{}, false
		case <-done:
			if _, ok, _ := p.front(); !ok {
				return chunk{}, false
			}
		}
	}
}

// pop consumes n bytes of the first chunk, and the chunk once it is empty.
func (p *pipe) pop(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q[0].b = p.q[0].b[n:]
	p.size -= n
	if len(p.q[0].b) == 0 {
		p.q[0] = chunk{}
		p.q = p.q[1:]
	}
	p.changed()
}

// sleepUntil waits until t; false if done first.
func sleepUntil(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

// deadline is a read or write deadline: a channel closed when it passes,
// replaced when it is set again (blocked calls wait on it and look again).
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
	gen   uint64
}

func newDeadline() deadline { return deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	old := d.ch
	d.ch = make(chan struct{})
	if !expired(old) {
		close(old) // wake waiters on the old deadline: they look again
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	gen, ch := d.gen, d.ch
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
		}
	})
}

// wait returns the channel closed when the deadline passes (or changes).
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func expired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
