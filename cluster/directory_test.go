package cluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/qfleet/qfleet/internal/testutil"
)

// A member that restarted under the same name faster than failure detection
// shows up as an Updated event with a new epoch: its old endpoint is
// terminated, so watchers of actors on the old incarnation fire. A plain
// metadata change (same epoch and address) terminates nothing.
func TestDirectoryTerminatesOldIncarnation(t *testing.T) {
	t.Parallel()
	m, _ := testNode(t, "self", []string{RoleLearner}, "127.0.0.1:16001", nil, nil)
	d := NewDirectory(m)
	t.Cleanup(d.Close)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return testLogger(t, slog.LevelWarn) }))
	t.Cleanup(sys.Shutdown)
	seen := &streamLog{}
	sub := sys.EventStream.Subscribe(seen.add)
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	d.AttachActorSystem(sys)

	old := Member{Name: "peer", RemoteAddr: "127.0.0.1:16002", Roles: []string{RoleReplay}, Epoch: 1}
	same := old
	same.Roles = []string{RoleReplay, RoleRunner}
	d.onEvent(Event{Kind: Updated, Member: same, Previous: old})
	if seen.terminated(old.RemoteAddr) {
		t.Fatal("a roles change terminated the endpoint")
	}
	restarted := old
	restarted.Epoch = 2
	d.onEvent(Event{Kind: Updated, Member: restarted, Previous: old})
	if !seen.terminated(old.RemoteAddr) {
		t.Fatal("no EndpointTerminatedEvent for the old incarnation")
	}
	if mc := seen.lastMembers(); mc == nil || mc.Event.Member.Epoch != 2 {
		t.Fatalf("MembersChanged = %+v, want the restart event", mc)
	}
}

// ReplayIncarnation follows the replay node's epoch: a replay node restarted
// under the same name and remote address is a new incarnation, which the
// runners use to write off the credits that died with the old one.
func TestDirectoryReplayIncarnation(t *testing.T) {
	t.Parallel()
	self, _ := testNode(t, "self", []string{RoleRunner}, "127.0.0.1:16011", nil, nil)
	d := NewDirectory(self)
	t.Cleanup(d.Close)
	if d.ReplayIncarnation() != 0 || d.Replay() != nil {
		t.Fatalf("no replay yet: incarnation %d, PID %v", d.ReplayIncarnation(), d.Replay())
	}
	seed := []string{self.LocalMember().GossipAddr}
	// A restarted node binds the gossip address it had, as `qfleet node
	// --gossip` does (another address under the same name conflicts).
	peer := func(epoch uint64, gossip string) *Membership {
		m, err := Start(func() Config {
			c := DefaultLocalConfig()
			c.NodeName, c.Roles, c.RemoteAddr, c.Join, c.Epoch = "replay", []string{RoleReplay}, "127.0.0.1:16012", seed, epoch
			if gossip != "" {
				c.GossipAddr = gossip
			}
			c.Logger = testLogger(t, slog.LevelWarn)
			return c
		}())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	waitIncarnation := func(want uint64) {
		t.Helper()
		testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if got := d.ReplayIncarnation(); got != want {
				return fmt.Errorf("replay incarnation %d, want %d", got, want)
			}
			return nil
		})
	}
	first := peer(101, "")
	waitIncarnation(101)
	pidBefore := d.Replay().String()
	gossip := first.LocalMember().GossipAddr
	first.Shutdown() // killed: no leave
	second := peer(202, gossip)
	t.Cleanup(func() { second.Shutdown() })
	waitIncarnation(202)
	if got := d.Replay().String(); got != pidBefore {
		t.Errorf("replay PID %s after the restart, want the same %s (only the incarnation tells them apart)", got, pidBefore)
	}
}
