// Package external steps environments that live outside the Go process: in
// worker processes it starts (Start, the subprocess transport) or in an env
// server already running on some host (Dial, the address transport), in any
// language that speaks the env protocol (messages/env.proto,
// docs/env-protocol.md; python/qfleet_env.py serves any Gymnasium-API env).
//
// Either way the result is an envs.VecEnv: one protocol message per worker
// per step for the whole vector, the observations one packed buffer. Every
// reply is checked against the spec the handshake gave (lengths, dtype,
// finite values), and every failure of the far side (an exception, a
// process that exits, a reply that does not come within Options.Timeout, a
// broken reply) is one error from Reset or Step, never a panic or a hang.
// After an error the vector stays broken (every call returns that error)
// until Close.
package external

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages/envpb"
)

// DefaultTimeout is how long a reply may take when Options.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// closeGrace is how long Close lets a worker process exit on its own
// before it kills it.
const closeGrace = 3 * time.Second

// Options configure a vector of external envs. Command, Dir, Env,
// Workers and Stderr are the subprocess transport's (Start), TLS the
// address transport's (Dial); the rest serve both.
type Options struct {
	// Command starts one worker process (Start): a program and its
	// arguments separated by spaces; single or double quotes group an
	// argument with spaces. No shell runs it.
	Command string
	// Dir is the workers' working directory (the caller's if empty), Env
	// extra "KEY=value" variables added to the caller's environment.
	Dir string
	Env []string
	// Envs is the vector's length. Start splits it over the workers (at
	// least 1 each); Dial asks the server for that many (0: the server's
	// default).
	Envs int
	// Workers is the number of worker processes Start runs (default 1).
	// They step their slices of the vector in parallel.
	Workers int
	// ID names the env in the Spec instead of the id the handshake gives.
	ID string
	// Timeout bounds the wait for every reply, the handshake's included
	// (DefaultTimeout if 0). A worker process that misses it is killed.
	Timeout time.Duration
	// Stderr receives the lines the worker processes print (stdout and
	// stderr), each prefixed "env worker N: "; nil discards them. Errors
	// quote a worker's last lines either way.
	Stderr io.Writer
	// TLS, when set, makes Dial speak TLS (ServerName defaults to the
	// address's host).
	TLS *tls.Config
	// NoSharedMemory keeps Start's sessions on their pipes: no shared
	// memory is offered to the worker processes (ShmVar).
	NoSharedMemory bool
}

// sharedMemory is a stream that moves to shared memory once the handshake
// says the server took it and how large a reply can be.
type sharedMemory interface {
	start(maxReply int, spin bool) error
}

// conn is a worker's byte stream with deadlines: a TCP (or TLS)
// connection, or a process's pair of pipes.
type conn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// worker is one session of the protocol, serving envs [first, first+n) of
// the vector.
type worker struct {
	name     string // for errors: "env worker 1 (pid 123)", "env server host:port"
	first, n int
	c        conn
	br       *bufio.Reader
	sr       spinReader // br's source: c, read by spinning while replies come fast
	proc     *process   // nil over the address transport
	shm      bool       // the server took shared memory
	limit    int        // the largest reply frame accepted
	timeout  time.Duration
	rbuf     []byte
	wbuf     []byte
	scratch  []byte // a step reply's packed fields when it came another way (viewOf)
	reply    envpb.Reply
	stepReq  envpb.Request
	step     envpb.Step
}

func newWorker(name string, c conn, n int, timeout time.Duration) *worker {
	w := &worker{name: name, n: n, c: c, limit: handshakeMaxFrame, timeout: timeout}
	w.sr.c, w.sr.raw = c, rawConn(c)
	w.br = bufio.NewReaderSize(&w.sr, 64<<10)
	w.stepReq.Kind = &envpb.Request_Step{Step: &w.step}
	return w
}

func (w *worker) send(req *envpb.Request, deadline time.Time) error {
	if err := w.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var err error
	w.wbuf, err = writeFrame(w.c, w.wbuf, req)
	return err
}

// recv reads the next reply into w.reply; an Error reply is returned as
// an error.
func (w *worker) recv(deadline time.Time) error {
	if err := w.readReply(deadline); err != nil {
		return err
	}
	return w.decode()
}

// readReply reads the next reply frame into w.rbuf.
func (w *worker) readReply(deadline time.Time) error {
	if err := w.c.SetReadDeadline(deadline); err != nil {
		return err
	}
	var err error
	w.rbuf, err = readFrame(w.br, w.rbuf, w.limit)
	return err
}

// decode decodes the frame in w.rbuf into w.reply; an Error reply is
// returned as an error.
func (w *worker) decode() error {
	if err := unmarshalReply(w.rbuf, &w.reply); err != nil {
		return err
	}
	if e := w.reply.GetError(); e != nil {
		return &replyErr{replyError(e)}
	}
	return nil
}

// replyErr marks an error the far side reported itself: it needs no
// quoting of the process's output (the message has the traceback).
type replyErr struct{ error }

func (e *replyErr) Unwrap() error { return e.error }

// fail turns a failure of op into the error the vector reports: why (the
// timeout, the process's exit and status) and the process's last lines.
func (w *worker) fail(op string, err error) error {
	var re *replyErr
	reported := errors.As(err, &re)
	switch {
	case reported:
	case errors.Is(err, errDeadline):
		err = fmt.Errorf("no reply within %v", w.timeout)
		if w.proc != nil {
			w.proc.kill()
			err = fmt.Errorf("%w; killed the process", err)
		}
	case w.proc != nil && streamEnded(err) && w.proc.exited(2*time.Second),
		w.proc != nil && w.proc.exited(0):
		err = fmt.Errorf("the process exited (%s)", w.proc.status())
	}
	err = fmt.Errorf("%s: %s: %w", w.name, op, err)
	if w.proc != nil && !reported {
		if out := w.proc.out.String(); out != "" {
			err = fmt.Errorf("%w; its last output:\n%s", err, out)
		}
	}
	return err
}

// streamEnded says whether err is the far side going away (its process
// exiting, most likely), not a reply that was wrong.
func streamEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed)
}

// vec is the VecEnv of one or more workers.
type vec struct {
	spec    envs.Spec
	l       layout
	ws      []*worker
	n       int
	timeout time.Duration
	obs     []float32
	step    envs.VecStep
	ready   bool
	err     error // the first failure; the vector is broken after it
	closed  bool
	req     envpb.Request
}

// handshake greets every worker, checks that they serve one spec, and
// sizes the vector. ctx bounds it as well as the timeout.
func handshake(ctx context.Context, ws []*worker, o Options) (*vec, error) {
	v := &vec{ws: ws, timeout: o.Timeout}
	deadline := time.Now().Add(o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A cancelled ctx cuts the wait short through the deadlines.
	stop := context.AfterFunc(ctx, func() {
		for _, w := range ws {
			_ = w.c.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	for _, w := range ws {
		hello := &envpb.Request{Kind: &envpb.Request_Hello{Hello: &envpb.Hello{ProtocolVersion: ProtocolVersion, NumEnvs: uint32(w.n)}}}
		if err := w.send(hello, deadline); err != nil {
			return nil, w.fail("hello", err)
		}
	}
	for i, w := range ws {
		err := w.recv(deadline)
		if err == nil && w.reply.GetHandshake() == nil {
			err = fmt.Errorf("a %T reply, want a handshake", w.reply.GetKind())
		}
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, w.fail("handshake", err)
		}
		spec, n, err := specOf(w.reply.GetHandshake(), w.n)
		if err != nil {
			return nil, w.fail("handshake", err)
		}
		if _, offered := w.c.(sharedMemory); w.reply.GetHandshake().GetSharedMemory() && !offered {
			return nil, w.fail("handshake", errors.New("the server says it took shared memory, which was not offered"))
		}
		w.shm = w.reply.GetHandshake().GetSharedMemory()
		if i > 0 && !sameSpec(spec, v.spec) {
			return nil, w.fail("handshake", fmt.Errorf("spec %+v differs from worker 0's %+v", spec, v.spec))
		}
		v.spec, w.n, w.first = spec, n, v.n
		v.n += n
	}
	if o.ID != "" {
		v.spec.ID = o.ID
	}
	if v.spec.ID == "" {
		return nil, errors.New("the env's handshake gives no id: set Options.ID")
	}
	v.l = layoutOf(v.spec)
	// Spinning for replies needs a CPU of its own: one per worker process
	// and one for the waiting goroutine, or it slows the workers it waits for.
	spin := runtime.GOOS == "linux" && len(ws) < runtime.NumCPU()
	for _, w := range ws {
		w.limit = v.l.maxReply(w.n)
		w.sr.on = spin
		if w.shm {
			if err := w.c.(sharedMemory).start(w.limit, spin); err != nil {
				return nil, w.fail("handshake", err)
			}
			w.sr.raw = nil // the pipe now carries doorbells: the shared memory spins itself
		}
	}
	v.obs = make([]float32, v.n*v.l.obsSize)
	v.step = envs.VecStep{Obs: v.obs, Rewards: make([]float64, v.n), Terminated: make([]bool, v.n),
		Truncated: make([]bool, v.n), Final: make([]float32, v.n*v.l.obsSize)}
	return v, nil
}

func sameSpec(a, b envs.Spec) bool {
	return a.ID == b.ID && slices.Equal(a.ObsShape, b.ObsShape) && a.ObsDType == b.ObsDType && a.NumActions == b.NumActions &&
		a.MaxEpisodeSteps == b.MaxEpisodeSteps && a.RewardThreshold == b.RewardThreshold
}

func (v *vec) Spec() envs.Spec { return v.spec }
func (v *vec) Len() int        { return v.n }

func (v *vec) usable() error {
	if v.closed {
		return errors.New("external env: used after Close")
	}
	return v.err
}

func (v *vec) Reset(seeds []int64) ([]float32, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if len(seeds) != v.n {
		return nil, fmt.Errorf("reset: %d seeds for %d envs", len(seeds), v.n)
	}
	deadline := time.Now().Add(v.timeout)
	for _, w := range v.ws {
		v.req.Kind = &envpb.Request_ResetEnvs{ResetEnvs: &envpb.Reset{Seeds: seeds[w.first : w.first+w.n]}}
		if err := w.send(&v.req, deadline); err != nil {
			return nil, v.broken(w.fail("reset", err))
		}
	}
	for _, w := range v.ws {
		err := w.recv(deadline)
		if err == nil {
			if r := w.reply.GetResetResult(); r == nil {
				err = fmt.Errorf("a %T reply to reset", w.reply.GetKind())
			} else {
				err = v.l.decodeObs(v.obs[w.first*v.l.obsSize:], r.GetObservations(), w.n, "observations")
			}
		}
		if err != nil {
			return nil, v.broken(w.fail("reset", err))
		}
	}
	v.ready = true
	return v.obs, nil
}

func (v *vec) Step(actions []int32) (*envs.VecStep, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if !v.ready {
		return nil, errors.New("step before reset")
	}
	if len(actions) != v.n {
		return nil, fmt.Errorf("step: %d actions for %d envs", len(actions), v.n)
	}
	for i, a := range actions {
		if a < 0 || int(a) >= v.spec.NumActions {
			return nil, fmt.Errorf("step: action %d for env %d, want 0..%d", a, i, v.spec.NumActions-1)
		}
	}
	// Every worker gets its actions before any reply is read, so they
	// step in parallel.
	deadline := time.Now().Add(v.timeout)
	for _, w := range v.ws {
		w.step.Actions = actions[w.first : w.first+w.n]
		if err := w.send(&w.stepReq, deadline); err != nil {
			return nil, v.broken(w.fail("step", err))
		}
	}
	s, m := &v.step, v.l.obsSize
	for _, w := range v.ws {
		r, err := w.recvStep(deadline)
		if err == nil {
			a, b := w.first, w.first+w.n
			err = v.l.stepInto(r, w.n, v.obs[a*m:b*m], s.Rewards[a:b], s.Terminated[a:b], s.Truncated[a:b], s.Final[a*m:b*m])
		}
		if err != nil {
			return nil, v.broken(w.fail("step", err))
		}
	}
	s.Obs = v.obs
	return s, nil
}

func (v *vec) broken(err error) error {
	v.err = err
	return err
}

// Close asks every worker to end, closes the connections, and ends the
// worker processes: each gets closeGrace to exit, then it (and any
// process it started) is killed. No process is left behind.
func (v *vec) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	closeWorkers(v.ws)
	return nil
}

func closeWorkers(ws []*worker) {
	bye := &envpb.Request{Kind: &envpb.Request_Close{Close: &envpb.Close{}}}
	for _, w := range ws {
		if w.proc == nil || !w.proc.exited(0) {
			_ = w.send(bye, time.Now().Add(100*time.Millisecond))
		}
		_ = w.c.Close()
	}
	for _, w := range ws {
		if w.proc != nil {
			w.proc.stop(closeGrace)
		}
	}
}

// Dial connects to an env server at addr ("host:port"), over TLS if
// o.TLS is set, and returns the vector of envs it serves: o.Envs of them,
// or the server's default number if 0. ctx bounds the connection and the
// handshake.
func Dial(ctx context.Context, addr string, o Options) (envs.VecEnv, error) {
	o = o.withDefaults()
	if o.Envs < 0 {
		return nil, fmt.Errorf("external env: %d envs", o.Envs)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("external env: %w", err)
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("external env: TLS with %s: %w", addr, err)
		}
		c = tc
	}
	ws := []*worker{newWorker("env server "+addr, c, o.Envs, o.Timeout)}
	v, err := handshake(ctx, ws, o)
	if err != nil {
		closeWorkers(ws)
		return nil, err
	}
	return v, nil
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	return o
}
