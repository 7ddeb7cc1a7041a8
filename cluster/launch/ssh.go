package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// HostError is a failure on one host: the one line Launch, Down, Status
// and Logs end with names the host, its SSH address and the problem.
type HostError struct {
	Host string // node name
	Addr string // SSH address
	Err  error
}

func (e *HostError) Error() string {
	return fmt.Sprintf("host %s (%s): %v", e.Host, e.Addr, e.Err)
}
func (e *HostError) Unwrap() error { return e.Err }

func hostErr(h *Host, format string, args ...any) error {
	return &HostError{Host: h.Name, Addr: h.Addr(), Err: fmt.Errorf(format, args...)}
}

// conn is an SSH connection to one host. Its sessions may run concurrently.
type conn struct {
	h      *Host
	client *ssh.Client
}

// dial connects and logs in to h, checking its host key. Each failure is a
// *HostError that says which step failed: the network (unreachable), the
// host key (unknown, mismatch), or the login (refused keys).
func dial(ctx context.Context, h *Host) (*conn, error) {
	check, err := newHostKeyCheck(h)
	if err != nil {
		return nil, hostErr(h, "%v", err)
	}
	auth, offered, err := authMethods(h)
	if err != nil {
		return nil, hostErr(h, "%v", err)
	}
	cfg := &ssh.ClientConfig{
		User: h.SSH.User, Auth: auth, HostKeyCallback: check.callback, HostKeyAlgorithms: check.algorithms,
		Timeout: h.SSH.Timeout,
	}
	d := net.Dialer{Timeout: h.SSH.Timeout}
	nc, err := d.DialContext(ctx, "tcp", h.Addr())
	if err != nil {
		return nil, hostErr(h, "unreachable: %v", unwrapOp(err))
	}
	// The handshake has the same deadline as the dial: a port that
	// accepts and then says nothing (not sshd) must not hang the launch.
	if err := nc.SetDeadline(time.Now().Add(h.SSH.Timeout)); err != nil {
		nc.Close()
		return nil, hostErr(h, "%v", err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, h.Addr(), cfg)
	if err != nil {
		nc.Close()
		return nil, hostErr(h, "%v", handshakeError(err, h, offered))
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, hostErr(h, "%v", err)
	}
	return &conn{h: h, client: ssh.NewClient(c, chans, reqs)}, nil
}

// unwrapOp drops the "dial tcp ADDR:" that *net.OpError repeats.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// handshakeError says in words what failed in the SSH handshake: the host
// key check's own error passes through.
func handshakeError(err error, h *Host, offered string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "host key"):
		return errors.New(strings.TrimPrefix(msg, "ssh: handshake failed: "))
	case strings.Contains(msg, "unable to authenticate"):
		return fmt.Errorf("SSH login as %s refused with %s: is its public key in the host's authorized_keys?", h.SSH.User, offered)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF):
		return fmt.Errorf("no SSH server answered on port %d (%v)", h.SSH.Port, unwrapOp(err))
	}
	return err
}

// authMethods are the public keys h's login offers: its key files, then
// ssh-agent's keys. offered says which, for the message when all are refused.
func authMethods(h *Host) ([]ssh.AuthMethod, string, error) {
	var signers []ssh.Signer
	var names []string
	for _, path := range h.SSH.Keys {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("ssh.key: %v", err)
		}
		s, err := ssh.ParsePrivateKey(data)
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return nil, "", fmt.Errorf("ssh.key %s is encrypted: add it to ssh-agent (ssh-add) and set ssh.agent: true", path)
		}
		if err != nil {
			return nil, "", fmt.Errorf("ssh.key %s: %v", path, err)
		}
		signers = append(signers, s)
		names = append(names, "key "+path)
	}
	methods := []ssh.AuthMethod{}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if h.SSH.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, "", errors.New("ssh.agent: SSH_AUTH_SOCK is not set (no ssh-agent running here)")
		}
		ac, err := net.Dial("unix", sock)
		if err != nil {
			return nil, "", fmt.Errorf("ssh.agent: %v", unwrapOp(err))
		}
		// The agent's connection lives as long as the process: the
		// commands are short.
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
		names = append(names, "ssh-agent's keys")
	}
	return methods, strings.Join(names, " and "), nil
}

func (c *conn) Close() error { return c.client.Close() }

// run runs a POSIX sh script on the host with stdin (may be nil) and
// returns its stdout. The script goes to sh -c whatever the login shell.
// A non-zero exit is an error with the last line the script wrote to
// stderr. Cancelling ctx ends the session.
func (c *conn) run(ctx context.Context, script string, stdin io.Reader) (string, error) {
	var out, errb bytes.Buffer
	err := c.stream(ctx, script, stdin, &out, &errb)
	if err != nil {
		if line := lastLine(errb.String()); line != "" {
			err = fmt.Errorf("%s", line)
		}
		return out.String(), err
	}
	return out.String(), nil
}

// stream is run with the script's output written as it comes.
func (c *conn) stream(ctx context.Context, script string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := c.client.NewSession()
	if err != nil {
		return fmt.Errorf("SSH session: %v", err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start("sh -c " + shq(script)); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// Ask the command to end (sshd passes signals on since OpenSSH
		// 7.9), then close: a tail -f must not outlive us.
		_ = s.Signal(ssh.SIGTERM) // best effort: closing the session below ends it too
		s.Close()
		<-done
		return ctx.Err()
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// httpGet fetches http://addr/path as seen from the host, through the SSH
// connection (a direct-tcpip channel: sshd dials addr), so a dashboard
// bound to the host's loopback is reachable.
func (c *conn) httpGet(ctx context.Context, addr, path string) ([]byte, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return c.client.DialContext(ctx, network, a)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return nil, fmt.Errorf("GET %s%s through SSH: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %v", addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", addr, path, resp.Status)
	}
	return body, nil
}

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// connectAll dials every host at once. It returns the connections by host
// name and the failures, one per host that failed, in the file's order.
func connectAll(ctx context.Context, hosts []*Host) (map[string]*conn, []error) {
	var mu sync.Mutex
	out := map[string]*conn{}
	failed := forEach(hosts, func(h *Host) error {
		c, err := dial(ctx, h)
		if err == nil {
			mu.Lock()
			out[h.Name] = c
			mu.Unlock()
		}
		return err
	})
	return out, failed
}

func closeAll(conns map[string]*conn) {
	for _, c := range conns {
		c.Close()
	}
}

// forEach runs f for every host at once and returns the failures in the
// file's order.
func forEach(hosts []*Host, f func(h *Host) error) []error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(h)
		}()
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// oneLine joins the failures of several hosts into the one line a command
// ends with.
func oneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = strings.ReplaceAll(e.Error(), "\n", `\n`)
	}
	return &MultiError{Errs: errs, text: strings.Join(parts, "; ")}
}

// MultiError is the failures of several hosts, one line.
type MultiError struct {
	Errs []error
	text string
}

func (e *MultiError) Error() string   { return e.text }
func (e *MultiError) Unwrap() []error { return e.Errs }
