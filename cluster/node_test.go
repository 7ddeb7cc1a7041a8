package cluster

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/qfleet/qfleet/internal/testutil"
)

func TestNodeSpecResolve(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := NodeSpec{Name: "a", GossipAddr: "127.0.0.1:0", RemoteAddr: "127.0.0.1:0", Profile: ProfileLocal}
	for _, tc := range []struct {
		name   string
		change func(*NodeSpec)
		want   string // "" for success
	}{
		{"loopback", func(*NodeSpec) {}, ""},
		{"no name", func(s *NodeSpec) { s.Name = "" }, "--name"},
		{"bad remote", func(s *NodeSpec) { s.RemoteAddr = "nohostport" }, "--remote-addr"},
		{"bad remote port", func(s *NodeSpec) { s.RemoteAddr = "127.0.0.1:99999" }, "bad port"},
		{"bad advertise port", func(s *NodeSpec) { s.Advertise = "10.0.0.1:0" }, "--advertise"},
		{"wildcard without advertise", func(s *NodeSpec) { s.RemoteAddr = "0.0.0.0:7947" }, "binds every interface"},
		{"across hosts unsecured", func(s *NodeSpec) { s.Join = []string{"10.0.0.2:7946"} }, "--cluster-key-file"},
		{"across hosts insecure", func(s *NodeSpec) { s.Join = []string{"10.0.0.2:7946"}; s.Insecure = true }, ""},
		{"key", func(s *NodeSpec) { s.KeyFile = keyFile }, ""},
		{"missing key", func(s *NodeSpec) { s.KeyFile = keyFile + ".absent" }, "--cluster-key-file"},
		{"cert without key", func(s *NodeSpec) { s.TLSCert = "c.pem" }, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.change(&s)
			c, err := s.Resolve()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if c.AdvHost != "127.0.0.1" || c.Name != s.Name {
					t.Errorf("resolved %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve: err %v, want one about %q", err, tc.want)
			}
		})
	}
	c, err := NodeSpec{Name: "a", RemoteAddr: "0.0.0.0:7947", Advertise: "198.51.100.7:17947", Insecure: true}.Resolve()
	if err != nil || c.AdvHost != "198.51.100.7" || c.AdvPort != "17947" || !c.Advertised {
		t.Fatalf("advertise host:port: %+v, %v", c, err)
	}
}

func startTestNode(t *testing.T, name string, join []string, log *eventLog) *Node {
	t.Helper()
	// The remote's port is advertised as given: it must be a real one.
	c, err := NodeSpec{Name: name, GossipAddr: "127.0.0.1:0", RemoteAddr: testutil.FreeAddr(t), Join: join, Profile: ProfileLocal}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	logger := testLogger(t, slog.LevelWarn)
	sys := NewActorSystem(logger)
	t.Cleanup(sys.Shutdown)
	o := NodeOptions{Roles: []string{RoleRunner}, Runners: 2, Logger: logger}
	if log != nil {
		o.OnEvent = log.handle
	}
	n, err := StartNode(sys, c, o)
	if err != nil {
		t.Fatalf("StartNode %s: %v", name, err)
	}
	return n
}

// TestNodeLifecycle: two nodes find each other; Close leaves first (the
// other sees a graceful leave, not a failure), runs the OnClose hooks newest
// first before the membership goes, and is idempotent.
func TestNodeLifecycle(t *testing.T) {
	var aLog eventLog
	a := startTestNode(t, "a", nil, &aLog)
	defer a.Close(false)
	b := startTestNode(t, "b", []string{a.Membership.LocalMember().GossipAddr}, nil)
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if len(a.Directory.WithRole(RoleRunner)) != 2 {
			return errors.New("a's directory does not list both runner nodes")
		}
		return nil
	})
	var mu sync.Mutex
	var order []string
	for _, h := range []string{"first added", "second added"} {
		b.OnClose(func() {
			mu.Lock()
			defer mu.Unlock()
			// The hooks run before the membership shuts down.
			order = append(order, h+":"+strings.Join(memberNames(b.Membership), ","))
		})
	}
	b.Close(true)
	b.Close(true) // idempotent: hooks do not run twice
	b.Abort()
	want := []string{"second added:a", "first added:a"}
	if !slices.Equal(order, want) {
		t.Fatalf("OnClose order %q, want %q (newest first, after the leave, before the shutdown)", order, want)
	}
	aLog.waitFor(t, Left, "b", 10*time.Second)
	if _, failed := aLog.find(Failed, "b"); failed {
		t.Fatal("a saw b fail; Close(true) must leave gracefully")
	}
}

func memberNames(m *Membership) []string {
	var names []string
	for _, mem := range m.Members() {
		if mem.State == StateAlive {
			names = append(names, mem.Name)
		}
	}
	slices.Sort(names)
	return names
}

// TestNodeJoinError: a seed that is not there is a JoinError (the settings
// are wrong), and the remote started before it is shut down again.
func TestNodeJoinError(t *testing.T) {
	c, err := NodeSpec{Name: "lonely", GossipAddr: "127.0.0.1:0", RemoteAddr: testutil.FreeAddr(t), Join: []string{"127.0.0.1:1"}, Profile: ProfileLocal}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	sys := NewActorSystem(testLogger(t, slog.LevelError))
	defer sys.Shutdown()
	_, err = StartNode(sys, c, NodeOptions{Logger: testLogger(t, slog.LevelError)})
	var je *JoinError
	if !errors.As(err, &je) {
		t.Fatalf("StartNode with an unreachable seed: %v, want a *JoinError", err)
	}
}

// TestNodeCloseDoesNotWaitOutReconnects: a message to a peer that has gone
// (nobody listens at its address) starts protoactor's endpoint writer
// dialing it, 5 × 2 s, and the remote's graceful shutdown waits for every
// writer: Close took ~10 s. It takes remoteShutdownWait at most.
func TestNodeCloseDoesNotWaitOutReconnects(t *testing.T) {
	var logs testutil.SyncBuffer
	c, err := NodeSpec{Name: "a", GossipAddr: "127.0.0.1:0", RemoteAddr: testutil.FreeAddr(t), Profile: ProfileLocal}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := NewActorSystem(logger)
	t.Cleanup(sys.Shutdown)
	n, err := StartNode(sys, c, NodeOptions{Roles: []string{RoleRunner}, Runners: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	gone := testutil.FreeAddr(t)
	sys.Root.Send(actor.NewPID(gone, "runner"), &emptypb.Empty{})
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "EndpointWriter failed to connect") {
			return errors.New("the endpoint writer has not failed to dial " + gone + " yet")
		}
		return nil
	})
	start := time.Now()
	n.Close(true)
	if d := time.Since(start); d > remoteShutdownWait+time.Second {
		t.Fatalf("Close took %v while the writer retried %s, want ≤ %v", d, gone, remoteShutdownWait+time.Second)
	}
	if !strings.Contains(logs.String(), "not waiting for them") {
		t.Fatalf("Close did not say it stopped waiting for the remote:\n%s", logs.String())
	}
}
