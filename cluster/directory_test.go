package cluster

import (
	"log/slog"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
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
