package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// NodeSpec asks for a cluster member the way a command line or a config
// file does: addresses as strings and credentials as file names. Resolve
// checks it; StartNode starts it.
type NodeSpec struct {
	Name       string   // unique in the cluster; required
	GossipAddr string   // memberlist bind address, IP:port (TCP and UDP)
	RemoteAddr string   // protoactor remote bind address, host:port
	Advertise  string   // host[:port] other nodes reach this one at; "": the bind host
	Join       []string // seed gossip addresses; none for the first node
	Profile    string   // failure detection: ProfileLocal, ProfileLAN or ProfileWAN

	KeyFile                string // the shared gossip key
	TLSCert, TLSKey, TLSCA string // this node's certificate and key; the CA peers must be signed by
	Insecure               bool   // allow non-loopback addresses without a key and TLS
}

// NodeConfig is a resolved NodeSpec: addresses checked, key and TLS
// credentials loaded.
type NodeConfig struct {
	Name                string
	RemoteHost          string
	RemotePort          int
	AdvHost, AdvPort    string // the remote as other nodes dial it
	Advertised          bool   // NodeSpec.Advertise given: gossip advertises AdvHost too
	GossipAddr, Profile string
	Join                []string
	Key                 []byte
	TLS                 *TLS
}

// Resolve checks the spec, loads the gossip key and the TLS credentials.
// Every error names the setting it is about (the flag names of 'qfleet
// node', which are the config keys with - for _).
func (s NodeSpec) Resolve() (*NodeConfig, error) {
	if s.Name == "" {
		return nil, errors.New("--name: must not be empty")
	}
	c := &NodeConfig{Name: s.Name, GossipAddr: s.GossipAddr, Profile: s.Profile, Advertised: s.Advertise != "", Join: s.Join}
	remoteHost, remotePortStr, err := net.SplitHostPort(s.RemoteAddr)
	if err != nil {
		return nil, fmt.Errorf("--remote-addr %q: %v", s.RemoteAddr, err)
	}
	remotePort, err := strconv.Atoi(remotePortStr)
	if err != nil || remotePort < 0 || remotePort > 65535 {
		return nil, fmt.Errorf("--remote-addr %q: bad port", s.RemoteAddr)
	}
	c.RemoteHost, c.RemotePort = remoteHost, remotePort
	advHost, advPort := s.Advertise, remotePortStr
	if h, p, err := net.SplitHostPort(advHost); err == nil {
		// host:port: a NAT or a proxy maps the remote port (gossip keeps its own).
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("--advertise %q: bad port", s.Advertise)
		}
		advHost, advPort = h, p
	}
	if advHost == "" {
		advHost = remoteHost
	}
	if ip := net.ParseIP(advHost); advHost == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("--remote-addr %s binds every interface: give --advertise HOST, the address other nodes reach this one at", s.RemoteAddr)
	}
	c.AdvHost, c.AdvPort = advHost, advPort
	secured := s.KeyFile != "" && s.TLSCert != ""
	if !secured && !s.Insecure && !AllLoopback(append([]string{s.GossipAddr, s.RemoteAddr, advHost}, c.Join...)) {
		return nil, errors.New("running across hosts needs --cluster-key-file and --tls-cert/--tls-key (see 'qfleet certs'), or --insecure to run unencrypted")
	}
	if s.KeyFile != "" {
		if c.Key, err = LoadClusterKey(s.KeyFile); err != nil {
			return nil, fmt.Errorf("--cluster-key-file: %w", err)
		}
	}
	if s.TLSCert != "" || s.TLSKey != "" || s.TLSCA != "" {
		if s.TLSCert == "" || s.TLSKey == "" {
			return nil, errors.New("--tls-cert and --tls-key go together")
		}
		if c.TLS, err = LoadTLS(s.TLSCert, s.TLSKey, s.TLSCA); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AllLoopback reports whether every address (host or host:port) is on loopback.
func AllLoopback(addrs []string) bool {
	for _, a := range addrs {
		h := a
		if host, _, err := net.SplitHostPort(a); err == nil {
			h = host
		}
		if h == "localhost" {
			continue
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// NodeOptions are a node's parts beyond its addresses.
type NodeOptions struct {
	Roles   []string     // advertised in gossip
	Runners int          // env runners here, advertised for the ε ladder (nodes with RoleRunner)
	Logger  *slog.Logger // nil: slog.Default()
	// OnEvent gets every membership event, on membership's goroutine, maybe
	// before StartNode returns.
	OnEvent func(Event)
	// RemoteOptions are added to the remote's configuration (tests give a
	// dialer that injects faults).
	RemoteOptions []remote.ConfigOption
}

// JoinError is a failure to join the gossip: the node's settings are wrong
// (a bad address, a key the others do not share), not the machine.
type JoinError struct{ Err error }

func (e *JoinError) Error() string { return e.Err.Error() }
func (e *JoinError) Unwrap() error { return e.Err }

// Node is a started cluster member on an actor system: its remote endpoint
// (behind the Guard), its gossip membership and the Directory of the roles.
// Close tears them down in the one order that loses nothing.
type Node struct {
	Name       string
	System     *actor.ActorSystem
	Remote     *remote.Remote
	Membership *Membership
	Directory  *Directory
	Guard      *Guard // register it with the node's metrics registry

	logger     *slog.Logger
	remoteBind string // the remote's listen address
	mu         sync.Mutex
	onClose    []func()
	closed     bool
}

// StartNode starts the remote on sys behind a Guard, joins the gossip
// advertising o.Roles, and attaches a Directory to sys. A failure to join
// is a *JoinError; whatever was started is shut down again.
func StartNode(sys *actor.ActorSystem, c *NodeConfig, o NodeOptions) (*Node, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	guard := NewGuard(sys, GuardConfig{Logger: logger})
	rem, err := StartRemote(sys, RemoteConfig(c.RemoteHost, c.RemotePort, net.JoinHostPort(c.AdvHost, c.AdvPort), c.TLS, guard, o.RemoteOptions...))
	if err != nil {
		return nil, err
	}
	ccfg := DefaultConfig()
	ccfg.NodeName, ccfg.Roles, ccfg.GossipAddr, ccfg.RemoteAddr = c.Name, o.Roles, c.GossipAddr, sys.Address()
	ccfg.Join, ccfg.Profile, ccfg.ClusterKey, ccfg.Logger = c.Join, c.Profile, c.Key, logger
	ccfg.Runners = o.Runners
	if c.Advertised {
		ccfg.AdvertiseAddr = c.AdvHost
	}
	var opts []Option
	if o.OnEvent != nil {
		opts = append(opts, WithEventHandler(o.OnEvent))
	}
	bind := net.JoinHostPort(c.RemoteHost, strconv.Itoa(c.RemotePort))
	m, err := Start(ccfg, opts...)
	if err != nil {
		stopRemoteAt(rem, bind)
		return nil, &JoinError{err}
	}
	dir := NewDirectory(m)
	dir.AttachActorSystem(sys)
	return &Node{Name: c.Name, System: sys, Remote: rem, Membership: m, Directory: dir, Guard: guard, logger: logger, remoteBind: bind}, nil
}

// OnClose adds f to what Close runs before it tears the node down; the
// last added runs first (stop what uses the cluster before the cluster).
func (n *Node) OnClose(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onClose = append(n.onClose, f)
}

// leaveTimeout bounds the graceful leave: the leave message must reach
// some member; a partitioned node gives up and shuts down anyway.
const leaveTimeout = 2 * time.Second

// Close tears the node down, in this order:
//  1. leave the gossip, when leave is true, so the others see a graceful
//     leave (runner-only nodes end with the learner) rather than a failure
//     (a node whose learner has left has no one to tell: leave false);
//  2. the OnClose functions, newest first;
//  3. the Directory (no more watch notices into the actor system);
//  4. the membership;
//  5. the remote, gracefully: the endpoints flush and close (waiting
//     remoteShutdownWait at most).
//
// Close and Abort are idempotent together. The actor system is the caller's.
func (n *Node) Close(leave bool) { n.teardown(leave, true) }

// Abort is Close for a start that failed: no leave, the remote stopped at once.
func (n *Node) Abort() { n.teardown(false, false) }

func (n *Node) teardown(leave, graceful bool) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	hooks := n.onClose
	n.mu.Unlock()
	if leave {
		if err := n.Membership.Leave(leaveTimeout); err != nil {
			n.logger.Warn("leave", "err", err)
		}
	}
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
	n.Directory.Close()
	n.Membership.Shutdown()
	n.shutdownRemote(graceful)
}

// remoteShutdownWait bounds the remote's graceful shutdown. It waits for
// every endpoint writer to stop, and a writer that was dialing a peer that
// has gone (a message sent to it as it left) sleeps through protoactor's
// reconnect attempts first, 5 × 2 s: a learner whose runner node had left
// took 7-10 s to exit. Past this wait the node is torn down for its caller;
// the writer's last attempts end on their own (the process usually exits
// before).
const remoteShutdownWait = 2 * time.Second

func (n *Node) shutdownRemote(graceful bool) {
	if !graceful {
		stopRemoteAt(n.Remote, n.remoteBind)
		return
	}
	done := make(chan struct{})
	go func() {
		n.Remote.Shutdown(graceful)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(remoteShutdownWait):
		n.logger.Warn("remote shutdown still waits on a departed peer's reconnect attempts: not waiting for them", "waited", remoteShutdownWait)
	}
}

// stopRemoteAt stops rem at once and waits, remoteShutdownWait at most,
// until its listen address bind can be bound again. gRPC serves in a
// goroutine of its own, and a Stop that comes before that goroutine runs
// leaves the listener to it to close: a command run again at once (a
// failed start, its cause fixed) could find the port still taken.
func stopRemoteAt(rem *remote.Remote, bind string) {
	rem.Shutdown(false)
	if _, port, err := net.SplitHostPort(bind); err != nil || port == "0" {
		return
	}
	for deadline := time.Now().Add(remoteShutdownWait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l, err := net.Listen("tcp", bind); err == nil {
			l.Close()
			return
		}
	}
}
