package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Options are the switches of Launch, Down, Status and Logs.
type Options struct {
	// Out gets the progress lines, one per step and host ("B: joined: ...").
	Out io.Writer
	// Executable is the qfleet binary hosts get when the cluster file names
	// none for their architecture: the running one (os.Executable).
	Executable string
	// Restart: Launch stops running nodes and starts them again with the
	// cluster file's config (default: leave them alone).
	Restart bool
	// Wait bounds how long Launch waits for the nodes to join and for the
	// learner to list every member (default 2 minutes).
	Wait time.Duration
	// Poll is how often a wait looks again (default 250 ms).
	Poll time.Duration
}

// DefaultWait is Options.Wait's default.
const DefaultWait = 2 * time.Minute

// Actions of a host in a launch.
const (
	actLeave   = "leave"   // running: left alone
	actStart   = "start"   // not running: started
	actRestart = "restart" // running and --restart: stopped, then started
)

// plan is what Launch does on one host, decided by the pre-flight.
type plan struct {
	h      *Host
	conn   *conn
	probe  probe
	paths  Paths
	action string
	mode   string // StartSystemd or StartDetached
	binary string // the local binary the host gets
	config []byte // its node.yaml
	pid    int    // once started
}

// launcher is one Launch (or Down, Status) in progress.
type launcher struct {
	spec  *Spec
	out   *printer
	bins  *binaries
	wait  time.Duration
	poll  time.Duration
	conns map[string]*conn
	// started is when the first node was started (zero: none was).
	started time.Time
}

func newLauncher(s *Spec, o Options) *launcher {
	l := &launcher{spec: s, out: &printer{w: o.Out}, bins: newBinaries(o.Executable), wait: o.Wait, poll: o.Poll}
	if l.wait <= 0 {
		l.wait = DefaultWait
	}
	if l.poll <= 0 {
		l.poll = 250 * time.Millisecond
	}
	return l
}

// Launch brings the cluster of s up. First it connects to every host and
// checks all of them (login, host key, OS and architecture against the
// binary, free ports, a node already running); any problem on any host
// ends it there, with one line naming the host, before anything is made or
// started anywhere. Then it makes the missing credentials, stops the
// nodes to restart (Options.Restart), installs the binary, credentials and
// config of each node to start, starts the seed (the learner's host) and
// waits for it, starts the others, and waits until each has joined and the
// learner's /status lists every node. Nodes that run already are left
// alone, unless Options.Restart.
func Launch(ctx context.Context, s *Spec, o Options) error {
	l := newLauncher(s, o)
	conns, errs := connectAll(ctx, s.Hosts)
	l.conns = conns
	defer closeAll(conns)
	if len(errs) > 0 {
		return oneLine(errs)
	}
	plans, err := l.preflight(ctx, o.Restart)
	if err != nil {
		return err
	}
	made, err := ensureCredentials(s)
	if err != nil {
		return err
	}
	if len(made) > 0 {
		l.out.line("credentials in %s: made %s", s.Credentials, strings.Join(made, ", "))
	}
	var todo, restart []*plan
	for _, pl := range plans {
		switch pl.action {
		case actLeave:
			l.out.host(pl.h, "running (pid %d), left alone%s", pl.probe.pid, pl.drift())
		case actRestart:
			restart = append(restart, pl)
			todo = append(todo, pl)
		case actStart:
			todo = append(todo, pl)
		}
	}
	if err := l.stopAll(ctx, hostsOf(restart)); err != nil {
		return err
	}
	if err := oneLine(forEach(hostsOf(todo), func(h *Host) error { return l.install(ctx, planOf(todo, h)) })); err != nil {
		return err
	}
	deadline := time.Now().Add(l.wait)
	// The seed first: the others' join needs it to answer.
	var first, rest []*plan
	for _, pl := range todo {
		if pl.h == s.Seed() {
			first = append(first, pl)
		} else {
			rest = append(rest, pl)
		}
	}
	for _, wave := range [][]*plan{first, rest} {
		if len(wave) == 0 {
			continue
		}
		if l.started.IsZero() {
			l.started = time.Now()
		}
		if err := oneLine(forEach(hostsOf(wave), func(h *Host) error { return l.start(ctx, planOf(wave, h)) })); err != nil {
			return err
		}
		if err := l.waitJoined(ctx, wave, deadline); err != nil {
			return err
		}
	}
	return l.waitMembers(ctx, deadline)
}

// drift says when a running node's config is not what the file makes now.
func (pl *plan) drift() string {
	sum := sha256.Sum256(pl.config)
	if pl.probe.configSHA256 != "" && pl.probe.configSHA256 != hex.EncodeToString(sum[:]) {
		return " (its node.yaml differs from the cluster file's: --restart applies it)"
	}
	return ""
}

// preflight probes every host at once and decides what to do on each. It
// changes nothing anywhere: a problem on one host is an error before any
// host is touched.
func (l *launcher) preflight(ctx context.Context, restart bool) ([]*plan, error) {
	plans := make([]*plan, len(l.spec.Hosts))
	for i, h := range l.spec.Hosts {
		plans[i] = &plan{h: h, conn: l.conns[h.Name]}
	}
	errs := forEach(l.spec.Hosts, func(h *Host) error {
		return l.check(ctx, planOf(plans, h), restart)
	})
	if len(errs) > 0 {
		return nil, oneLine(errs)
	}
	for _, pl := range plans {
		mode := pl.mode
		if pl.action == actLeave {
			mode = "running"
		}
		l.out.host(pl.h, "checked: %s %s, %s, will %s", pl.probe.os, pl.probe.arch, mode, pl.action)
	}
	return plans, nil
}

// check is the pre-flight of one host.
func (l *launcher) check(ctx context.Context, pl *plan, restart bool) error {
	h := pl.h
	p, err := doProbe(ctx, pl.conn)
	if err != nil {
		return err
	}
	pl.probe, pl.paths = p, pathsIn(p.dir)
	if p.os != "Linux" {
		return hostErr(h, "it runs %s: qfleet launch starts nodes on Linux hosts", p.os)
	}
	if pl.binary, err = l.bins.pick(h, p.arch); err != nil {
		return hostErr(h, "%v", err)
	}
	switch {
	case h.Start == StartSystemd && !p.systemd:
		return hostErr(h, "start: systemd, but systemd does not run this host (PID 1 is not systemd, or systemctl is-system-running does not answer): use start: detached or auto")
	case h.Start == StartSystemd, h.Start == StartAuto && p.systemd && p.root:
		pl.mode = StartSystemd
	default:
		pl.mode = StartDetached
	}
	var seed *Host
	if s := l.spec.Seed(); s != h {
		seed = s
	}
	if pl.config, err = nodeConfig(h, seed, pl.paths); err != nil {
		return hostErr(h, "%v", err)
	}
	switch {
	case p.pid != 0 && restart:
		pl.action = actRestart
		return nil // its ports are its own node's
	case p.pid != 0:
		pl.action = actLeave
		return nil
	}
	pl.action = actStart
	if taken := portConflicts(portsNeeded(h), p.sockets); len(taken) > 0 {
		return hostErr(h, "%s", strings.Join(taken, "; "))
	}
	return nil
}

func hostsOf(pls []*plan) []*Host {
	out := make([]*Host, len(pls))
	for i, pl := range pls {
		out[i] = pl.h
	}
	return out
}

func planOf(pls []*plan, h *Host) *plan {
	for _, pl := range pls {
		if pl.h == h {
			return pl
		}
	}
	return nil
}

// printer writes whole lines from several goroutines.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) line(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *printer) host(h *Host, format string, args ...any) {
	p.line("%s: %s", h.Name, fmt.Sprintf(format, args...))
}
