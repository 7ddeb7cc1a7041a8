package cluster

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// A port in use is an error naming the address, not a panic. No remote
// starts here, so this also runs under -race.
func TestStartRemotePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Error(err)
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	log := testLogger(t, slog.LevelWarn)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	t.Cleanup(sys.Shutdown)

	r, err := StartRemote(sys, RemoteConfig("127.0.0.1", port, "", nil, NewGuard(sys, GuardConfig{})))
	if err == nil {
		r.Shutdown(false)
		t.Fatal("StartRemote succeeded on a port in use")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !errors.Is(err, ErrRemoteListen) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q, want ErrRemoteListen naming %s", err, addr)
	}

	if _, err := StartRemote(sys, RemoteConfig("0.0.0.0", 0, "", nil, NewGuard(sys, GuardConfig{}))); !errors.Is(err, ErrRemoteListen) {
		t.Fatalf("wildcard listen without an advertised address: error %v, want ErrRemoteListen", err)
	}
}

// The batch arithmetic documented in remote.go holds.
func TestRemoteBatchFitsReceiveLimit(t *testing.T) {
	cfg := RemoteConfig("127.0.0.1", 0, "", nil, NewGuard(actor.NewActorSystem(), GuardConfig{}))
	if cfg.EndpointWriterBatchSize != RemoteWriterBatchSize || RemoteWriterBatchSize < 1 {
		t.Fatalf("batch size %d, want %d", cfg.EndpointWriterBatchSize, RemoteWriterBatchSize)
	}
	if worst := RemoteWriterBatchSize * (MaxMessageBytes + EnvelopeOverheadBytes); worst > MaxBatchBytes {
		t.Fatalf("a batch of %d maximum messages is %d bytes, over the %d receive limit", RemoteWriterBatchSize, worst, MaxBatchBytes)
	}
	if len(cfg.DialOptions) == 0 || len(cfg.ServerOptions) == 0 {
		t.Fatal("credentials and keepalive must always be set explicitly")
	}
}
