package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Wire limits of protoactor remote.
//
// protoactor sends up to EndpointWriterBatchSize queued messages as ONE gRPC
// message, and gRPC's default 4 MiB receive limit applies to that whole
// batch: above it the stream breaks and the batch is lost without a dead
// letter (cluster/README.md: 91 of 20,000 20 KB messages arrived). So:
//
//	RemoteWriterBatchSize = MaxBatchBytes / (MaxMessageBytes + EnvelopeOverheadBytes)
//	                      = 64 MiB / (2 MiB + 1 KiB) = 31
//	31 × (2 MiB + 1 KiB) = 62.03 MiB < 64 MiB = MaxBatchBytes
//
// so even a batch of 31 maximum-size messages is received. Small messages
// are still batched 31 to a gRPC write; qfleet's hot flows already pack
// hundreds of transitions into one message, so messages/s stays low.
const (
	// MaxBatchBytes is the gRPC receive (server) and send (client) limit.
	// It bounds one batch; gRPC allocates only what actually arrives.
	MaxBatchBytes = 64 << 20
	// MaxMessageBytes is the largest serialized message the application may
	// send. Larger payloads (weights of big networks) must be chunked.
	MaxMessageBytes = 2 << 20
	// EnvelopeOverheadBytes bounds what a batch adds per message: the
	// envelope's ids and header, plus, in the worst case, a distinct target
	// PID and type name per message.
	EnvelopeOverheadBytes = 1 << 10
	// RemoteWriterBatchSize is protoactor's EndpointWriterBatchSize.
	RemoteWriterBatchSize = MaxBatchBytes / (MaxMessageBytes + EnvelopeOverheadBytes)
	// remoteWriterQueueSize is the initial size of each peer's send ring.
	// protoactor's default (1e6) pre-allocates 16 MB per peer; the ring
	// grows by doubling when needed and has no bound either way, so flow
	// control stays the application's job (credits).
	remoteWriterQueueSize = 1 << 12
)

// Keepalive of remote connections. Without it a frozen or partitioned peer
// is never noticed (a killed one is, in milliseconds). The client pings an
// idle connection every 10 s (gRPC's minimum) and gives up 5 s later: a
// frozen peer is found in ~15 s. The server permits pings every 5 s (its
// default policy, 5 min, answers a 10 s pinger with GOAWAY "too_many_pings")
// and pings idle clients itself, so the receiving side also drops a frozen
// sender.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 5 * time.Second
	keepaliveMinTime = 5 * time.Second
)

// RemoteConfig configures a protoactor remote for real links. It listens on
// listenHost:port (port 0 picks a free one) and advertises advertised
// (host:port) as this node's address; advertised "" uses the listening
// address, which must then not be a wildcard. tlsCfg nil means plaintext
// (insecure.NewCredentials, stated explicitly: protoactor's own default is
// dropped as soon as any dial option is given); otherwise TLS 1.3, mutual
// when tlsCfg.Mutual. extra options are applied last; note that
// remote.WithDialOptions and remote.WithServerOptions replace these,
// credentials and guard included. guard checks every message peers send
// (NewGuard for this system); it must not be nil: protoactor's reader alone
// lets one crafted message end the process.
func RemoteConfig(listenHost string, port int, advertised string, tlsCfg *TLS, guard *Guard, extra ...remote.ConfigOption) *remote.Config {
	if guard == nil {
		panic("cluster.RemoteConfig: nil guard")
	}
	serverCreds, clientCreds := insecure.NewCredentials(), insecure.NewCredentials()
	if tlsCfg != nil {
		serverCreds, clientCreds = credentials.NewTLS(tlsCfg.Server), credentials.NewTLS(tlsCfg.Client)
	}
	opts := []remote.ConfigOption{
		remote.WithServerOptions(
			grpc.Creds(serverCreds),
			grpc.MaxRecvMsgSize(MaxBatchBytes),
			grpc.MaxSendMsgSize(MaxBatchBytes),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
			grpc.ChainStreamInterceptor(guard.intercept), grpc.ChainUnaryInterceptor(guard.interceptUnary),
		),
		remote.WithDialOptions(
			grpc.WithTransportCredentials(clientCreds),
			// gRPC's default reconnect back-off grows to 120 s: after a 20 s
			// partition a runner would stay cut off for seconds after the
			// link healed. Cap it at 1 s (a redial is one TCP+TLS handshake).
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 5 * time.Second,
			}),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		),
		remote.WithCallOptions(
			grpc.MaxCallRecvMsgSize(MaxBatchBytes),
			// An oversized batch fails at the sender instead of after
			// crossing a slow link.
			grpc.MaxCallSendMsgSize(MaxBatchBytes),
		),
		remote.WithEndpointWriterBatchSize(RemoteWriterBatchSize),
		remote.WithEndpointWriterQueueSize(remoteWriterQueueSize),
	}
	if advertised != "" {
		opts = append(opts, remote.WithAdvertisedHost(advertised))
	}
	return remote.Configure(listenHost, port, append(opts, extra...)...)
}

// StartRemote starts cfg's remote on sys and returns it; sys.Address() is
// then the address to advertise (Config.RemoteAddr). remote.Start panics
// instead of returning errors: StartRemote checks the address first and
// recovers the panic, returning an error that wraps ErrRemoteListen and
// names the address. After an error, discard sys.
func StartRemote(sys *actor.ActorSystem, cfg *remote.Config) (r *remote.Remote, err error) {
	addr := cfg.Address()
	if ip := net.ParseIP(cfg.Host); (cfg.Host == "" || (ip != nil && ip.IsUnspecified())) && cfg.AdvertisedHost == "" {
		return nil, fmt.Errorf("%w on %s: a wildcard listen address needs an advertised host:port that peers can dial", ErrRemoteListen, addr)
	}
	if cfg.Port != 0 {
		ln, lerr := net.Listen("tcp", addr)
		if lerr != nil {
			return nil, fmt.Errorf("%w on %s: %v", ErrRemoteListen, addr, lerr)
		}
		if cerr := ln.Close(); cerr != nil {
			return nil, fmt.Errorf("%w on %s: %v", ErrRemoteListen, addr, cerr)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%w on %s: %v", ErrRemoteListen, addr, p)
		}
	}()
	r = remote.NewRemote(sys, cfg)
	r.Start()
	return r, nil
}
