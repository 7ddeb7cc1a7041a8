// Package hostile speaks protoactor's remoting gRPC service directly, as a
// hostile or buggy peer would, to test that a node survives what such a peer
// sends. It is a test tool: nothing in qfleet's training path imports it.
package hostile

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Peer is one Receive stream to a node's remote.
type Peer struct {
	conn   *grpc.ClientConn
	stream remote.Remoting_ReceiveClient
	cancel context.CancelFunc
	recv   chan error // the stream's end, once
}

// Dial opens a Receive stream to addr (host:port); tlsCfg nil is plaintext.
func Dial(addr string, tlsCfg *tls.Config) (*Peer, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	p := &Peer{conn: conn, stream: stream, cancel: cancel, recv: make(chan error, 1)}
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				p.recv <- err
				return
			}
		}
	}()
	return p, nil
}

// DialConnected opens a Receive stream to addr and sends the connect
// request announcing from.
func DialConnected(addr string, tlsCfg *tls.Config, from string) (*Peer, error) {
	p, err := Dial(addr, tlsCfg)
	if err != nil {
		return nil, err
	}
	if err := p.Connect(from); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Connect sends the connect request protoactor's writer sends first,
// announcing from as this peer's actor-system address.
func (p *Peer) Connect(from string) error {
	return p.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "hostile", Address: from}}}}})
}

// Send sends one batch.
func (p *Peer) Send(b *remote.MessageBatch) error {
	return p.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}})
}

// SendRaw sends any RemoteMessage (e.g. one with no message type).
func (p *Peer) SendRaw(m *remote.RemoteMessage) error { return p.stream.Send(m) }

// ErrStillOpen is returned by Closed when the node kept the stream open.
var ErrStillOpen = errors.New("the node kept the stream open")

// Closed waits up to timeout for the node to end the stream and returns
// nil when it did.
func (p *Peer) Closed(timeout time.Duration) error {
	select {
	case <-p.recv:
		return nil
	case <-time.After(timeout):
		return ErrStillOpen
	}
}

// Close ends the stream and the connection.
func (p *Peer) Close() {
	p.cancel()
	p.conn.Close()
}

// CallUnimplemented calls ListProcesses, a unary method protoactor's
// server answers with a panic.
func CallUnimplemented(addr string) error {
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = remote.NewRemotingClient(conn).ListProcesses(ctx, &remote.ListProcessesRequest{})
	return err
}

// Probe is one crafted batch and whether it needs the connect request
// first (a batch before it is a probe of its own).
type Probe struct {
	Name    string
	Batch   *remote.MessageBatch
	Connect bool
	Reason  string // the guard's refusal reason (qfleet_remote_rejected_total's label)
}

// Probes are the crafted batches: each once killed a node through
// protoactor's reader, or would make it act for a peer it must not (stop an
// actor, dial a third address). target is an actor on the node; from is the
// address the peer announces. The valid message, where one is needed, is
// valid of type name with bytes data.
func Probes(target *actor.PID, from string, name string, data []byte) []Probe {
	valid := func() *remote.MessageBatch { return Valid(target, name, data) }
	with := func(f func(b *remote.MessageBatch)) *remote.MessageBatch { b := valid(); f(b); return b }
	marshal := func(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }
	other := &actor.PID{Address: "203.0.113.9:7947", Id: "victim"}
	many := make([]*remote.MessageEnvelope, 100_000)
	for i := range many {
		many[i] = &remote.MessageEnvelope{MessageData: data}
	}
	return []Probe{
		{"type id past the type names", &remote.MessageBatch{Targets: []*actor.PID{target},
			Envelopes: []*remote.MessageEnvelope{{TypeId: 7, Target: 0}}}, true, "type_id"},
		{"target past the targets", with(func(b *remote.MessageBatch) { b.Envelopes[0].Target = 3 }), true, "target"},
		{"negative target", with(func(b *remote.MessageBatch) { b.Envelopes[0].Target = -1 }), true, "target"},
		{"sender past the senders", with(func(b *remote.MessageBatch) { b.Envelopes[0].Sender = 5 }), true, "sender"},
		{"unknown serializer id", with(func(b *remote.MessageBatch) { b.Envelopes[0].SerializerId = 9 }), true, "serializer"},
		{"JSON serializer", with(func(b *remote.MessageBatch) { b.Envelopes[0].SerializerId = 1 }), true, "serializer"},
		{"60 MiB message of an unknown type", &remote.MessageBatch{TypeNames: []string{"nobody.Knows"}, Targets: []*actor.PID{target},
			Envelopes: []*remote.MessageEnvelope{{MessageData: make([]byte, 60<<20)}}}, true, "type_name"},
		{"actor.Stop to an actor", with(func(b *remote.MessageBatch) {
			b.TypeNames[0], b.Envelopes[0].MessageData = "actor.Stop", marshal(&actor.Stop{})
		}), true, "type_name"},
		{"target on another node", with(func(b *remote.MessageBatch) { b.Targets[0] = other }), true, "target"},
		{"nil target", with(func(b *remote.MessageBatch) { b.Targets[0] = nil }), true, "target"},
		{"bytes that do not decode", with(func(b *remote.MessageBatch) { b.Envelopes[0].MessageData = []byte{0xff, 0xff, 0xff} }), true, "decode"},
		{"watch for another node's actor", with(func(b *remote.MessageBatch) {
			b.TypeNames[0], b.Envelopes[0].MessageData = "actor.Watch", marshal(&actor.Watch{Watcher: other})
		}), true, "pid"},
		{"terminated about nobody", with(func(b *remote.MessageBatch) {
			b.TypeNames[0], b.Envelopes[0].MessageData = "actor.Terminated", marshal(&actor.Terminated{})
		}), true, "pid"},
		{"100,000 messages in one batch", with(func(b *remote.MessageBatch) { b.Envelopes = many }), true, "batch_size"},
		{"batch before the connect request", valid(), false, "no_connect"},
	}
}

// Valid is one well-formed batch of the given message to target.
func Valid(target *actor.PID, name string, data []byte) *remote.MessageBatch {
	return &remote.MessageBatch{TypeNames: []string{name}, Targets: []*actor.PID{target},
		Envelopes: []*remote.MessageEnvelope{{TypeId: 0, MessageData: data, Target: 0, SerializerId: 0}}}
}

// Run sends p on a stream of its own to addr (announcing from when the
// probe connects first) and reports whether the node closed the stream
// within timeout.
func Run(addr, from string, p Probe, timeout time.Duration) error {
	dial := Dial
	if p.Connect {
		dial = func(addr string, tlsCfg *tls.Config) (*Peer, error) { return DialConnected(addr, tlsCfg, from) }
	}
	peer, err := dial(addr, nil)
	if err != nil {
		return err
	}
	defer peer.Close()
	if err := peer.Send(p.Batch); err != nil {
		return err
	}
	return peer.Closed(timeout)
}
