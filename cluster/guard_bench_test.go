package cluster

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

// BenchmarkGuardCheck is the guard's cost per received batch: every index,
// type, PID and a full decode of each message (the reader decodes it once
// more). Two shapes: the 31 small control messages of a full protoactor
// batch (credits, acks), and one experience message of 64 KiB, the size
// runners send.
func BenchmarkGuardCheck(b *testing.B) {
	sys := actor.NewActorSystem()
	g := NewGuard(sys, GuardConfig{})
	local := sys.Address()
	const from = "10.0.0.2:7947"
	target := &actor.PID{Address: local, Id: "qfleet/replay"}
	batch := func(m proto.Message, n int) *remote.MessageBatch {
		data, _ := proto.Marshal(m)
		mb := &remote.MessageBatch{TypeNames: []string{string(proto.MessageName(m))}, Targets: []*actor.PID{target},
			Senders: []*actor.PID{{Address: from, Id: "runner-0"}}}
		for i := 0; i < n; i++ {
			mb.Envelopes = append(mb.Envelopes, &remote.MessageEnvelope{MessageData: data, Sender: 1})
		}
		return mb
	}
	for _, c := range []struct {
		name  string
		batch *remote.MessageBatch
	}{
		{"control-31", batch(&messages.Credit{Transitions: 256}, RemoteWriterBatchSize)},
		{"experience-64KiB", batch(&messages.PackedExperience{Runner: "B/runner-0", Seq: 9, Count: 512, Payload: make([]byte, 64<<10)}, 1)},
	} {
		b.Run(c.name, func(b *testing.B) {
			if r, d := g.checkBatch(c.batch, from); r >= 0 {
				b.Fatalf("valid batch refused: %s %s", RejectReasonName(r), d)
			}
			b.ReportAllocs()
			for b.Loop() {
				g.checkBatch(c.batch, from)
			}
		})
	}
}
