package qfleet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/internal/dashboard"
	"github.com/qfleet/qfleet/nets"
)

// NodeOptions place a run's node in a cluster.
type NodeOptions struct {
	// Cluster is the node's resolved addresses and credentials
	// (cluster.NodeSpec.Resolve).
	Cluster *cluster.NodeConfig
	// Roles are the node's roles: the training roles of actors.AllRoles it
	// runs, and others it only advertises in gossip (cluster.RoleTrials,
	// which Extra starts).
	Roles []string
	// Extra, when set, starts what the node runs beside its training roles,
	// once it is in the cluster and before the roles start (the command's
	// sweep trials); what it starts it stops with cn.OnClose. An error
	// abandons the start.
	Extra func(cn *cluster.Node, logger *slog.Logger, log io.Writer) error
}

// Node runs the run's roles on one cluster node: the checks before start,
// the run directory (always on the learner's node; on others only when
// asked for), the node's remote, gossip and directory, the roles, then the
// run until the stop rule, a signal, MaxTime or the learner's node leaving.
// The learner's node writes the final checkpoint and the summary.
func (t *Run) Node(o NodeOptions, stdout, stderr io.Writer) (Summary, error) {
	envOutput.set(stderr)
	name := o.Cluster.Name
	var trainRoles []string
	for _, r := range o.Roles {
		if slices.Contains(actors.KnownRoles(), r) {
			trainRoles = append(trainRoles, r)
		}
	}
	if err := t.checkStart(trainRoles); err != nil {
		return Summary{}, err
	}
	// The learner's node has the run's stats: its run directory has the
	// curves. Other nodes write one only when asked (RunDir), or for
	// checkpoints asked for without CheckpointDir.
	isLearner := slices.Contains(o.Roles, actors.RoleLearner)
	ln, err := t.prepare(isLearner)
	if err != nil {
		return Summary{}, err
	}
	abandon := func() { // a start that failed: close and undo
		if ln != nil {
			ln.Close()
		}
		t.abandonStart(stderr, name)
	}
	stderr = t.display(stdout, stderr)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: t.level})).With("node", name)
	sys := cluster.NewActorSystem(logger)
	copts := cluster.NodeOptions{Roles: o.Roles, Logger: logger}
	if slices.Contains(o.Roles, actors.RoleRunner) {
		copts.Runners = t.cf.Runners // advertised: the ε ladder spans every runner node
	}
	ev := newNodeEvents(isLearner)
	copts.OnEvent = ev.handle
	cn, err := cluster.StartNode(sys, o.Cluster, copts)
	if err != nil {
		abandon()
		var je *cluster.JoinError
		if errors.As(err, &je) {
			return Summary{}, UsageError{err}
		}
		return Summary{}, err
	}
	m := cn.Membership
	ev.member.Store(m)
	nets.SetLearnerGC()
	if o.Extra != nil {
		if err := o.Extra(cn, logger, stderr); err != nil {
			cn.Abort()
			abandon()
			return Summary{}, err
		}
	}
	node, err := actors.StartNode(actors.NodeOptions{
		Name: name, Roles: trainRoles, EnvID: t.cf.Env, Seed: t.cf.Seed, Config: t.cf.Config,
		Stop:          t.stopRule(),
		CheckpointDir: t.cf.CheckpointDir, CheckpointEvery: t.checkpointEvery, SnapshotEvery: t.snapshotEvery, Resume: t.resume,
		Logger: logger, System: sys, Directory: cn.Directory,
	})
	if err != nil {
		cn.Abort()
		abandon()
		return Summary{}, err
	}
	ev.node.Store(node)
	node.Metrics.Registry.MustRegister(cn.Guard)
	node.Metrics.ClusterMembers.Set(float64(m.NumMembers()))
	cn.OnClose(m.WatchRunnerLadder(func(p cluster.LadderPosition) { node.SetRunnerLadder(p.Offset, p.Total) }))
	fmt.Fprintf(stderr, "qfleet node %s: roles %s, remote %s, gossip %s, %d member(s)\n",
		name, strings.Join(o.Roles, ","), sys.Address(), m.LocalMember().GossipAddr, m.NumMembers())
	return t.run(name, node, ln, runHooks{
		done:    ev.learnerLeft,
		members: func() []dashboard.Member { return ev.gone.with(m.Members(), name, time.Now()) },
		// When the learner has left, the run is over for everyone: no one
		// to tell of this node's leave.
		beforeStop: func() { cn.Close(!ev.learnerGone.Load()) },
	}, stdout, stderr)
}

// nodeEvents is what a node does with membership events. handle runs on
// membership's goroutine, maybe before cluster start returns: the node and
// the membership are set once they exist.
type nodeEvents struct {
	isLearner   bool
	node        atomic.Pointer[actors.Node]
	member      atomic.Pointer[cluster.Membership]
	gone        *goneMembers
	learnerLeft chan string // the run is over: the learner's node left
	learnerGone atomic.Bool
}

func newNodeEvents(isLearner bool) *nodeEvents {
	return &nodeEvents{isLearner: isLearner, gone: newGoneMembers(), learnerLeft: make(chan string, 1)}
}

func (ev *nodeEvents) handle(e cluster.Event) {
	ev.gone.note(e, time.Now())
	n, m := ev.node.Load(), ev.member.Load()
	if n != nil && (e.Kind == cluster.Left || e.Kind == cluster.Failed) && e.Member.HasRole(actors.RoleRunner) {
		// Its runners leave /status's runners for the departed list, and
		// what they had in flight is settled as lost with them.
		n.Metrics.RunnerNodeDeparted(e.Member.Name, e.Kind.String(), time.Now())
	}
	if n != nil && m != nil {
		n.Metrics.ClusterMembers.Set(float64(m.NumMembers()))
	}
	if !ev.isLearner && e.Kind == cluster.Left && e.Member.HasRole(actors.RoleLearner) {
		ev.learnerGone.Store(true)
		select {
		case ev.learnerLeft <- "the learner node " + e.Member.Name + " left the cluster: run over":
		default:
		}
	}
}

// goneMembers remembers the members that left or failed, which the member
// table forgets at once, so that the dashboard shows a failed runner as
// failed instead of not at all. Safe for concurrent use.
type goneMembers struct {
	mu    sync.Mutex
	gone  map[string]cluster.Member
	since map[string]time.Time
}

// maxGoneMembers bounds the memory of a cluster whose members come and go
// under new names: the oldest are forgotten first.
const maxGoneMembers = 64

func newGoneMembers() *goneMembers {
	return &goneMembers{gone: map[string]cluster.Member{}, since: map[string]time.Time{}}
}

// note records a member that left or failed, and forgets one that (re)joined.
func (g *goneMembers) note(e cluster.Event, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch e.Kind {
	case cluster.Left, cluster.Failed:
		g.gone[e.Member.Name], g.since[e.Member.Name] = e.Member, now
		for len(g.gone) > maxGoneMembers {
			oldest := e.Member.Name
			for n, t := range g.since {
				if t.Before(g.since[oldest]) {
					oldest = n
				}
			}
			delete(g.gone, oldest)
			delete(g.since, oldest)
		}
	case cluster.Joined:
		delete(g.gone, e.Member.Name)
		delete(g.since, e.Member.Name)
	}
}

// with lists the live members (the table's, sorted by name), then the gone
// ones, sorted by name.
func (g *goneMembers) with(live []cluster.Member, self string, now time.Time) []dashboard.Member {
	out := make([]dashboard.Member, 0, len(live))
	seen := map[string]bool{}
	for _, mem := range live {
		seen[mem.Name] = true
		out = append(out, dashboard.Member{Name: mem.Name, Roles: mem.Roles, State: mem.State.String(),
			StateSeconds: secondsSince(mem.Since, now), Self: mem.Name == self})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var gone []dashboard.Member
	for name, mem := range g.gone {
		if !seen[name] {
			gone = append(gone, dashboard.Member{Name: name, Roles: mem.Roles, State: mem.State.String(),
				StateSeconds: secondsSince(g.since[name], now), Self: name == self})
		}
	}
	slices.SortFunc(gone, func(a, b dashboard.Member) int { return strings.Compare(a.Name, b.Name) })
	return append(out, gone...)
}

// secondsSince is now−t in seconds, 0 for an unknown (zero) t.
func secondsSince(t, now time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(0, now.Sub(t).Seconds())
}
