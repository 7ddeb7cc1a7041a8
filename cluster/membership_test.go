package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
)

// Three nodes find each other, the directory resolves every role to the
// right node, a graceful leave is reported as Left and a silent death as
// Failed within the profile's bound, after which the directory drops the
// node and remote watchers are told its endpoint is gone.
func TestThreeMembersLeaveAndFail(t *testing.T) {
	t.Parallel()
	const (
		remote1 = "127.0.0.1:10001"
		remote2 = "127.0.0.1:10002"
		remote3 = "127.0.0.1:10003"
	)
	n1, log1 := testNode(t, "n1", []string{RoleReplay, RoleLearner}, remote1, nil, nil)
	seed := []string{n1.LocalMember().GossipAddr}
	// n2 also runs a replay: the directory must pick n1 (lowest name) everywhere.
	n2, log2 := testNode(t, "n2", []string{RoleBroadcaster, RoleReplay}, remote2, seed, nil)
	n3, _ := testNode(t, "n3", []string{RoleRunner}, remote3, seed, nil)

	want := map[string]struct {
		remote string
		roles  []string
	}{
		"n1": {remote1, []string{RoleReplay, RoleLearner}},
		"n2": {remote2, []string{RoleBroadcaster, RoleReplay}},
		"n3": {remote3, []string{RoleRunner}},
	}
	for _, n := range []*Membership{n1, n2, n3} {
		testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			ms := n.Members()
			if len(ms) != 3 || n.NumMembers() != 3 {
				return fmt.Errorf("%s sees %d members", n.LocalMember().Name, len(ms))
			}
			for _, m := range ms {
				w := want[m.Name]
				if m.RemoteAddr != w.remote || !slices.Equal(m.Roles, w.roles) || m.State != StateAlive || m.Epoch == 0 {
					return fmt.Errorf("%s sees %+v, want remote %s roles %v alive", n.LocalMember().Name, m, w.remote, w.roles)
				}
			}
			return nil
		})
	}

	d1, d3 := NewDirectory(n1), NewDirectory(n3)
	t.Cleanup(d1.Close)
	t.Cleanup(d3.Close)
	for _, d := range []*Directory{d1, d3} {
		testutil.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
			return expectPIDs(d, actor.NewPID(remote1, actors.ReplayName), actor.NewPID(remote2, actors.BroadcasterName), actor.NewPID(remote1, actors.StatsName))
		})
		if got := d.WithRole(RoleRunner); len(got) != 1 || got[0].Name != "n3" {
			t.Fatalf("WithRole(runner) = %+v, want n3", got)
		}
		if got := d.Learner(); !got.Equal(actor.NewPID(remote1, actors.LearnerName)) {
			t.Fatalf("Learner() = %v", got)
		}
	}

	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return testLogger(t, slog.LevelWarn) }))
	t.Cleanup(sys.Shutdown)
	seen := &streamLog{}
	sub := sys.EventStream.Subscribe(seen.add)
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	d1.AttachActorSystem(sys)
	events, cancel := n1.Subscribe()
	t.Cleanup(cancel)

	// Graceful leave: Left, never Failed.
	if err := n3.Leave(2 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := n3.Shutdown(); err != nil {
		t.Fatalf("shutdown n3: %v", err)
	}
	log1.waitFor(t, Left, "n3", 2*time.Second)
	log2.waitFor(t, Left, "n3", 2*time.Second)
	if e, ok := log1.find(Failed, "n3"); ok {
		t.Fatalf("n1 reported the graceful leave as a failure: %+v", e)
	}
	waitChan(t, events, Left, "n3")
	testutil.CheckFor(t, time.Second, 10*time.Millisecond, func() error {
		if !seen.terminated(remote3) {
			return errors.New("no EndpointTerminatedEvent for n3's remote")
		}
		if got := d1.WithRole(RoleRunner); len(got) != 0 {
			return fmt.Errorf("runner still listed: %+v", got)
		}
		return nil
	})

	// Silent death: Failed within the profile's bound.
	died := time.Now()
	if err := n2.Shutdown(); err != nil {
		t.Fatalf("shutdown n2: %v", err)
	}
	bound := DefaultLocalConfig().FailureDetectionBound()
	failed := log1.waitFor(t, Failed, "n2", bound+time.Second)
	took := failed.at.Sub(died)
	t.Logf("local profile: n2 declared failed after %v (bound %v)", took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("failure detection took %v, over the local profile's %v", took, bound)
	}
	waitChan(t, events, Failed, "n2")
	testutil.CheckFor(t, time.Second, 10*time.Millisecond, func() error {
		if d1.Broadcaster() != nil {
			return fmt.Errorf("directory still has broadcaster %v", d1.Broadcaster())
		}
		if !seen.terminated(remote2) {
			return errors.New("no EndpointTerminatedEvent for n2's remote")
		}
		if mc := seen.lastMembers(); mc == nil || len(mc.Members) != 1 || mc.Members[0].Name != "n1" {
			return fmt.Errorf("last MembersChanged = %+v, want only n1", mc)
		}
		return nil
	})
	if got := d1.Replay(); !got.Equal(actor.NewPID(remote1, actors.ReplayName)) {
		t.Fatalf("Replay() = %v after n2 died, want n1's", got)
	}
	if n1.NumMembers() != 1 {
		t.Fatalf("NumMembers = %d, want 1", n1.NumMembers())
	}
}

func expectPIDs(d *Directory, replay, broadcaster, stats *actor.PID) error {
	for _, c := range []struct {
		name      string
		got, want *actor.PID
	}{{"Replay", d.Replay(), replay}, {"Broadcaster", d.Broadcaster(), broadcaster}, {"Stats", d.Stats(), stats}} {
		if !c.got.Equal(c.want) {
			return fmt.Errorf("%s() = %v, want %v", c.name, c.got, c.want)
		}
	}
	return nil
}

func waitChan(t *testing.T, ch <-chan Event, kind EventKind, member string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed before %v %s", kind, member)
			}
			if ev.Kind == kind && ev.Member.Name == member {
				return
			}
		case <-timeout:
			t.Fatalf("no %v event for %s on the subscription", kind, member)
		}
	}
}

// streamLog records what the Directory publishes on an event stream.
type streamLog struct {
	mu      sync.Mutex
	gone    map[string]bool
	members *MembersChanged
}

func (s *streamLog) add(ev any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e := ev.(type) {
	case *remote.EndpointTerminatedEvent:
		if s.gone == nil {
			s.gone = map[string]bool{}
		}
		s.gone[e.Address] = true
	case *MembersChanged:
		s.members = e
	}
}

func (s *streamLog) terminated(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[addr]
}

func (s *streamLog) lastMembers() *MembersChanged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members
}

// A node without the cluster key, with another key or another label cannot
// join: Start fails with ErrJoin and the keyed members never list it.
func TestEncryptionKeepsStrangersOut(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	keyed := func(c *Config) { c.ClusterKey = key }
	n1, _ := testNode(t, "k1", []string{RoleReplay}, "127.0.0.1:11001", nil, keyed)
	seed := []string{n1.LocalMember().GossipAddr}
	n2, _ := testNode(t, "k2", []string{RoleRunner}, "127.0.0.1:11002", seed, keyed)
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n1.NumMembers() != 2 || n2.NumMembers() != 2 {
			return fmt.Errorf("keyed members see %d and %d members, want 2", n1.NumMembers(), n2.NumMembers())
		}
		return nil
	})

	strangers := map[string]func(*Config){
		"no-key":    func(c *Config) { c.ClusterKey = nil },
		"wrong-key": func(c *Config) { c.ClusterKey = []byte("fedcba9876543210") },
		"wrong-label": func(c *Config) {
			c.ClusterKey = key
			c.Label = "another-cluster"
		},
	}
	for name, mutate := range strangers {
		cfg := DefaultLocalConfig()
		cfg.NodeName, cfg.RemoteAddr, cfg.Join = name, "127.0.0.1:11003", seed
		cfg.Logger = testLogger(t, slog.LevelError)
		mutate(&cfg)
		m, err := Start(cfg)
		if err == nil {
			if serr := m.Shutdown(); serr != nil {
				t.Error(serr)
			}
			t.Fatalf("%s joined a keyed cluster", name)
		}
		if !errors.Is(err, ErrJoin) || !strings.Contains(err.Error(), seed[0]) {
			t.Fatalf("%s: error %v, want ErrJoin naming seed %s", name, err, seed[0])
		}
	}
	for _, n := range []*Membership{n1, n2} {
		for _, m := range n.Members() {
			if _, stranger := strangers[m.Name]; stranger {
				t.Fatalf("%s lists stranger %s", n.LocalMember().Name, m.Name)
			}
		}
	}
}

func TestMetadataOverLimitIsAnError(t *testing.T) {
	t.Parallel()
	cfg := DefaultLocalConfig()
	cfg.RemoteAddr = strings.Repeat("h", 600) + ":7947"
	m, err := Start(cfg)
	if err == nil {
		if serr := m.Shutdown(); serr != nil {
			t.Error(serr)
		}
		t.Fatal("Start accepted 600-byte metadata")
	}
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("error %v, want ErrMetaTooLarge", err)
	}
}

func TestJoinUnreachableSeedNamesIt(t *testing.T) {
	t.Parallel()
	cfg := DefaultLocalConfig()
	cfg.RemoteAddr = "127.0.0.1:12001"
	cfg.Join = []string{"127.0.0.1:1"}
	m, err := Start(cfg)
	if err == nil {
		if serr := m.Shutdown(); serr != nil {
			t.Error(serr)
		}
		t.Fatal("joined a seed that does not exist")
	}
	if !errors.Is(err, ErrJoin) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v, want ErrJoin naming 127.0.0.1:1", err)
	}
}

// A node whose seed crashed finds the restarted seed again by itself
// (memberlist alone never would: nobody probes a dead member, and the
// restarted seed knows nobody).
func TestRejoinRestartedSeed(t *testing.T) {
	t.Parallel()
	seedNode, _ := testNode(t, "seed", []string{RoleReplay}, "127.0.0.1:13001", nil, nil)
	addr := seedNode.LocalMember().GossipAddr
	other, otherLog := testNode(t, "other", []string{RoleRunner}, "127.0.0.1:13002", []string{addr}, nil)
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if other.NumMembers() != 2 {
			return fmt.Errorf("other sees %d members", other.NumMembers())
		}
		return nil
	})
	if err := seedNode.Shutdown(); err != nil {
		t.Fatal(err)
	}
	otherLog.waitFor(t, Failed, "seed", 5*time.Second)

	restarted, _ := testNode(t, "seed", []string{RoleReplay}, "127.0.0.1:13001", nil, func(c *Config) { c.GossipAddr = addr })
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if other.NumMembers() != 2 || restarted.NumMembers() != 2 {
			return fmt.Errorf("after the seed restarted: other sees %d, seed sees %d members", other.NumMembers(), restarted.NumMembers())
		}
		return nil
	})
	if j, ok := otherLog.find(Joined, "seed"); !ok || j.Member.Epoch == 0 {
		t.Fatalf("no Joined event for the restarted seed")
	}
}
