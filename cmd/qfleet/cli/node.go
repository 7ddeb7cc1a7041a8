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

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/cluster/sweep"
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
	allRoles := append(actors.KnownRoles(), cluster.RoleTrials)
	if err := parseFlags(fs, nodeHelp, args, stdout, stderr); err != nil {
		return err
	}
	t, err := tf.resolve(fs, append([]string{"qfleet", "node"}, args...))
	if err != nil {
		return err
	}
	roles := splitList(*rolesFlag)
	trainRoles := 0
	for _, r := range roles {
		if !slices.Contains(allRoles, r) {
			return usageError{fmt.Errorf("--roles: %w %q (roles: %s)", actors.ErrUnknownRole, r, strings.Join(allRoles, ", "))}
		}
		if r != cluster.RoleTrials {
			trainRoles++
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
	if trainRoles == 0 && runsTrials {
		if t.Effective().HTTP != "" {
			return usageError{errors.New("--http: a node with the trials role alone serves no HTTP (its trials' progress is on the sweep's stderr)")}
		}
		ctx, stop := signalContext()
		defer stop()
		return sweep.RunTrialsNode(ctx, cs, sweep.NodeOptions{Roles: roles, TrialsDir: *trialsDir, Slots: *trialSlots,
			Executable: trialExecutable, Stderr: stderr, LogLevel: t.LogLevel()})
	}
	o := qfleet.NodeOptions{Cluster: cs, Roles: roles}
	if runsTrials {
		o.Extra = func(cn *cluster.Node, logger *slog.Logger, log io.Writer) error {
			w, err := sweep.StartWorker(cn.System, sweep.WorkerOptions{Node: cs.Name, Dir: *trialsDir, Slots: *trialSlots, Log: log,
				Logger: logger, Executable: trialExecutable})
			if err != nil {
				return err
			}
			cn.OnClose(w.Stop) // ends its trials
			return nil
		}
	}
	_, err = t.Node(o, stdout, stderr)
	return err
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
	allRoles := append(actors.KnownRoles(), cluster.RoleTrials)
	return nodeFlags{
		roles:      fs.String("roles", strings.Join(actors.AllRoles, ","), "comma-separated `roles` of this node: "+strings.Join(allRoles, ", ")+" (trials: runs 'qfleet sweep' trials)"),
		trialsDir:  fs.String("trials-dir", "", "with the trials role: `directory` of the trials' run directories, DIR/<sweep>/<trial> (default "+filepath.Join(qfleet.RunsRoot, "sweeps")+")"),
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
