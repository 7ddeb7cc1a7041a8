package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// Roles a node can advertise in gossip. The training roles are the actors'
// (actors.AllRoles), named once there; stats has no role of its own: it
// lives on the learner's node.
const (
	RoleRunner      = actors.RoleRunner
	RoleReplay      = actors.RoleReplay
	RoleLearner     = actors.RoleLearner
	RoleBroadcaster = actors.RoleBroadcaster
	RoleEvaluator   = actors.RoleEvaluator
	// RoleTrials: the node runs hyper-parameter sweep trials ('qfleet node
	// --roles trials'), each a child 'qfleet dev' process.
	RoleTrials = "trials"
	// RoleSweep: a 'qfleet sweep' coordinator that joined the cluster to
	// hand trials to the nodes with RoleTrials.
	RoleSweep = "sweep"
)

// AllRoles lists every role, in the order `qfleet node --roles` documents
// (the sweep coordinator's role last: 'qfleet sweep' takes it, not node).
var AllRoles = []string{RoleRunner, RoleReplay, RoleLearner, RoleBroadcaster, RoleEvaluator, RoleTrials, RoleSweep}

// Failure-detection profiles (see profile.go for the numbers behind them).
const (
	ProfileLocal = "local" // one host, loopback: sub-second detection
	ProfileLAN   = "lan"   // one data centre: a few seconds
	ProfileWAN   = "wan"   // across the Internet: within 10 s
)

// Default ports. Gossip uses DefaultGossipPort on both TCP and UDP; the
// protoactor remote uses DefaultRemotePort on TCP.
const (
	DefaultGossipPort = 7946
	DefaultRemotePort = 7947
)

// Config describes one node's place in the cluster. Start copies it; changing
// it afterwards has no effect.
type Config struct {
	// NodeName identifies the node in the cluster and must be unique in it:
	// memberlist refuses a second live node with the same name at another
	// address. Default: the host name. Several nodes on one host need
	// distinct names.
	NodeName string

	// Roles this node runs (RoleRunner, ...). Advertised in the node
	// metadata so that every node's Directory can find them. Empty is
	// allowed: such a node only relays gossip (a pure seed).
	Roles []string

	// Runners is the number of env runner actors this node runs (with
	// RoleRunner). Advertised in the node metadata so that every runner node
	// can place its runners in the cluster-wide ε ladder (RunnerLadder).
	// 0 with RoleRunner: the node takes no place in the ladder.
	Runners int

	// GossipAddr is the IP:port memberlist binds, on both UDP and TCP.
	// Port 0 picks a free port (tests, several nodes per host); the real
	// port is read back by Membership.LocalMember. The host must be an IP
	// literal (memberlist silently binds every interface for a name);
	// 0.0.0.0 binds all interfaces and advertises the first private IP.
	GossipAddr string

	// AdvertiseAddr is the IP or IP:port other nodes use to reach our
	// gossip port, when it differs from GossipAddr: behind NAT, or when
	// GossipAddr is 0.0.0.0 on a host whose reachable address is public
	// (memberlist only picks private ones). Empty: derived from GossipAddr.
	// Without a port, the bound port is advertised.
	AdvertiseAddr string

	// RemoteAddr is the host:port of this node's protoactor remote as other
	// nodes must dial it (the actor system's Address() after StartRemote).
	// It becomes the address part of every PID the Directory hands out for
	// this node. Required; must not be a wildcard address.
	RemoteAddr string

	// Join lists seed gossip addresses (host:port). Any one reachable seed
	// is enough; the rest are learned by gossip. Empty: this is the first
	// node. Seeds are retried in the background while they are not members
	// (Membership option WithRejoinInterval), so a restarted seed host finds
	// the cluster again.
	Join []string

	// Profile tunes failure detection: ProfileLocal, ProfileLAN or
	// ProfileWAN. Faster detection costs more probe traffic and more false
	// suspicions on a slow or congested link; see profile.go.
	Profile string

	// ClusterKey encrypts and authenticates all gossip with AES-GCM
	// (16, 24 or 32 bytes select AES-128/192/256). A node without the same
	// key cannot join. nil sends gossip in plaintext: only for one host or a
	// trusted network. Load it with LoadClusterKey.
	ClusterKey []byte

	// Label separates clusters that share hosts and ports: memberlist drops
	// packets whose label differs (with a key, the label is also GCM
	// additional data). At most 255 bytes; empty means no label.
	Label string

	// Epoch distinguishes incarnations of a node that restarts under the
	// same name: a peer that sees the epoch change drops the old remote
	// endpoint. 0 means "set it from the clock at Start" (Unix
	// nanoseconds), which is what a restarting process wants.
	Epoch uint64

	// Logger receives memberlist's and this package's logs. nil discards.
	Logger *slog.Logger
}

// DefaultConfig is a cross-host node: named after the host, gossip on every
// interface at DefaultGossipPort, the WAN profile (the product's point is
// hosts that are not on one LAN). RemoteAddr and, for a node that is not the
// first, Join must still be set; ClusterKey should be.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "qfleet"
	}
	return Config{
		NodeName:      host,
		Roles:         nil,
		GossipAddr:    net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultGossipPort)),
		AdvertiseAddr: "",
		RemoteAddr:    "",
		Join:          nil,
		Profile:       ProfileWAN,
		ClusterKey:    nil,
		Label:         "qfleet",
		Epoch:         0,
		Logger:        nil,
	}
}

// DefaultLocalConfig is a node on loopback with a free gossip port and
// sub-second failure detection: several nodes in one process (tests) or on
// one host.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.NodeName = "local"
	c.GossipAddr = "127.0.0.1:0"
	c.Profile = ProfileLocal
	return c
}

// Validate checks every field and returns the first problem, wrapped in
// ErrInvalidConfig and naming the field.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.NodeName == "" {
		return bad("NodeName is empty: every node needs a name unique in the cluster")
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		if !knownRole(r) {
			return bad("Roles: unknown role %q (want one of %v)", r, AllRoles)
		}
		if seen[r] {
			return bad("Roles: %q listed twice", r)
		}
		seen[r] = true
	}
	if c.Runners < 0 {
		return bad("Runners: %d, must be >= 0", c.Runners)
	}
	if _, _, err := splitIPPort(c.GossipAddr, false); err != nil {
		return bad("GossipAddr %q: %v", c.GossipAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddr, true); err != nil {
			return bad("AdvertiseAddr %q: %v", c.AdvertiseAddr, err)
		}
	}
	if c.RemoteAddr == "" {
		return bad("RemoteAddr is empty: set it to the remote's advertised host:port")
	}
	host, port, err := net.SplitHostPort(c.RemoteAddr)
	if err != nil {
		return bad("RemoteAddr %q: %v", c.RemoteAddr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("RemoteAddr %q: port must be 1-65535 (the remote's real port, read back after StartRemote)", c.RemoteAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return bad("RemoteAddr %q: a wildcard host cannot be dialled by other nodes", c.RemoteAddr)
	}
	for _, s := range c.Join {
		h, p, err := net.SplitHostPort(s)
		if err != nil || h == "" {
			return bad("Join: seed %q is not host:port", s)
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("Join: seed %q: port must be 1-65535", s)
		}
	}
	if _, ok := profiles[c.Profile]; !ok {
		return bad("Profile %q: want %q, %q or %q", c.Profile, ProfileLocal, ProfileLAN, ProfileWAN)
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		return bad("ClusterKey is %d bytes: want 16, 24 or 32 (AES-128/192/256), or none", len(c.ClusterKey))
	}
	if len(c.Label) > 255 {
		return bad("Label is %d bytes: at most 255", len(c.Label))
	}
	return nil
}

// FailureDetectionBound is how long, at most, the cluster takes to declare a
// silent node of up to 10 members failed under this profile (measured, see
// README.md). Tests and operators wait this long before calling a node lost.
func (c Config) FailureDetectionBound() time.Duration {
	return profiles[c.Profile].bound
}

func knownRole(r string) bool {
	for _, k := range AllRoles {
		if r == k {
			return true
		}
	}
	return false
}

// splitIPPort parses "IP:port" (or, when portOptional, a bare IP). The host
// must be an IP literal because memberlist's transport ignores host names.
func splitIPPort(s string, portOptional bool) (net.IP, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if !portOptional {
			return nil, 0, fmt.Errorf("want IP:port: %v", err)
		}
		host, portStr = s, ""
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("host %q is not an IP address", host)
	}
	port := 0
	if portStr != "" {
		port, err = strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, 0, fmt.Errorf("port %q must be 0-65535", portStr)
		}
	}
	return ip, port, nil
}
