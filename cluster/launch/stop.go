package launch

import (
	"context"
	"fmt"
	"sync"

	"github.com/qfleet/qfleet/actors"
)

// Down stops every node of the cluster: SIGTERM, then SIGKILL after the
// cluster file's stop_grace, and whatever is left of the node's process
// group (systemctl stop for a node systemd runs); the learner's node first
// (see stopAll). Nodes that do not run are fine. A host that cannot be reached is an error at the end; the
// others are stopped all the same.
func Down(ctx context.Context, s *Spec, o Options) error {
	l := newLauncher(s, o)
	conns, errs := connectAll(ctx, s.Hosts)
	l.conns = conns
	defer closeAll(conns)
	var reach []*Host
	for _, h := range s.Hosts {
		if conns[h.Name] != nil {
			reach = append(reach, h)
		}
	}
	if err := l.stopAll(ctx, reach); err != nil {
		errs = append(errs, err)
	}
	return oneLine(errs)
}

// stopAll stops the nodes of hosts, the learner's first, then the others
// at once. That is the order in which a run ends by itself: the learner
// writes its checkpoint and summary and leaves, and a runner node that sees
// it leave ends on its own, often before its SIGTERM. (Runners first made
// the learner's node wait at exit for its remote's retries of a departed
// runner's endpoint, 5 times 2 s then, 2 s at most now: see cluster.Node.)
// Which nodes
// ran is read first, so that one that ended by itself is told apart from
// one that was not running.
func (l *launcher) stopAll(ctx context.Context, hosts []*Host) error {
	var mu sync.Mutex
	before := map[string]int{}
	errs := forEach(hosts, func(h *Host) error {
		st, err := readState(ctx, l.conns[h.Name], 0)
		mu.Lock()
		before[h.Name] = st.pid
		mu.Unlock()
		return err
	})
	if len(errs) > 0 {
		return oneLine(errs)
	}
	var first, then []*Host
	for _, h := range hosts {
		if h.HasRole(actors.RoleLearner) {
			first = append(first, h)
		} else {
			then = append(then, h)
		}
	}
	for _, wave := range [][]*Host{first, then} {
		errs = append(errs, forEach(wave, func(h *Host) error { return l.stop(ctx, l.conns[h.Name], before[h.Name]) })...)
	}
	return oneLine(errs)
}

// stop stops the node on c's host (if it runs) and says how; pid is the
// node's before the stops began (0: it did not run).
func (l *launcher) stop(ctx context.Context, c *conn, pid int) error {
	out, err := c.run(ctx, stopScript(c.h.Dir, l.spec.StopGrace), nil)
	if err != nil {
		return hostErr(c.h, "stopping the node: %v", err)
	}
	kv, _ := splitProbe(out)
	result := kv["result"]
	if result == notRunning && pid != 0 {
		result = fmt.Sprintf("ended by itself when the learner's node left (pid %d)", pid)
	}
	l.out.host(c.h, "%s", result)
	return nil
}
