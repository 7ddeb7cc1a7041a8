package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// The other sides of a benchmark are processes of the qfleet binary (see
// Executable): a child prints "ready ADDRESS" on stdout once its remote is
// up, then answers commands read from stdin, one per line; it exits on
// "stop" or when stdin closes, so a child never outlives its parent (the
// parent also kills it on every exit).

// child is one benchmark process started from this one.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // stdout, line by line; closed at EOF
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's result, once done is closed
	tail  *tailWriter   // the end of its stderr, for error messages
}

// startChild runs Executable as `bench --bench-child kind args...`.
func startChild(name, kind string, args ...string) (*child, error) {
	exe, err := Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the qfleet binary to start the %s process: %v", name, err)
	}
	c := &child{name: name, lines: make(chan string, 64), done: make(chan struct{}), tail: &tailWriter{}}
	c.cmd = exec.Command(exe, append([]string{"bench", ChildArg, kind}, args...)...)
	lw := &lineWriter{ch: c.lines}
	c.cmd.Stdout, c.cmd.Stderr = lw, c.tail
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start %s process: %v", name, err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait() // also waits for stdout and stderr to be copied
		lw.close()
		close(c.done)
	}()
	return c, nil
}

// exited describes a child that ended before it was asked to.
func (c *child) exited() error {
	msg := fmt.Sprintf("the %s process exited", c.name)
	if c.err != nil {
		msg += " (" + c.err.Error() + ")"
	}
	if l := c.tail.lastLine(); l != "" {
		msg += ": " + l
	}
	return errors.New(msg)
}

// readLine returns the child's next stdout line.
func (c *child) readLine(timeout time.Duration, what string) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			return "", c.exited()
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("the %s process gave no %s within %v", c.name, what, timeout)
	}
}

// ready waits for "ready ADDRESS" and returns the address.
func (c *child) ready(timeout time.Duration) (string, error) {
	l, err := c.readLine(timeout, "ready line")
	if err != nil {
		return "", err
	}
	addr, ok := strings.CutPrefix(l, "ready ")
	if !ok {
		return "", fmt.Errorf("the %s process said %q, want \"ready ADDRESS\"", c.name, l)
	}
	return addr, nil
}

func (c *child) command(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		select {
		case <-c.done:
			return c.exited()
		case <-time.After(time.Second):
		}
		return fmt.Errorf("the %s process does not take commands: %v", c.name, err)
	}
	return nil
}

// sleep waits d, unless the child exits or ctx is cancelled first.
func (c *child) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return c.exited()
	case <-ctx.Done():
		return ErrInterrupted
	case <-t.C:
		return nil
	}
}

// stop closes the child's stdin (it exits on EOF), gives it a moment, then
// kills it. Safe to call more than once.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(2 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// lineWriter turns a child's stdout into lines on a channel.
type lineWriter struct {
	mu     sync.Mutex
	buf    []byte
	ch     chan string
	closed bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		if !w.closed {
			select {
			case w.ch <- line:
			default: // nobody reads that many lines: drop
			}
		}
	}
	return len(p), nil
}

func (w *lineWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// tailWriter keeps the last 4 KiB written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf); n > 4096 {
		t.buf = append(t.buf[:0], t.buf[n-4096:]...)
	}
	return len(p), nil
}

func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// childCommands reads commands from stdin and hands each to do until "stop"
// or EOF (the parent is gone).
func childCommands(do func(cmd string)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd := strings.TrimSpace(sc.Text())
		if cmd == "stop" {
			return
		}
		do(cmd)
	}
}

// Child is the body of a child process: the arguments after
// "bench --bench-child" name its kind and carry its flags, written by the
// parent (an error in them is a bug, not a user's mistake).
func Child(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(ChildArg + " needs a kind")
	}
	switch args[0] {
	case "wire-sender":
		return childWireSender(args[1:], stdout, stderr)
	case "weights-runner":
		return childWeightsRunner(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%s: unknown kind %q", ChildArg, args[0])
}

// childFlags parses a child's flags (written by the parent; errors are bugs).
func childFlags(name string, args []string, stderr io.Writer, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	define(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return nil
}
