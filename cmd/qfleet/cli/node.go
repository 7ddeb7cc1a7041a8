package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/internal/dashboard"
	"github.com/qfleet/qfleet/nets"
)

const nodeHelp = `Usage: qfleet node [flags]

Runs one cluster node: the roles given by --roles, a protoactor remote
endpoint on --remote-addr and a memberlist gossip member on --gossip-addr.
Nodes find each other by gossip (--join one or more seed gossip addresses);
the node with the learner role also runs the run's stats, decides when the
run is over and leaves the cluster then; runner-only nodes end when the
learner has left.

Across hosts, gossip is encrypted with a shared key (--cluster-key-file) and
remote messaging runs over TLS (--tls-cert/--tls-key; mutual TLS with
--tls-ca). Without them a node refuses to use non-loopback addresses unless
--insecure is given.

The node with the learner role writes the run directory (see 'qfleet dev
--help': config.yaml, scalars.jsonl, summary.json, checkpoints/); other nodes
write one only when --run-dir is given, or when a checkpoint flag is given
without --checkpoint-dir.

With the trials role (--roles trials, alone or beside training roles), the
node runs the trials that 'qfleet sweep --join' hands it, --trial-slots at a
time, each a child 'qfleet dev' process in --trials-dir/<sweep>/<trial>. A
node with the trials role alone runs until it is stopped (Ctrl-C, SIGTERM).

Flags:
`

func runNode(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet node", flag.ContinueOnError)
	tf := addTrainFlags(fs)
	nf := addNodeFlags(fs)
	rolesFlag, trialsDir, trialSlots, cfl := nf.roles, nf.trialsDir, nf.trialSlots, nf.cluster
	allRoles := append(slices.Clone(actors.AllRoles), cluster.RoleTrials)
	if err := parseFlags(fs, nodeHelp, args, stdout, stderr); err != nil {
		return err
	}
	t, err := tf.resolve(fs)
	if err != nil {
		return err
	}
	roles := splitList(*rolesFlag)
	var trainRoles []string
	for _, r := range roles {
		if !slices.Contains(allRoles, r) {
			return usageError{fmt.Errorf("--roles: %w %q (roles: %s)", actors.ErrUnknownRole, r, strings.Join(allRoles, ", "))}
		}
		if r != cluster.RoleTrials {
			trainRoles = append(trainRoles, r)
		}
	}
	runsTrials := slices.Contains(roles, cluster.RoleTrials)
	if *trialSlots < 1 {
		return usageError{fmt.Errorf("--trial-slots %d: must be >= 1", *trialSlots)}
	}
	nameOrHost(cfl.name)
	cs, err := cfl.resolve()
	if err != nil {
		return err
	}
	name := cs.Name
	t.command = append([]string{"qfleet", "node"}, args...)
	if len(trainRoles) == 0 && runsTrials {
		if t.cf.HTTP != "" {
			return usageError{errors.New("--http: a node with the trials role alone serves no HTTP (its trials' progress is on the sweep's stderr)")}
		}
		return runTrialsNode(cs, roles, *trialsDir, *trialSlots, t.level, stderr)
	}
	if err := t.checkStart(trainRoles, *tf.maxMemory); err != nil {
		return err
	}
	// The learner's node has the run's stats: its run directory has the
	// curves. Other nodes write one only when asked (--run-dir), or for
	// checkpoints asked for without --checkpoint-dir.
	ln, err := t.prepare(slices.Contains(roles, actors.RoleLearner))
	if err != nil {
		return err
	}
	closeLn := func() { // a start that failed: close and undo
		if ln != nil {
			ln.Close()
		}
		t.abandonStart(stderr, name)
	}
	stderr = t.display(stdout, stderr)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: t.level})).With("node", name)
	sys := cluster.NewActorSystem(logger)
	copts := cluster.NodeOptions{Roles: roles, Logger: logger}
	if slices.Contains(roles, actors.RoleRunner) {
		copts.Runners = t.cf.Runners // advertised: the ε ladder spans every runner node
	}
	ev := newNodeEvents(slices.Contains(roles, actors.RoleLearner))
	copts.OnEvent = ev.handle
	cn, err := startClusterNode(sys, cs, copts)
	if err != nil {
		closeLn()
		return err
	}
	m := cn.Membership
	ev.member.Store(m)
	nets.SetLearnerGC()
	if runsTrials {
		worker, err := startTrialWorker(sys, trialWorkerOptions{Node: name, Dir: *trialsDir, Slots: *trialSlots, Log: stderr, Logger: logger})
		if err != nil {
			cn.Abort()
			closeLn()
			return err
		}
		cn.OnClose(worker.stop) // ends its trials
	}
	node, err := actors.StartNode(actors.NodeOptions{
		Name: name, Roles: trainRoles, EnvID: t.cf.Env, Seed: t.cf.Seed, Config: t.cf.Config,
		Stop:          actors.StopRule{TargetReturn: t.targetReturn, MaxEnvSteps: t.cf.MaxSteps},
		CheckpointDir: t.cf.CheckpointDir, CheckpointEvery: t.checkpointEvery, SnapshotEvery: t.snapshotEvery, Resume: t.resume,
		Logger: logger, System: sys, Directory: cn.Directory,
	})
	if err != nil {
		cn.Abort()
		closeLn()
		return err
	}
	ev.node.Store(node)
	node.Metrics.Registry.MustRegister(cn.Guard)
	node.Metrics.ClusterMembers.Set(float64(m.NumMembers()))
	cn.OnClose(m.WatchRunnerLadder(func(p cluster.LadderPosition) { node.SetRunnerLadder(p.Offset, p.Total) }))
	fmt.Fprintf(stderr, "qfleet node %s: roles %s, remote %s, gossip %s, %d member(s)\n",
		name, strings.Join(roles, ","), sys.Address(), m.LocalMember().GossipAddr, m.NumMembers())
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// nodeFlags are the flags of 'qfleet node' besides the training flags.
type nodeFlags struct {
	roles, trialsDir *string
	trialSlots       *int
	cluster          *clusterFlags
}

func addNodeFlags(fs *flag.FlagSet) nodeFlags {
	allRoles := append(slices.Clone(actors.AllRoles), cluster.RoleTrials)
	return nodeFlags{
		roles:      fs.String("roles", strings.Join(actors.AllRoles, ","), "comma-separated `roles` of this node: "+strings.Join(allRoles, ", ")+" (trials: runs 'qfleet sweep' trials)"),
		trialsDir:  fs.String("trials-dir", "", "with the trials role: `directory` of the trials' run directories, DIR/<sweep>/<trial> (default "+filepath.Join(runsRoot, "sweeps")+")"),
		trialSlots: fs.Int("trial-slots", 1, "with the trials role: sweep trials this node runs at a time"),
		cluster:    addClusterFlags(fs, "", "0.0.0.0:7946", "0.0.0.0:7947"),
	}
}

// nameOrHost is the node's name: --name, else the host's name. (The flag's
// default is empty rather than the host name so that a printed config
// does not carry one machine's name to another.)
func nameOrHost(name *string) {
	if *name == "" {
		*name, _ = os.Hostname()
	}
}

// clusterFlags are the flags of a cluster member, shared by 'qfleet node'
// and 'qfleet sweep --join'.
type clusterFlags struct {
	name, gossipAddr, remoteAddr, advertise, join, profile *string
	keyFile, tlsCert, tlsKey, tlsCA                        *string
	insecure                                               *bool
}

func addClusterFlags(fs *flag.FlagSet, defaultName, defaultGossip, defaultRemote string) *clusterFlags {
	return &clusterFlags{
		name:       fs.String("name", defaultName, "node `name`, unique in the cluster (default: the host name)"),
		gossipAddr: fs.String("gossip-addr", defaultGossip, "memberlist gossip bind `address` (TCP and UDP)"),
		remoteAddr: fs.String("remote-addr", defaultRemote, "protoactor remote bind `address` (TCP)"),
		advertise:  fs.String("advertise", "", "`host[:port]` other nodes reach this node at (NAT, a proxy, or a wildcard bind); the port, if given, is the remote port as seen from outside; default: the bind host"),
		join:       fs.String("join", "", "comma-separated seed gossip `addresses` (host:port); empty for the first node"),
		profile:    fs.String("profile", cluster.ProfileWAN, "failure detection profile: local, lan, wan"),
		keyFile:    fs.String("cluster-key-file", "", "`file` with the shared gossip key (16, 24 or 32 bytes; raw, hex or base64)"),
		tlsCert:    fs.String("tls-cert", "", "this node's TLS certificate `file` (PEM)"),
		tlsKey:     fs.String("tls-key", "", "this node's TLS private key `file` (PEM)"),
		tlsCA:      fs.String("tls-ca", "", "CA certificate `file`: peers must present certificates it signed (mutual TLS)"),
		insecure:   fs.Bool("insecure", false, "allow non-loopback addresses without a cluster key and TLS"),
	}
}

// resolve checks the flags (usage errors name the flag) and loads the key
// and the TLS credentials.
func (f *clusterFlags) resolve() (*cluster.NodeConfig, error) {
	c, err := cluster.NodeSpec{
		Name: *f.name, GossipAddr: *f.gossipAddr, RemoteAddr: *f.remoteAddr, Advertise: *f.advertise,
		Join: splitList(*f.join), Profile: *f.profile,
		KeyFile: *f.keyFile, TLSCert: *f.tlsCert, TLSKey: *f.tlsKey, TLSCA: *f.tlsCA, Insecure: *f.insecure,
	}.Resolve()
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// startClusterNode starts the node's remote and gossip on sys; a failure
// to join is a usage error (the settings are wrong, not the machine).
func startClusterNode(sys *actor.ActorSystem, c *cluster.NodeConfig, o cluster.NodeOptions) (*cluster.Node, error) {
	n, err := cluster.StartNode(sys, c, o)
	var je *cluster.JoinError
	if errors.As(err, &je) {
		return nil, usageError{err}
	}
	return n, err
}
