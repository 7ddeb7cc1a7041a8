package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages/envpb"
	"google.golang.org/protobuf/proto"
)

// errDeadline is what a read or write past its deadline returns, on pipes
// and connections alike.
var errDeadline = os.ErrDeadlineExceeded

// FDsVar is the environment variable that tells a worker process where the
// protocol runs: "3,4", the file descriptors it reads requests from and
// writes replies to. Its stdin, stdout and stderr stay its own, so what an
// env prints cannot break the protocol.
const FDsVar = "QFLEET_ENV_FDS"

// WorkerVar and FirstVar tell a worker process its index and the index in
// the vector of its first env (for envs that log or render per env).
const (
	WorkerVar = "QFLEET_ENV_WORKER"
	FirstVar  = "QFLEET_ENV_FIRST"
)

// tailLines is how many of a process's last output lines errors quote.
const tailLines = 20

// Start runs o.Workers processes of o.Command, each serving its slice of
// a vector of o.Envs envs over the protocol on file descriptors 3 and 4
// (FDsVar), and returns the vector. ctx bounds the start and the
// handshakes; the processes live until Close.
func Start(ctx context.Context, o Options) (envs.VecEnv, error) {
	o = o.withDefaults()
	argv, err := splitCommand(o.Command)
	if err != nil {
		return nil, fmt.Errorf("external env: command %q: %w", o.Command, err)
	}
	if o.Envs < 1 || o.Workers < 1 || o.Workers > o.Envs {
		return nil, fmt.Errorf("external env: %d envs over %d workers: want at least 1 env per worker", o.Envs, o.Workers)
	}
	ws := make([]*worker, 0, o.Workers)
	first := 0
	for i := range o.Workers {
		n := o.Envs / o.Workers
		if i < o.Envs%o.Workers {
			n++
		}
		w, err := startWorker(argv, o, i, first, n)
		if err != nil {
			closeWorkers(ws)
			return nil, err
		}
		ws = append(ws, w)
		first += n
	}
	v, err := handshake(ctx, ws, o)
	if err != nil {
		closeWorkers(ws)
		return nil, err
	}
	return v, nil
}

// startWorker starts one worker process with the protocol's pipes as its
// file descriptors 3 (requests) and 4 (replies).
func startWorker(argv []string, o Options, idx, first, n int) (*worker, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("external env: %w", err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("external env: %w", err)
	}
	prefix := fmt.Sprintf("env worker %d: ", idx)
	p := &process{out: &tail{prefix: prefix, dst: o.Stderr}, done: make(chan struct{})}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Env = append(cmd.Env, FDsVar+"=3,4", WorkerVar+"="+strconv.Itoa(idx), FirstVar+"="+strconv.Itoa(first))
	cmd.ExtraFiles = []*os.File{reqR, repW}
	pipes := &pipeConn{r: repR, w: reqW}
	var c conn = pipes
	var shm *os.File
	if !o.NoSharedMemory {
		c, shm = offerShm(pipes)
	}
	if shm != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, shm)
		cmd.Env = append(cmd.Env, ShmVar+"="+strconv.Itoa(ShmFD))
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipe open must not hold up Wait.
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	// The child has its own copies of its ends now.
	reqR.Close()
	repW.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("external env: worker %d: %w", idx, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	name := fmt.Sprintf("env worker %d (pid %d)", idx, cmd.Process.Pid)
	w := newWorker(name, c, n, o.Timeout)
	w.proc = p
	return w, nil
}

// pipeConn is a worker process's protocol stream: the read end of its
// reply pipe and the write end of its request pipe.
type pipeConn struct{ r, w *os.File }

// ShmVar is the environment variable that offers a worker process shared
// memory for the protocol's frames: the file descriptor of a memory file
// (ShmFD). A server that takes it says so in its handshake
// (Handshake.shared_memory); one that does not know it ignores it.
const ShmVar = "QFLEET_ENV_SHM"

// ShmFD is the file descriptor a worker process finds the shared memory
// on, after the protocol's pipes (3 and 4).
const ShmFD = 5

// readFile is the file a pipe stream reads, which spinning polls.
func (c *pipeConn) readFile() *os.File { return c.r }

func (c *pipeConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error)        { return c.w.Write(p) }
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }
func (c *pipeConn) Close() error                       { return errors.Join(c.w.Close(), c.r.Close()) }

// process is a running worker process.
type process struct {
	cmd     *exec.Cmd
	out     *tail
	done    chan struct{} // closed when Wait returned
	waitErr error
}

// exited reports whether the process has exited, waiting up to d.
func (p *process) exited(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// status describes how the process ended; call after exited.
func (p *process) status() string {
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ProcessState.String()
	}
	if p.waitErr != nil {
		return p.waitErr.Error()
	}
	return "exit status 0"
}

// kill kills the process and every process it started (its group).
func (p *process) kill() { killGroup(p.cmd.Process) }

// stop waits up to grace for the process to exit, kills it if it did not,
// and always kills what is left of its group (an env's own children).
func (p *process) stop(grace time.Duration) {
	if !p.exited(grace) {
		p.kill()
	}
	<-p.done
	killGroup(p.cmd.Process)
}

// tail forwards a process's output lines to dst and keeps the last ones.
type tail struct {
	prefix  string
	dst     io.Writer
	mu      sync.Mutex
	partial []byte
	lines   []string
}

// maxLine cuts lines that never end, so a process printing without
// newlines cannot grow the buffer without bound.
const maxLine = 4096

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 && len(t.partial) < maxLine {
			break
		}
		if i < 0 {
			i = maxLine
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[min(i+1, len(t.partial)):]
	}
	t.partial = append(t.partial[:0:0], t.partial...)
	return len(p), nil
}

func (t *tail) line(s string) {
	if t.dst != nil {
		// The node's log may fail; the process must not stall on it.
		_, _ = io.WriteString(t.dst, t.prefix+s+"\n")
	}
	t.lines = append(t.lines, s)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// String is the last lines, with an unfinished one at the end.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	if len(t.partial) > 0 {
		if s != "" {
			s += "\n"
		}
		s += string(t.partial)
	}
	return s
}

// splitCommand splits a command line at spaces; single or double quotes
// group an argument that holds spaces.
func splitCommand(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, errors.New("an unclosed quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("no program")
	}
	return args, nil
}

// unmarshalReply decodes one reply frame's message.
func unmarshalReply(b []byte, r *envpb.Reply) error {
	if err := proto.Unmarshal(b, r); err != nil {
		return fmt.Errorf("a reply that is not a protocol message: %w", err)
	}
	return nil
}
