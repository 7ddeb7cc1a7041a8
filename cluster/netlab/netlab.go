// Package netlab runs multi-host tests of a distributed system on one Linux
// machine, using network namespaces as "hosts".
//
// Topology of one Lab (every box is a network namespace; the root namespace
// of the machine is not touched at all):
//
//	 ns qf<pid>-<n>-A        ns qf<pid>-<n>-B        ns qf<pid>-<n>-C
//	+----------------+      +----------------+      +----------------+
//	| lo             |      | lo             |      | lo             |
//	| eth0 10.X.Y.10 |      | eth0 10.X.Y.11 |      | eth0 10.X.Y.12 |
//	+-------+--------+      +-------+--------+      +-------+--------+
//	        | veth [tbf]            | veth [tbf]            | veth [tbf]
//	+-------+-----------------------+-----------------------+--------+
//	|     [tbf] p0              [tbf] p1              [tbf] p2       |
//	|                       br0 (Linux bridge)                       |
//	|                 ns qf<pid>-<n>   (the "switch")                |
//	+----------------------------------------------------------------+
//
// Each host has one veth pair: "eth0" in the host's namespace and "p<i>" in
// the switch namespace, enslaved to bridge br0. LimitLink puts a tbf qdisc on
// the egress of both ends (so both directions of the host's link are shaped);
// CutLink/HealLink set the switch-side end down/up, which partitions that one
// host from all others. The switch namespace has no address, and since
// nothing connects it to the root namespace, lab addresses are unreachable
// from the root namespace (and from other labs). Each Lab still gets its own
// 10.X.Y.0/24 subnet so addresses in logs are not ambiguous between labs.
//
// Why tbf and not netem: the sch_netem module is not available on the kernel
// this project's machines run ("Specified qdisc kind is unknown"), so there is
// no artificial delay, loss or reordering. tbf (token bucket filter) gives a
// bandwidth limit, and its latency parameter only bounds the queue length.
// Note that tbf shapes layer-2 bytes, so TCP goodput is roughly 5% below the
// configured rate.
//
// Namespaces are named qf<pid>-<n>[-<host>], where pid is the test process
// and n a per-process counter, so parallel tests and parallel test binaries
// never clash. New removes namespaces of this scheme whose owning pid is no
// longer alive (leftovers of a crashed run). Everything requires root and the
// iproute2 tools (ip, tc); Require checks both and installs iproute2 with
// apt-get if it is missing.
//
// Processes run in a host with `ip netns exec`: use Host.Command for a plain
// *exec.Cmd or Host.Start for a tracked process whose output is logged when
// the test fails. At cleanup every process still in a lab namespace is
// killed and the namespaces are deleted.
package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// Lab is a set of hosts in network namespaces joined by a bridge that lives
// in a dedicated switch namespace.
type Lab struct {
	t      testing.TB
	prefix string // "qf<pid>-<n>", also the switch namespace's name
	subnet string // "10.X.Y."
	hosts  map[string]*Host
	order  []*Host

	mu    sync.Mutex
	procs []*Process
}

// Host is one namespace of a Lab.
type Host struct {
	lab   *Lab
	name  string
	ns    string
	addr  string
	index int
}

var (
	labCounter atomic.Int64
	nsPattern  = regexp.MustCompile(`^qf([0-9]+)-([0-9]+)(-.+)?$`)
	hostName   = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
)

const hostOffset = 10 // first host gets .10

// New creates a Lab with the given hosts (at most 200, names of letters,
// digits, '_' and '.'). It calls Require, removes stale namespaces of crashed
// runs, and registers a cleanup on t that kills every process in the lab's
// namespaces and deletes them. Any setup failure is fatal to the test.
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	Require(t)
	if len(hosts) == 0 || len(hosts) > 200 {
		t.Fatalf("netlab: need 1..200 hosts, got %d", len(hosts))
	}
	removeStale(t)

	pid := os.Getpid()
	n := labCounter.Add(1) - 1
	l := &Lab{
		t:      t,
		prefix: fmt.Sprintf("qf%d-%d", pid, n),
		subnet: fmt.Sprintf("10.%d.%d.", 100+pid%128, n%256),
		hosts:  map[string]*Host{},
	}
	for i, name := range hosts {
		if !hostName.MatchString(name) {
			t.Fatalf("netlab: bad host name %q", name)
		}
		if l.hosts[name] != nil {
			t.Fatalf("netlab: duplicate host name %q", name)
		}
		h := &Host{lab: l, name: name, ns: l.prefix + "-" + name,
			addr: l.subnet + strconv.Itoa(hostOffset+i), index: i}
		l.hosts[name] = h
		l.order = append(l.order, h)
	}
	// Register cleanup before creating anything so partial setups go away.
	t.Cleanup(l.cleanup)

	sw := l.prefix
	steps := [][]string{
		{"ip", "netns", "add", sw},
		{"ip", "-n", sw, "link", "set", "lo", "up"},
		{"ip", "-n", sw, "link", "add", "br0", "type", "bridge", "stp_state", "0"},
		{"ip", "-n", sw, "link", "set", "br0", "up"},
	}
	for _, h := range l.order {
		port := h.port()
		steps = append(steps,
			[]string{"ip", "netns", "add", h.ns},
			[]string{"ip", "-n", h.ns, "link", "set", "lo", "up"},
			[]string{"ip", "link", "add", "eth0", "netns", h.ns, "type", "veth",
				"peer", "name", port, "netns", sw},
			[]string{"ip", "-n", sw, "link", "set", port, "master", "br0"},
			[]string{"ip", "-n", sw, "link", "set", port, "up"},
			[]string{"ip", "-n", h.ns, "addr", "add", h.addr + "/24", "dev", "eth0"},
			[]string{"ip", "-n", h.ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatalf("netlab: setting up lab %s: %v", l.prefix, err)
		}
	}
	return l
}

// Host returns the named host; unknown names are fatal to the test.
func (l *Lab) Host(name string) *Host {
	h := l.hosts[name]
	if h == nil {
		l.t.Fatalf("netlab: no host %q in lab %s", name, l.prefix)
	}
	return h
}

// Namespaces returns the names of all namespaces of the lab, switch first.
func (l *Lab) Namespaces() []string {
	ns := []string{l.prefix}
	for _, h := range l.order {
		ns = append(ns, h.ns)
	}
	return ns
}

// LimitLink shapes both directions of host's link with tbf: the egress of
// eth0 in the host namespace and the egress of the switch-side veth end.
// rate, burst and latency use tc syntax, e.g. "2mbit", "32kbit", "400ms";
// burst must be at least one MTU (1514 bytes). Calling it again replaces the
// limit.
func (l *Lab) LimitLink(host, rate, burst, latency string) error {
	h, err := l.lookup(host)
	if err != nil {
		return err
	}
	for _, end := range [][2]string{{h.ns, "eth0"}, {l.prefix, h.port()}} {
		if err := run("tc", "-n", end[0], "qdisc", "replace", "dev", end[1], "root",
			"tbf", "rate", rate, "burst", burst, "latency", latency); err != nil {
			return err
		}
	}
	return nil
}

// UnlimitLink removes a limit set by LimitLink (no error if there was none).
func (l *Lab) UnlimitLink(host string) error {
	h, err := l.lookup(host)
	if err != nil {
		return err
	}
	for _, end := range [][2]string{{h.ns, "eth0"}, {l.prefix, h.port()}} {
		err := run("tc", "-n", end[0], "qdisc", "del", "dev", end[1], "root")
		if err != nil && !strings.Contains(err.Error(), "No such file") &&
			!strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero") {
			return err
		}
	}
	return nil
}

// CutLink partitions host from all other hosts by setting its switch-side
// veth end down. Packets are silently dropped, so new connections time out
// and established ones stall (they are not reset). tbf limits survive.
func (l *Lab) CutLink(host string) error { return l.setPort(host, "down") }

// HealLink undoes CutLink.
func (l *Lab) HealLink(host string) error { return l.setPort(host, "up") }

func (l *Lab) setPort(host, state string) error {
	h, err := l.lookup(host)
	if err != nil {
		return err
	}
	return run("ip", "-n", l.prefix, "link", "set", h.port(), state)
}

func (l *Lab) lookup(host string) (*Host, error) {
	h := l.hosts[host]
	if h == nil {
		return nil, fmt.Errorf("netlab: no host %q in lab %s", host, l.prefix)
	}
	return h, nil
}

func (l *Lab) cleanup() {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, p := range procs {
		p.waitTimeout(5 * time.Second)
	}
	// Hosts first, the switch last; errors are reported but do not stop us.
	ns := l.Namespaces()
	for i := len(ns) - 1; i >= 0; i-- {
		if err := deleteNamespace(ns[i]); err != nil {
			l.t.Errorf("netlab: cleanup: %v", err)
		}
	}
}

// Name is the host's name as given to New.
func (h *Host) Name() string { return h.name }

// Namespace is the name of the host's network namespace.
func (h *Host) Namespace() string { return h.ns }

// Addr is the host's IPv4 address, without mask.
func (h *Host) Addr() string { return h.addr }

func (h *Host) port() string { return "p" + strconv.Itoa(h.index) }

// Command returns an unstarted command that runs name args... inside the
// host's namespace (via `ip netns exec`, which execs the program, so the
// command's pid is the program's pid). It runs in its own process group.
// If it is still running when the lab is cleaned up, it is killed then.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", h.ns, name}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Process is a program started in a host by Host.Start.
type Process struct {
	Cmd  *exec.Cmd
	name string
	out  testutil.SyncBuffer
	done chan struct{}
	err  error
}

// Start starts name args... in the host's namespace, with stdout and stderr
// captured together (see Output). A start failure is fatal. At t's cleanup
// the process group is killed, and if t failed its output is logged, each
// line prefixed by logPrefix. Processes still running at the lab's cleanup
// are killed as well.
func (h *Host) Start(t testing.TB, logPrefix, name string, args ...string) *Process {
	t.Helper()
	p := &Process{name: logPrefix, done: make(chan struct{})}
	p.Cmd = h.Command(context.Background(), name, args...)
	p.Cmd.Stdout = &p.out
	p.Cmd.Stderr = &p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("netlab: starting %s in %s: %v", name, h.name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	t.Cleanup(func() {
		p.Kill()
		p.waitTimeout(5 * time.Second)
		if t.Failed() {
			var b strings.Builder
			sc := bufio.NewScanner(strings.NewReader(p.Output()))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				fmt.Fprintf(&b, "%s: %s\n", logPrefix, sc.Text())
			}
			t.Logf("netlab: output of %s (%s in %s, %v):\n%s", logPrefix, name, h.name, p.stateString(), b.String())
		}
	})
	return p
}

// Pid is the process id (the program's own, not that of `ip`).
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL to the process group. Killing an exited process is a
// no-op.
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Wait waits for the process to exit and returns its exit error, like
// exec.Cmd.Wait; it may be called any number of times.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output returns everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// WaitOutput waits until the output contains substr; it fails if the process
// exits first or timeout passes.
func (p *Process) WaitOutput(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.Output(), substr) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("netlab: %s exited (%v) before printing %q", p.name, p.err, substr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: %s did not print %q within %v", p.name, substr, timeout)
		}
	}
}

func (p *Process) waitTimeout(d time.Duration) {
	select {
	case <-p.done:
	case <-time.After(d):
	}
}

func (p *Process) stateString() string {
	select {
	case <-p.done:
		if p.err == nil {
			return "exited 0"
		}
		return p.err.Error()
	default:
		return "running"
	}
}

var requireOnce struct {
	sync.Mutex
	ok bool
}

// Require fails the test unless it runs as root with the `ip` and `tc`
// commands available. If either is missing it installs iproute2 with apt-get
// first; it never skips.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("netlab: network-namespace tests must run as root (euid %d); run `go test` as root", os.Geteuid())
	}
	requireOnce.Lock()
	defer requireOnce.Unlock()
	if requireOnce.ok {
		return
	}
	if !haveTools() {
		cmd := exec.Command("apt-get", "install", "-y", "iproute2")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if !haveTools() {
			t.Fatalf("netlab: `ip`/`tc` not found and `apt-get install -y iproute2` did not provide them (err %v); install iproute2 by hand. apt-get output:\n%s", err, out)
		}
	}
	requireOnce.ok = true
}

func haveTools() bool {
	_, e1 := exec.LookPath("ip")
	_, e2 := exec.LookPath("tc")
	return e1 == nil && e2 == nil
}

// removeStale deletes namespaces named by this package's scheme whose
// owning process no longer exists.
func removeStale(t testing.TB) {
	names, err := listNamespaces()
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	for _, name := range names {
		m := nsPattern.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive (or unknowable): not ours to remove
		}
		if err := deleteNamespace(name); err != nil {
			t.Logf("netlab: removing stale namespace: %v", err)
		}
	}
}

// ListNamespaces returns the names of all named network namespaces
// (`ip netns list`).
func ListNamespaces() ([]string, error) { return listNamespaces() }

func listNamespaces() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// deleteNamespace kills every process in the namespace, then deletes it.
// Deleting a namespace destroys its interfaces and with them the veth peers.
func deleteNamespace(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	err := run("ip", "netns", "del", name)
	if err != nil && strings.Contains(err.Error(), "No such file") {
		return nil
	}
	return err
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
