package faultnet

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"

	"github.com/qfleet/qfleet/cluster"
)

// DialOption makes a gRPC client dial through the network as node from.
func (n *Network) DialOption(from string) grpc.DialOption {
	return grpc.WithContextDialer(n.Dialer(from))
}

// RemoteOption makes a protoactor remote dial every peer through the
// network as node from. It adds DialOption to the remote's dial options
// and keeps the others: remote.WithDialOptions would replace them, and with
// them cluster.RemoteConfig's credentials, back-off and keepalive. Give it
// to cluster.RemoteConfig (or cluster.NodeOptions.RemoteOptions).
func (n *Network) RemoteOption(from string) remote.ConfigOption {
	return func(c *remote.Config) {
		c.DialOptions = append(c.DialOptions, n.DialOption(from))
	}
}

// NodeConfig is how StartNode sets a node's remote up; the zero value is a
// plaintext remote with the default guard, logging nothing.
type NodeConfig struct {
	Logger *slog.Logger // the actor system's (cluster.NewActorSystem); nil discards
	TLS    *cluster.TLS // nil: plaintext
	Guard  cluster.GuardConfig
	// Remote options are applied after the network's (shorter writer
	// queues, say).
	Remote []remote.ConfigOption
}

// Node is one actor system on the network with its remote set up as in
// production: cluster.RemoteConfig with a cluster.Guard, on a loopback port.
type Node struct {
	Name   string
	System *actor.ActorSystem
	Remote *remote.Remote
	Guard  *cluster.Guard

	once sync.Once
}

// StartNode starts node name: a new actor system whose remote listens on a
// free loopback port, bound to name, and dials every peer through n.
// Close it when done.
func (n *Network) StartNode(name string, cfg NodeConfig) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sys := cluster.NewActorSystem(log)
	guard := cluster.NewGuard(sys, cfg.Guard)
	opts := append([]remote.ConfigOption{n.RemoteOption(name)}, cfg.Remote...)
	r, err := cluster.StartRemote(sys, cluster.RemoteConfig("127.0.0.1", 0, "", cfg.TLS, guard, opts...))
	if err != nil {
		sys.Shutdown()
		return nil, fmt.Errorf("faultnet: node %s: %w", name, err)
	}
	n.Bind(name, sys.Address())
	return &Node{Name: name, System: sys, Remote: r, Guard: guard}, nil
}

// Address is the node's remote address, as PIDs on it carry it.
func (nd *Node) Address() string { return nd.System.Address() }

// Close stops the remote at once (a graceful stop waits up to 10 s for
// peers' streams) and the actor system, unless something (actors.Node.Stop)
// stopped it already: a second ActorSystem.Shutdown panics. Idempotent.
func (nd *Node) Close() {
	nd.once.Do(func() {
		nd.Remote.Shutdown(false)
		if !nd.System.IsStopped() {
			nd.System.Shutdown()
		}
	})
}
