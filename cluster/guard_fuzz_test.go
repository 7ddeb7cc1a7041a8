package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/messages"
)

// fuzzNode is one guarded remote shared by every fuzz input (starting a
// remote per input would make the fuzzer do nothing else).
var fuzzNode struct {
	once sync.Once
	sys  *actor.ActorSystem
	g    *Guard
	peer *hostile.Peer
}

const fuzzFrom = "127.0.0.1:1"

// FuzzGuard decodes the input as a protoactor MessageBatch and sends it
// through a real guarded server: the node must neither crash nor let
// protoactor's reader panic (the guard's last-line recover would count it
// as "panic"; it must never have to).
func FuzzGuard(f *testing.F) {
	target := &actor.PID{Address: "ADDR", Id: "sink"}
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	name := string(proto.MessageName(&messages.Credit{}))
	for _, p := range hostile.Probes(target, fuzzFrom, name, credit) {
		if len(p.Batch.Envelopes) > 10 || p.Name == "60 MiB message of an unknown type" {
			continue
		}
		b, _ := proto.Marshal(p.Batch)
		f.Add(b)
	}
	valid, _ := proto.Marshal(hostile.Valid(target, name, credit))
	f.Add(valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzNode.once.Do(func() {
			fuzzNode.sys = actor.NewActorSystem()
			fuzzNode.g = NewGuard(fuzzNode.sys, GuardConfig{Rate: 1e9})
			if _, err := StartRemote(fuzzNode.sys, RemoteConfig("127.0.0.1", 0, "", nil, fuzzNode.g)); err != nil {
				panic(err)
			}
			if _, err := fuzzNode.sys.Root.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), "sink"); err != nil {
				panic(err)
			}
		})
		var b remote.MessageBatch
		if err := proto.Unmarshal(data, &b); err != nil {
			return
		}
		// The seeds name "ADDR": make them the node's own address, so that
		// inputs get past the target check into the reader.
		for _, pid := range append(b.Targets, b.Senders...) {
			if pid != nil && pid.Address == "ADDR" {
				pid.Address = fuzzNode.sys.Address()
			}
		}
		if err := fuzzSend(&b); err != nil {
			t.Fatal(err)
		}
		if n := fuzzNode.g.Rejected(RejectPanic); n > 0 {
			t.Fatalf("protoactor's reader panicked %d times behind the guard", n)
		}
	})
}

// fuzzSend sends b on the shared stream, redialling when the node closed
// it after a refusal.
func fuzzSend(b *remote.MessageBatch) error {
	for attempt := 0; attempt < 3; attempt++ {
		if fuzzNode.peer == nil {
			p, err := hostile.DialConnected(fuzzNode.sys.Address(), nil, fuzzFrom)
			if err != nil {
				return err
			}
			fuzzNode.peer = p
		}
		if err := fuzzNode.peer.Send(b); err == nil {
			if fuzzNode.peer.Closed(time.Millisecond) == nil {
				fuzzNode.peer.Close()
				fuzzNode.peer = nil
			}
			return nil
		}
		fuzzNode.peer.Close()
		fuzzNode.peer = nil
	}
	return fmt.Errorf("could not send to %s", fuzzNode.sys.Address())
}
