//go:build !race

// Two or more protoactor remotes in one process trip the race detector in
// protoactor itself (remote.Start calls grpclog.SetLoggerV2 on a global; see
// cluster/README.md), so these tests are left out of -race builds. Multi-node
// tests that must run under -race start nodes as subprocesses.

package cluster

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// remoteNode is one actor system with a started remote on 127.0.0.1:0.
func remoteNode(t *testing.T, tlsCfg *TLS) *actor.ActorSystem {
	t.Helper()
	log := testLogger(t, remoteLogLevel)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	r, err := StartRemote(sys, RemoteConfig("127.0.0.1", 0, "", tlsCfg, NewGuard(sys, GuardConfig{})))
	if err != nil {
		t.Fatalf("start remote: %v", err)
	}
	t.Cleanup(func() {
		// Not graceful: a graceful stop waits up to 10 s for peers'
		// streams, and ActorSystem.Shutdown alone leaves the server up.
		r.Shutdown(false)
		sys.Shutdown()
	})
	return sys
}

func clusterCerts(t *testing.T, dir string, names ...string) map[string]*TLS {
	t.Helper()
	ca, err := GenerateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*TLS{}
	for _, n := range names {
		f, err := GenerateNodeCert(dir, n, []string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		tc, err := LoadTLS(f.Cert, f.Key, ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.Mutual {
			t.Fatalf("LoadTLS with a CA is not mutual")
		}
		out[n] = tc
	}
	return out
}

// Credits cross an mTLS link both ways: a request to B and B's reply to A.
func TestRemoteMutualTLSExchange(t *testing.T) {
	certs := clusterCerts(t, t.TempDir(), "a", "b")
	a, b := remoteNode(t, certs["a"]), remoteNode(t, certs["b"])
	echo := actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*messages.Credit); ok {
			ctx.Respond(&messages.Credit{Transitions: c.Transitions + 1})
		}
	})
	if _, err := b.Root.SpawnNamed(echo, "echo"); err != nil {
		t.Fatal(err)
	}
	res, err := a.Root.RequestFuture(actor.NewPID(b.Address(), "echo"), &messages.Credit{Transitions: 41}, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("request over mTLS: %v", err)
	}
	if c, ok := res.(*messages.Credit); !ok || c.Transitions != 42 {
		t.Fatalf("reply %#v, want Credit{42}", res)
	}
}

// A sender whose certificate another CA signed, or that speaks plaintext,
// delivers nothing, while a cluster member's message to the same actor
// arrives.
func TestRemoteRejectsStrangers(t *testing.T) {
	dir := t.TempDir()
	certs := clusterCerts(t, filepath.Join(dir, "cluster"), "a", "b")
	foreign := clusterCerts(t, filepath.Join(dir, "other"), "c")["c"]
	// The stranger trusts our CA, so only the receiver's check of its
	// client certificate can stop it.
	caPEM, err := os.ReadFile(filepath.Join(dir, "cluster", CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	foreign.Client.RootCAs = pool

	b := remoteNode(t, certs["b"])
	var fromMember, fromStranger atomic.Int64
	counter := actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*messages.Credit); ok {
			if c.Transitions == 1 {
				fromMember.Add(1)
			} else {
				fromStranger.Add(1)
			}
		}
	})
	if _, err := b.Root.SpawnNamed(counter, "counter"); err != nil {
		t.Fatal(err)
	}
	// A fresh PID per sender: a PID caches the process it first resolved
	// to, so one PID shared by several actor systems in a process sends
	// through whichever system used it first.
	target := func() *actor.PID { return actor.NewPID(b.Address(), "counter") }

	strangerCert, plaintext := remoteNode(t, foreign), remoteNode(t, nil)
	strangerCert.Root.Send(target(), &messages.Credit{Transitions: 666})
	plaintext.Root.Send(target(), &messages.Credit{Transitions: 667})
	a := remoteNode(t, certs["a"])
	a.Root.Send(target(), &messages.Credit{Transitions: 1})

	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if fromMember.Load() != 1 {
			return fmt.Errorf("the member's message has not arrived")
		}
		return nil
	})
	// The strangers sent first; give them a generous window anyway.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := fromStranger.Load(); n != 0 {
			t.Fatalf("%d messages from strangers were delivered", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 1,000 messages of 20 KB and 20 of 1 MiB all arrive: batches of up to
// RemoteWriterBatchSize messages exceed gRPC's default 4 MiB limit, which
// loses them without a trace.
func TestRemoteLargeBatchesArrive(t *testing.T) {
	a, b := remoteNode(t, nil), remoteNode(t, nil)
	var small, large atomic.Int64
	counter := actor.PropsFromFunc(func(ctx actor.Context) {
		if w, ok := ctx.Message().(*messages.Weights); ok {
			if len(w.Params) > 100_000 {
				large.Add(1)
			} else {
				small.Add(1)
			}
		}
	})
	if _, err := b.Root.SpawnNamed(counter, "counter"); err != nil {
		t.Fatal(err)
	}
	target := actor.NewPID(b.Address(), "counter")
	smallMsg := &messages.Weights{Version: 1, Params: make([]float32, 5_000)}   // 20 KB
	largeMsg := &messages.Weights{Version: 2, Params: make([]float32, 262_144)} // 1 MiB
	for i := range smallMsg.Params {
		smallMsg.Params[i] = float32(i)
	}
	for i := range largeMsg.Params {
		largeMsg.Params[i] = float32(i)
	}
	const nSmall, nLarge = 1000, 20
	for i := 0; i < nSmall; i++ {
		a.Root.Send(target, smallMsg)
	}
	for i := 0; i < nLarge; i++ {
		a.Root.Send(target, largeMsg)
	}
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if small.Load() != nSmall || large.Load() != nLarge {
			return fmt.Errorf("arrived %d/%d small and %d/%d large messages", small.Load(), nSmall, large.Load(), nLarge)
		}
		return nil
	})
}

// remoteLogLevel: protoactor logs every connection at Info.
var remoteLogLevel = slog.LevelWarn

// A node holding a certificate can speak only as itself: a stream that
// announces an address its certificate does not name is refused
// ("identity"), while the same certificate announcing its own address is
// served.
func TestGuardBindsAddressToCertificate(t *testing.T) {
	certs := clusterCerts(t, t.TempDir(), "a", "b")
	log := testLogger(t, slog.LevelWarn)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	g := NewGuard(sys, GuardConfig{Logger: log})
	r, err := StartRemote(sys, RemoteConfig("127.0.0.1", 0, "", certs["b"], g))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(false); sys.Shutdown() })
	var got atomic.Int64
	if _, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*messages.Credit); ok {
			got.Add(1)
		}
	}), "sink"); err != nil {
		t.Fatal(err)
	}
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	batch := hostile.Valid(actor.NewPID(sys.Address(), "sink"), string(proto.MessageName(&messages.Credit{})), credit)
	send := func(announce string) *hostile.Peer {
		t.Helper()
		p, err := hostile.DialConnected(sys.Address(), certs["a"].Client, announce)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		// A refused connect closes the stream, maybe before this send:
		// then it fails with EOF, and Closed below reports the close.
		if err := p.Send(batch); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		return p
	}
	if err := send("10.9.9.9:7947").Closed(5 * time.Second); err != nil {
		t.Fatalf("a stream announcing another node's address: %v", err)
	}
	if g.Rejected(RejectIdentity) != 1 {
		t.Fatalf("identity refusals %d, want 1", g.Rejected(RejectIdentity))
	}
	send("127.0.0.1:7947")
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got.Load() != 1 {
			return fmt.Errorf("the member's own message has not arrived")
		}
		return nil
	})
	if g.RejectedTotal() != 1 {
		t.Fatalf("%d refusals in all, want 1", g.RejectedTotal())
	}
}
