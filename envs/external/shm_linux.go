//go:build linux && amd64

package external

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared memory for the subprocess transport. A step of a fast env in a
// small vector is a few tens of microseconds of work, and on virtual
// machines passing it through pipes costs as much again even when both
// sides spin (a system call to write, system calls to poll). So the
// client offers the worker process a memory file (memfd, its file
// descriptor in ShmVar); a server that takes it says so in its handshake,
// and from then on each side writes its frames into the memory and
// publishes them with a sequence number the other side spins on. The pipes
// stay: a side that stopped spinning sleeps on its pipe, and the other
// writes one byte there (a doorbell) when it sees the sleeping flag; a
// process that exits closes its pipe, which wakes the other.
//
// The layout (all integers little-endian uint64; each side's counters on
// their own cache line):
//
//	0    request sequence (client)     256  request frame length (client)
//	64   reply sequence (server)       320  reply frame length (server)
//	128  server sleeping (server)      384  reply area capacity (client)
//	192  client sleeping (client)      448  request area capacity (client)
//	4096               request area: one frame, length prefix included
//	4096+request cap   reply area: one frame, length prefix included
//
// The request area holds shmReqCap bytes; the reply area is sized once the
// handshake says how large a reply can be (layout.maxReply), and the server
// maps the file again when the capacity it reads has grown. The scheme
// relies on stores becoming visible in program order (the frame before its
// sequence number), which x86-64 guarantees; the client offers shared
// memory on linux/amd64 only.
const (
	shmOffReqSeq     = 0
	shmOffRepSeq     = 64
	shmOffSrvSleep   = 128
	shmOffCliSleep   = 192
	shmOffReqLen     = 256
	shmOffRepLen     = 320
	shmOffRepCap     = 384
	shmOffReqCap     = 448
	shmHeader        = 4096
	shmReqCap        = 1 << 20
	shmSleepRecheck  = 100 * time.Millisecond // a sleeper's look at the sequence when no doorbell came
	shmInitialRepCap = 64 << 10               // the reply area before the handshake sizes it
)

// shmConn is a worker process's protocol stream through shared memory once
// on, through its pipes before (the handshake) and when the server did not
// take the offer.
type shmConn struct {
	*pipeConn
	f        *os.File // the memory file, the worker's file descriptor ShmFD
	mem      []byte
	on       bool
	seq      uint64 // the last request's sequence number
	rep      []byte // what is left to read of the current reply
	consumed bool   // the reply to seq has been handed to Read
	rdl, wdl time.Time
	spin     spinPolicy
	bell     [64]byte // doorbells read; a field, not garbage a sleep
}

// newShmConn makes the memory file for a worker process whose pipes are p;
// nil when the system refuses one (the session then runs on the pipes).
func newShmConn(p *pipeConn) *shmConn {
	fd, err := unix.MemfdCreate("qfleet-env", unix.MFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "qfleet-env-shm")
	c := &shmConn{pipeConn: p, f: f}
	if err := c.resize(shmInitialRepCap); err != nil {
		f.Close()
		return nil
	}
	return c
}

// resize sizes the file and the mapping for a reply area of repCap bytes
// and writes the capacities into the header.
func (c *shmConn) resize(repCap int) error {
	size := shmHeader + shmReqCap + repCap
	if err := c.f.Truncate(int64(size)); err != nil {
		return err
	}
	mem, err := unix.Mmap(int(c.f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	if c.mem != nil {
		_ = unix.Munmap(c.mem)
	}
	c.mem = mem
	c.store(shmOffReqCap, shmReqCap)
	c.store(shmOffRepCap, uint64(repCap))
	return nil
}

func (c *shmConn) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&c.mem[off])) }
func (c *shmConn) load(off int) uint64  { return atomic.LoadUint64(c.word(off)) }
func (c *shmConn) store(off int, v uint64) {
	atomic.StoreUint64(c.word(off), v)
}

// start turns the shared memory on for replies of up to maxReply bytes,
// spinning for them when spin is on.
func (c *shmConn) start(maxReply int, spin bool) error {
	if err := c.resize(maxReply + 4); err != nil {
		return fmt.Errorf("shared memory of %d bytes: %w", shmHeader+shmReqCap+maxReply+4, err)
	}
	c.on, c.spin.on = true, spin
	return nil
}

func (c *shmConn) SetReadDeadline(t time.Time) error {
	c.rdl = t
	return c.pipeConn.SetReadDeadline(t)
}

func (c *shmConn) SetWriteDeadline(t time.Time) error {
	c.wdl = t
	return c.pipeConn.SetWriteDeadline(t)
}

// Write publishes p, one whole frame (writeFrame writes each in one call).
func (c *shmConn) Write(p []byte) (int, error) {
	if !c.on {
		return c.pipeConn.Write(p)
	}
	if len(p) > shmReqCap {
		return 0, fmt.Errorf("a request of %d bytes, the shared memory holds %d", len(p), shmReqCap)
	}
	copy(c.mem[shmHeader:], p)
	c.store(shmOffReqLen, uint64(len(p)))
	c.seq++
	c.rep, c.consumed = nil, false
	c.store(shmOffReqSeq, c.seq)
	// The store above and this load are sequentially consistent: a server
	// that set its flag before looking at the sequence gets its doorbell.
	if c.load(shmOffSrvSleep) != 0 {
		if _, err := c.pipeConn.Write(doorbell); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// doorbell is the byte that wakes a sleeping server.
var doorbell = []byte{1}

// errShortReply is a reply frame that ended before its length said.
var errShortReply = errors.New("a reply frame shorter than its length prefix")

// Read reads the current reply, waiting for it first.
func (c *shmConn) Read(p []byte) (int, error) {
	if !c.on {
		return c.pipeConn.Read(p)
	}
	if len(c.rep) == 0 {
		if c.consumed {
			return 0, errShortReply
		}
		if err := c.await(); err != nil {
			return 0, err
		}
		n := c.load(shmOffRepLen)
		if rc := uint64(len(c.mem) - shmHeader - shmReqCap); n > rc {
			return 0, fmt.Errorf("%w: the server announced a reply of %d bytes in shared memory of %d", errFrameTooLarge, n, rc)
		}
		off := shmHeader + shmReqCap
		c.rep, c.consumed = c.mem[off:off+int(n)], true
	}
	n := copy(p, c.rep)
	c.rep = c.rep[n:]
	return n, nil
}

// await waits until the server has published the reply to request seq:
// spinning first, as the policy says, then sleeping on the reply pipe.
func (c *shmConn) await() error {
	if c.load(shmOffRepSeq) == c.seq {
		return nil
	}
	start := time.Now()
	if until, ok := c.spin.budget(start); ok && c.spin.spinUntil(start, until, c.replied) {
		c.spin.wait(time.Since(start))
		return nil
	}
	err := c.sleep()
	c.spin.wait(time.Since(start))
	return err
}

// replied reports whether the reply to seq is published, looking 64 times
// (a look is one load; spinUntil reads the clock between batches).
func (c *shmConn) replied() bool {
	for range 64 {
		if c.load(shmOffRepSeq) == c.seq {
			return true
		}
	}
	return false
}

// sleep waits for the reply on the pipe: a doorbell, the server's exit
// (EOF), the deadline, or a look at the sequence every shmSleepRecheck.
func (c *shmConn) sleep() error {
	c.store(shmOffCliSleep, 1)
	defer c.store(shmOffCliSleep, 0)
	for c.load(shmOffRepSeq) != c.seq {
		d := time.Now().Add(shmSleepRecheck)
		if !c.rdl.IsZero() && c.rdl.Before(d) {
			d = c.rdl
		}
		if err := c.pipeConn.SetReadDeadline(d); err != nil {
			return err
		}
		_, err := c.pipeConn.Read(c.bell[:])
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if !c.rdl.IsZero() && !time.Now().Before(c.rdl) && c.load(shmOffRepSeq) != c.seq {
				return err
			}
		case errors.Is(err, io.EOF):
			return io.EOF
		default:
			return err
		}
	}
	return nil
}

func (c *shmConn) Close() error {
	err := c.pipeConn.Close()
	if c.mem != nil {
		_ = unix.Munmap(c.mem)
		c.mem = nil
	}
	return errors.Join(err, c.f.Close())
}

// offerShm returns the stream of a worker process whose pipes are p, and
// the memory file to pass it (nil: none, the session stays on the pipes).
func offerShm(p *pipeConn) (conn, *os.File) {
	if c := newShmConn(p); c != nil {
		return c, c.f
	}
	return p, nil
}

// shmOffered says whether Start offers shared memory on this platform.
const shmOffered = true
