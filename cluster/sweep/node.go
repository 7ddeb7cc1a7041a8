package sweep

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/qfleet/qfleet/cluster"
)

// NodeOptions configure RunTrialsNode.
type NodeOptions struct {
	// Roles are the roles the node announces to the cluster
	// (cluster.RoleTrials among them).
	Roles []string
	// TrialsDir and Slots are the worker's (WorkerOptions.Dir, .Slots).
	TrialsDir string
	Slots     int
	// Executable is the program the trials run; see WorkerOptions.
	Executable string
	// Stderr gets the node's lines (a line per trial start and end) and
	// its log at LogLevel (nil: none).
	Stderr   io.Writer
	LogLevel slog.Level
}

// RunTrialsNode runs a cluster member that only runs sweep trials ('qfleet
// node --roles trials'): it joins the cluster as cs, starts a trial worker
// named after the node, and serves the sweeps that hand it trials until ctx
// is done; then it leaves the cluster first, so that the sweeps give its
// trials to other nodes at once, and stops its trials. context.Cause(ctx)
// is named in its last line. A failure to join is a qfleet.UsageError.
func RunTrialsNode(ctx context.Context, cs *cluster.NodeConfig, o NodeOptions) error {
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: o.LogLevel})).With("node", cs.Name)
	sys := cluster.NewActorSystem(logger)
	cn, err := startClusterNode(sys, cs, cluster.NodeOptions{Roles: o.Roles, Logger: logger})
	if err != nil {
		return err
	}
	w, err := StartWorker(sys, WorkerOptions{Node: cs.Name, Dir: o.TrialsDir, Slots: o.Slots, Log: o.Stderr, Logger: logger,
		Executable: o.Executable})
	if err != nil {
		cn.Abort()
		return err
	}
	// Leave first: a sweep sees the leave and hands this node's trials to
	// others at once, then the trials stop.
	cn.OnClose(w.Stop)
	m := cn.Membership
	fmt.Fprintf(o.Stderr, "qfleet node %s: roles %s, remote %s, gossip %s, %d member(s); %d trial slot(s)\n",
		cs.Name, strings.Join(o.Roles, ","), sys.Address(), m.LocalMember().GossipAddr, m.NumMembers(), o.Slots)
	<-ctx.Done()
	fmt.Fprintf(o.Stderr, "qfleet node %s: %v: stopping\n", cs.Name, context.Cause(ctx))
	cn.Close(true)
	return nil
}
