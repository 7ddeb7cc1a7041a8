package external

import (
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spinning for replies. A worker that replies within tens of microseconds
// (a fast env stepped in a small vector) is mostly waiting on wake-ups: a
// reader that sleeps in the poller until the reply comes is woken through
// the scheduler, and on virtual machines an idle CPU's wake-up costs tens
// of microseconds each way, as much as the env's work. So while replies
// come fast, a read first polls the stream (non-blocking reads) for about
// twice the recent wait, then sleeps as before. Slow replies (averaging
// over spinMax) are never spun for: there the wake-up is a small part.
const (
	spinMin = 20 * time.Microsecond
	spinMax = 300 * time.Microsecond
	// A poll that took spinPreempted means the spinner was descheduled: it
	// stops spinning and sleeps. If the thread, since the last such look
	// (spinWindow at least), spent a quarter of the time it could run
	// waiting for a CPU, the CPUs are busy (not
	// merely a stall of a virtual CPU), and the next reads do not spin:
	// spinBackoffMin of them, or twice as many as the last time when it
	// happens again within spinBackoffMax reads that spun, up to
	// spinBackoffMax. A busy machine thus soon stops spinning, and a burst
	// of another process's work now and then costs a few reads, not a
	// thousand.
	spinPreempted  = 20 * time.Microsecond
	spinBackoffMin = 16
	spinBackoffMax = 1000
	// spinWindow is the least time the share of waiting for a CPU is
	// measured over: over a shorter one, one brief stall (another thread
	// of this process, a kernel thread, the two spinners landing on one
	// CPU for a moment) reads as a busy machine.
	spinWindow = 10 * time.Millisecond
)

// spinPolicy decides whether a wait for the other side spins, and for
// how long.
type spinPolicy struct {
	on  bool
	avg time.Duration // moving average of the waits
	// backoff is the waits left without spinning, penalty its length the
	// last time, spun the waits that spun since; thread, ran, waited and
	// at the last look at the spinning thread's times on and waiting for a
	// CPU.
	backoff, penalty, spun int
	thread                 string
	ran, waited            time.Duration
	at                     time.Time
}

// budget says until when a wait that starts at start spins; ok is false
// when it sleeps at once.
func (s *spinPolicy) budget(start time.Time) (until time.Time, ok bool) {
	switch {
	case !s.on || s.avg >= spinMax:
		return until, false
	case s.backoff > 0:
		s.backoff--
		return until, false
	}
	s.spun++
	return start.Add(min(2*s.avg+spinMin, spinMax)), true
}

// spinReader reads c, spinning first while on and replies come fast.
type spinReader struct {
	spinPolicy
	c      conn
	raw    syscall.RawConn    // nil: c cannot be polled (TLS), never spin
	poll   spinPoll           // the spinning read under way
	pollFn func(uintptr) bool // s.spin, bound once
}

// rawConn is c's file descriptor access, if it has one.
func rawConn(c conn) syscall.RawConn {
	var rc syscall.RawConn
	var err error
	switch c := c.(type) {
	case interface{ readFile() *os.File }: // a pipe, or shared memory before it is on
		rc, err = c.readFile().SyscallConn()
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	}
	if err != nil {
		return nil
	}
	return rc
}

func (s *spinReader) Read(p []byte) (int, error) {
	if s.raw == nil || len(p) == 0 {
		return s.c.Read(p)
	}
	start := time.Now()
	if until, ok := s.budget(start); ok {
		s.poll = spinPoll{p: p, start: start, until: until}
		if s.pollFn == nil {
			s.pollFn = s.spin // bound once: a closure a read would be garbage a read
		}
		err := s.raw.Read(s.pollFn)
		n, rerr, polled := s.poll.n, s.poll.err, s.poll.polled
		s.poll = spinPoll{}
		if err == nil && polled {
			s.wait(time.Since(start))
			switch {
			case rerr != nil:
				return 0, &os.PathError{Op: "read", Path: "env stream", Err: rerr}
			case n == 0:
				return 0, io.EOF
			}
			return n, nil
		}
		// Nothing yet (or the deadline passed): sleep until it comes.
	}
	n, err := s.c.Read(p)
	s.wait(time.Since(start))
	return n, err
}

// spinPoll is one spinning read's arguments and outcome.
type spinPoll struct {
	p            []byte
	start, until time.Time
	n            int
	err          error
	polled       bool // a read returned data, EOF or an error
}

// spin reads fd without blocking until data comes, until passes, or the
// thread is found descheduled; it always ends the raw read (true).
func (s *spinReader) spin(fd uintptr) bool {
	q := &s.poll
	q.polled = s.spinUntil(q.start, q.until, func() bool {
		for {
			q.n, q.err = sysRead(syscall.Read, fd, q.p)
			if q.err != syscall.EINTR {
				return q.err != syscall.EAGAIN // data, EOF or an error
			}
		}
	})
	return true
}

// spinUntil calls poll until it reports what was waited for (true), until
// passes, or the thread is found descheduled (false).
func (s *spinPolicy) spinUntil(start, until time.Time, poll func() bool) bool {
	for last := start; ; {
		if poll() {
			return true
		}
		// A poll takes a microsecond: a long one means this thread was
		// descheduled, the CPUs are busy, and spinning would take one from
		// the worker.
		now := time.Now()
		if now.Sub(last) > spinPreempted {
			s.descheduled(now)
			return false
		}
		if now.After(until) {
			return false
		}
		last = now
	}
}

// descheduled looks at how long the spinning thread has run and waited for
// a CPU (Linux's schedstat) since the last look; waiting a quarter of the
// time or more means other processes want the CPUs, and spinning backs off.
func (s *spinPolicy) descheduled(now time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	thread, err := os.Readlink("/proc/thread-self")
	if err != nil {
		return
	}
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 2 {
		return
	}
	ran, err1 := strconv.ParseInt(f[0], 10, 64)
	waited, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	dRan, dWaited := time.Duration(ran)-s.ran, time.Duration(waited)-s.waited
	switch {
	case thread != s.thread:
	case now.Sub(s.at) < spinWindow:
		return // judged over a longer time: the baseline stays
	case 4*dWaited > dRan+dWaited:
		s.penalty = nextBackoff(s.penalty, s.spun)
		s.backoff, s.spun = s.penalty, 0
	}
	s.thread, s.ran, s.waited, s.at = thread, time.Duration(ran), time.Duration(waited), now
}

// nextBackoff is the number of reads not to spin for after the CPUs were
// found busy, when the last backoff was last reads long and spun reads
// spun since it ended: twice as long when it was recent, else the least.
func nextBackoff(last, spun int) int {
	if spun >= spinBackoffMax {
		return spinBackoffMin
	}
	return min(max(2*last, spinBackoffMin), spinBackoffMax)
}

// wait folds one wait into the moving average (weight 1/8).
func (s *spinPolicy) wait(d time.Duration) { s.avg += (d - s.avg) / 8 }

// sysRead is read(2) on fd for any platform's type of descriptor.
func sysRead[F ~int | ~uintptr](read func(F, []byte) (int, error), fd uintptr, p []byte) (int, error) {
	return read(F(fd), p)
}
