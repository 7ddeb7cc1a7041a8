package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/qfleet/qfleet/actors/lograte"
)

// Guard checks every message a peer sends to this node's protoactor remote
// before protoactor reads it.
//
// protoactor's endpoint reader trusts the batch it receives: a type id past
// the end of the type names, a target or sender index out of range, an
// unknown serializer id or a type name nobody registered each panic on the
// gRPC handler's goroutine, which nothing recovers, so one crafted message
// ends the process. It also delivers actor.Stop or a Watch for any PID, and
// forwards a message whose target is another node's address, so a peer
// could stop our actors or make us dial anywhere. The Guard is a gRPC
// stream interceptor: it validates each received RemoteMessage as a whole
// (so a bad envelope drops its whole batch, not the rest after the good
// ones), closes the stream of a peer that sent a bad one, counts the reason
// (qfleet_remote_rejected_total{reason}), logs the peer at most once per
// interval per reason, and recovers a panic in the reader as the last line.
// It also paces each stream to a message rate: over the rate the reader
// waits, and gRPC's flow control pushes back on the sender.
type Guard struct {
	sys    *actor.ActorSystem
	cfg    GuardConfig
	log    *slog.Logger
	limit  *lograte.Limiter
	counts [numRejectReasons]atomic.Uint64
	paced  atomic.Uint64
	types  sync.Map // type name → protoreflect.MessageType, or nil when refused
	desc   *prometheus.Desc
	pdesc  *prometheus.Desc
}

// GuardConfig sets a Guard's limits; zero fields take the defaults.
type GuardConfig struct {
	// MaxMessageBytes bounds one serialized message (MaxMessageBytes).
	MaxMessageBytes int
	// MaxEnvelopes bounds the messages of one batch (4,096; protoactor's
	// writer here sends RemoteWriterBatchSize).
	MaxEnvelopes int
	// Rate is the messages per second one stream may deliver (10,000; the
	// training flows pack hundreds of transitions into one message and send
	// tens per second) and Burst what it may deliver at once (MaxEnvelopes).
	Rate  float64
	Burst int
	// LogEvery is the interval of the rejection log per peer and reason
	// (10 s).
	LogEvery time.Duration
	Logger   *slog.Logger
}

// The reasons a batch is refused: the label of qfleet_remote_rejected_total.
const (
	RejectMessageType = iota // neither a connect request nor a batch
	RejectNoConnect          // a batch before the connect request
	RejectBatchSize          // more envelopes than MaxEnvelopes
	RejectTypeID             // type id outside the batch's type names
	RejectTypeName           // a type this node does not accept
	RejectSerializer         // a serializer other than protobuf
	RejectTarget             // target index out of range, or a PID not on this node
	RejectSender             // sender index out of range, or a PID not on the peer
	RejectSize               // a message over MaxMessageBytes
	RejectDecode             // message bytes that do not decode as their type
	RejectPID                // a Watch, Unwatch or Terminated about a PID not on the peer
	RejectMethod             // a gRPC method protoactor leaves unimplemented (it panics)
	RejectPanic              // protoactor's reader panicked anyway (recovered)
	RejectIdentity           // announces an address its TLS certificate does not name
	numRejectReasons
)

var rejectReasonNames = [numRejectReasons]string{
	"message_type", "no_connect", "batch_size", "type_id", "type_name", "serializer",
	"target", "sender", "size", "decode", "pid", "method", "panic", "identity",
}

// acceptedActorTypes are protoactor's own messages a peer legitimately
// sends: remote watches and their answers, and the dead-letter reply to a
// request. Stop, PoisonPill and the remote-spawn messages are refused.
var acceptedActorTypes = map[string]bool{
	"actor.Watch": true, "actor.Unwatch": true, "actor.Terminated": true, "actor.DeadLetterResponse": true,
}

// acceptedPackage is the prefix of the application's message types.
const acceptedPackage = "qfleet.v1."

// protoSerializerID is protoactor's protobuf serializer; its JSON one is
// never used by qfleet and would decode arbitrary registered types.
const protoSerializerID = 0

// NewGuard returns a Guard for sys's remote: install it with RemoteConfig.
// sys.Address() must be the remote's address once started (it is).
func NewGuard(sys *actor.ActorSystem, cfg GuardConfig) *Guard {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = MaxMessageBytes
	}
	if cfg.MaxEnvelopes <= 0 {
		cfg.MaxEnvelopes = 4096
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10_000
	}
	if cfg.Burst < cfg.MaxEnvelopes {
		cfg.Burst = cfg.MaxEnvelopes
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	return &Guard{
		sys: sys, cfg: cfg, log: log.With("component", "remote-guard"), limit: lograte.New(cfg.LogEvery),
		desc: prometheus.NewDesc("qfleet_remote_rejected_total",
			"Remote messages refused before protoactor read them (the whole batch and the stream are dropped), by reason.",
			[]string{"reason"}, nil),
		pdesc: prometheus.NewDesc("qfleet_remote_paced_total",
			"Batches a peer sent faster than the guard's message rate (delayed, not dropped).", nil, nil),
	}
}

// Rejected returns the count of refusals for reason (one of Reject*).
func (g *Guard) Rejected(reason int) uint64 { return g.counts[reason].Load() }

// RejectedTotal returns the count of refusals for every reason.
func (g *Guard) RejectedTotal() uint64 {
	var n uint64
	for i := range g.counts {
		n += g.counts[i].Load()
	}
	return n
}

// RejectReasonName is reason's label value.
func RejectReasonName(reason int) string { return rejectReasonNames[reason] }

// Describe and Collect make the Guard a prometheus.Collector.
func (g *Guard) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc; ch <- g.pdesc }

func (g *Guard) Collect(ch chan<- prometheus.Metric) {
	for i := range g.counts {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.CounterValue, float64(g.counts[i].Load()), rejectReasonNames[i])
	}
	ch <- prometheus.MustNewConstMetric(g.pdesc, prometheus.CounterValue, float64(g.paced.Load()))
}

// interceptUnary refuses the unary methods: protoactor's ListProcesses and
// GetProcessDiagnostics panic ("implement me"), and qfleet uses neither.
func (g *Guard) interceptUnary(ctx context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	g.reject(peerOf(ctx), RejectMethod, info.FullMethod)
	return nil, status.Error(codes.Unimplemented, "not served")
}

// intercept wraps the Receive stream so that RecvMsg checks each message,
// and recovers a panic of protoactor's reader.
func (g *Guard) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	p := peerOf(ss.Context())
	if info.FullMethod != "/remote.Remoting/Receive" {
		g.reject(p, RejectMethod, info.FullMethod)
		return status.Error(codes.Unimplemented, "not served")
	}
	defer func() {
		if r := recover(); r != nil {
			g.reject(p, RejectPanic, fmt.Sprintf("%v\n%s", r, debug.Stack()))
			err = status.Error(codes.Internal, "message refused")
		}
	}()
	return handler(srv, &guardedStream{ServerStream: ss, g: g, peer: p,
		pace: rate.NewLimiter(rate.Limit(g.cfg.Rate), g.cfg.Burst)})
}

// guardedStream is one peer's Receive stream as protoactor sees it.
type guardedStream struct {
	grpc.ServerStream
	g    *Guard
	peer string
	// from is the peer's actor-system address, from its connect request:
	// the senders of its messages and the PIDs of its watches must be there.
	from string
	pace *rate.Limiter
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(*remote.RemoteMessage)
	if !ok {
		return nil
	}
	reason, detail := s.check(msg)
	if reason >= 0 {
		s.g.reject(s.peer, reason, detail)
		return status.Errorf(codes.InvalidArgument, "message refused: %s", rejectReasonNames[reason])
	}
	if b := msg.GetMessageBatch(); b != nil {
		n := len(b.Envelopes)
		if !s.pace.AllowN(time.Now(), n) {
			s.g.paced.Add(1)
			if err := s.pace.WaitN(s.Context(), n); err != nil {
				return err
			}
		}
	}
	return nil
}

// check returns the reason msg is refused and a detail for the log, or -1.
func (s *guardedStream) check(msg *remote.RemoteMessage) (int, string) {
	switch t := msg.MessageType.(type) {
	case *remote.RemoteMessage_ConnectRequest:
		sc := t.ConnectRequest.GetServerConnection()
		if sc == nil || sc.Address == "" || (s.from != "" && sc.Address != s.from) {
			return RejectMessageType, "connect request without a server connection address"
		}
		if err := certNames(s.Context(), sc.Address); err != nil {
			return RejectIdentity, err.Error()
		}
		s.from = sc.Address
		return -1, ""
	case *remote.RemoteMessage_MessageBatch:
		if s.from == "" {
			return RejectNoConnect, ""
		}
		return s.g.checkBatch(t.MessageBatch, s.from)
	default:
		return RejectMessageType, fmt.Sprintf("%T", msg.MessageType)
	}
}

// checkBatch checks every index, type, size and PID of b against what
// protoactor's reader will do with them.
func (g *Guard) checkBatch(b *remote.MessageBatch, from string) (int, string) {
	if len(b.Envelopes) > g.cfg.MaxEnvelopes {
		return RejectBatchSize, fmt.Sprintf("%d messages", len(b.Envelopes))
	}
	local := g.sys.Address()
	for i, t := range b.Targets {
		if t == nil || t.Id == "" || t.Address != local {
			return RejectTarget, fmt.Sprintf("target %d is %v, not on %s", i, t, local)
		}
	}
	for i, sp := range b.Senders {
		if sp == nil || sp.Id == "" || sp.Address != from {
			return RejectSender, fmt.Sprintf("sender %d is %v, not on %s", i, sp, from)
		}
	}
	types := make([]protoreflect.MessageType, len(b.TypeNames))
	for i, name := range b.TypeNames {
		if types[i] = g.messageType(name); types[i] == nil {
			return RejectTypeName, truncate(name, 80)
		}
	}
	for i, e := range b.Envelopes {
		if reason, detail := g.checkEnvelope(e, b, types, from); reason >= 0 {
			return reason, fmt.Sprintf("message %d: %s", i, detail)
		}
	}
	return -1, ""
}

// maxHeaderEntries bounds a message header (qfleet sends none).
const maxHeaderEntries = 64

func (g *Guard) checkEnvelope(e *remote.MessageEnvelope, b *remote.MessageBatch, types []protoreflect.MessageType, from string) (int, string) {
	switch {
	case e == nil:
		return RejectMessageType, "nil envelope"
	case e.TypeId < 0 || int(e.TypeId) >= len(types):
		return RejectTypeID, fmt.Sprintf("type id %d of %d", e.TypeId, len(types))
	case e.SerializerId != protoSerializerID:
		return RejectSerializer, fmt.Sprintf("serializer %d", e.SerializerId)
	case e.Target < 0 || int(e.Target) >= len(b.Targets):
		return RejectTarget, fmt.Sprintf("target %d of %d", e.Target, len(b.Targets))
	case e.Sender < 0 || int(e.Sender) > len(b.Senders): // 0 is "no sender"
		return RejectSender, fmt.Sprintf("sender %d of %d", e.Sender, len(b.Senders))
	case len(e.MessageData) > g.cfg.MaxMessageBytes:
		return RejectSize, fmt.Sprintf("%d bytes (limit %d)", len(e.MessageData), g.cfg.MaxMessageBytes)
	case len(e.GetMessageHeader().GetHeaderData()) > maxHeaderEntries:
		return RejectSize, fmt.Sprintf("%d header entries", len(e.GetMessageHeader().GetHeaderData()))
	}
	m := types[e.TypeId].New().Interface()
	if err := proto.Unmarshal(e.MessageData, m); err != nil {
		return RejectDecode, fmt.Sprintf("%s: %v", b.TypeNames[e.TypeId], err)
	}
	var pid *actor.PID
	switch v := m.(type) {
	case *actor.Watch:
		pid = v.Watcher
	case *actor.Unwatch:
		pid = v.Watcher
	case *actor.Terminated:
		pid = v.Who
	default:
		return -1, ""
	}
	if pid == nil || pid.Id == "" || pid.Address != from {
		return RejectPID, fmt.Sprintf("%s about %v, not on %s", b.TypeNames[e.TypeId], pid, from)
	}
	return -1, ""
}

// messageType resolves a type name a peer sent, or nil when it is not one
// this node accepts (unknown, or outside the accepted set). Lookups are
// cached; refusals are not, so that a flood of random names cannot grow the
// cache.
func (g *Guard) messageType(name string) protoreflect.MessageType {
	if v, ok := g.types.Load(name); ok {
		return v.(protoreflect.MessageType)
	}
	if !strings.HasPrefix(name, acceptedPackage) && !acceptedActorTypes[name] {
		return nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil
	}
	g.types.Store(name, mt)
	return mt
}

// reject counts a refusal and logs it, at most once per LogEvery for each
// peer host and reason (a peer that reconnects gets a new port each time).
func (g *Guard) reject(peer string, reason int, detail string) {
	g.counts[reason].Add(1)
	name := rejectReasonNames[reason]
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	if ok, held := g.limit.Allow(host+"|"+name, time.Now()); ok {
		g.log.Warn("remote message refused; stream closed", "peer", peer, "reason", name,
			"detail", truncate(detail, 400), "refused_since_last_line", held)
	}
}

// certNames checks, on a TLS stream with a client certificate, that the
// certificate names the host of the address the peer announces: the senders
// and watch PIDs of its messages must be on that address, so a node holding
// a certificate can speak only as itself, not as another member. Plaintext
// streams (an --insecure cluster) have no identity to check.
func certNames(ctx context.Context, announced string) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(announced)
	if err != nil {
		return fmt.Errorf("announced address %q: %v", announced, err)
	}
	leaf := info.State.PeerCertificates[0]
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("announces %s, certificate %q names %v %v", announced, leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	return nil
}

func peerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
