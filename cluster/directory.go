package cluster

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/qfleet/qfleet/actors"
)

// Directory answers "where is the replay / broadcaster / stats actor" from
// the member table, for the roles of this node (actors.Directory).
//
// Each lookup returns the PID of the alive member that runs the role, on its
// well-known name; when several do, the one with the lowest Name, so every
// node picks the same one. A lookup returns nil while no alive member runs the
// role (before it joins, after it leaves or fails, while it is leaving):
// callers must handle nil, typically by buffering and asking again later.
//
// Lookups are lock-free reads of a view rebuilt on every membership event, so
// they are cheap enough to call per message. Safe for concurrent use. The
// PIDs are shared between callers until the next event: use one Directory per
// actor system, because a PID caches the process it first resolved to, so a
// PID used by two actor systems in one process sends through whichever used
// it first (found in this package's tests).
type Directory struct {
	m      *Membership
	view   atomic.Pointer[dirView]
	remove func()

	mu      sync.Mutex
	systems []*actor.ActorSystem
}

var _ actors.Directory = (*Directory)(nil)

// MembersChanged is published on every attached actor system's EventStream
// after each membership event, once the Directory reflects it. Actors that
// follow the cluster (e.g. the broadcaster dropping a gone runner, /status)
// subscribe to it instead of polling. It is a plain struct: it never crosses
// the wire.
type MembersChanged struct {
	Event   Event    // what changed
	Members []Member // live members after the change, sorted by name
}

type dirView struct {
	members     []Member // live, sorted by name
	replay      *actor.PID
	replayEpoch uint64 // the replay node's epoch: new when its process restarts
	learner     *actor.PID
	broadcaster *actor.PID
	stats       *actor.PID
}

// NewDirectory follows m until Close (or m's Shutdown).
func NewDirectory(m *Membership) *Directory {
	d := &Directory{m: m}
	// Register first, then build: an event in between only causes one more
	// rebuild from the same authoritative table.
	d.remove = m.addListener(d.onEvent)
	d.rebuild()
	return d
}

// AttachActorSystem makes the Directory tell sys about the cluster: when a
// member fails, leaves or restarts (new epoch or remote address) it publishes
// &remote.EndpointTerminatedEvent{Address: <its remote address>}, so remote
// watchers get Terminated at once and the endpoint is dropped instead of
// waiting for gRPC to notice (~15 s for a frozen peer, never without
// keepalive); and after every event it publishes a MembersChanged.
func (d *Directory) AttachActorSystem(sys *actor.ActorSystem) {
	d.mu.Lock()
	d.systems = append(d.systems, sys)
	d.mu.Unlock()
}

// Close stops following membership events.
func (d *Directory) Close() { d.remove() }

// Replay is the replay actor's PID, or nil (see Directory).
func (d *Directory) Replay() *actor.PID { return d.view.Load().replay }

var _ actors.ReplayIncarnations = (*Directory)(nil)

// ReplayIncarnation is the epoch of the node Replay points at (0 for none):
// it changes when that node's process restarts, even at the same address.
func (d *Directory) ReplayIncarnation() uint64 { return d.view.Load().replayEpoch }

// Learner is the learner actor's PID, or nil.
func (d *Directory) Learner() *actor.PID { return d.view.Load().learner }

// Broadcaster is the weight broadcaster's PID, or nil.
func (d *Directory) Broadcaster() *actor.PID { return d.view.Load().broadcaster }

// Stats is the stats actor's PID on the learner's node, or nil.
func (d *Directory) Stats() *actor.PID { return d.view.Load().stats }

// WithRole lists the alive members that run role, sorted by name (leaving
// members excluded).
func (d *Directory) WithRole(role string) []Member {
	var out []Member
	for _, m := range d.view.Load().members {
		if m.State == StateAlive && m.HasRole(role) {
			out = append(out, m.clone())
		}
	}
	return out
}

// Members lists the live members, sorted by name.
func (d *Directory) Members() []Member {
	return cloneMembers(d.view.Load().members)
}

func (d *Directory) rebuild() []Member {
	members := d.m.Members()
	v := &dirView{members: members}
	pid := func(role, name string) (*actor.PID, uint64) {
		for _, m := range members { // sorted: the lowest name wins
			if m.State == StateAlive && m.RemoteAddr != "" && slices.Contains(m.Roles, role) {
				return actor.NewPID(m.RemoteAddr, name), m.Epoch
			}
		}
		return nil, 0
	}
	v.replay, v.replayEpoch = pid(RoleReplay, actors.ReplayName)
	v.learner, _ = pid(RoleLearner, actors.LearnerName)
	v.broadcaster, _ = pid(RoleBroadcaster, actors.BroadcasterName)
	v.stats, _ = pid(RoleLearner, actors.StatsName)
	d.view.Store(v)
	return members
}

// onEvent runs on the Membership's dispatch goroutine.
func (d *Directory) onEvent(ev Event) {
	members := d.rebuild()
	d.mu.Lock()
	systems := slices.Clone(d.systems)
	d.mu.Unlock()
	if len(systems) == 0 {
		return
	}
	var gone []string
	switch ev.Kind {
	case Left, Failed:
		gone = append(gone, ev.Member.RemoteAddr)
	case Joined:
		if ev.Previous.State == StateFailed {
			// Back after being declared dead (a frozen process, a cut link):
			// drop whatever endpoint protoactor still holds for it, which may
			// sit in its fixed 2 s reconnect loop, so the next send dials anew.
			gone = append(gone, ev.Member.RemoteAddr)
		}
	case Updated:
		p := ev.Previous
		if p.RemoteAddr != "" && (p.RemoteAddr != ev.Member.RemoteAddr || p.Epoch != ev.Member.Epoch) {
			gone = append(gone, p.RemoteAddr) // the old incarnation is gone
		}
	}
	self := d.m.cfg.RemoteAddr
	for _, sys := range systems {
		for _, addr := range gone {
			if addr != "" && addr != self {
				sys.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: addr})
			}
		}
		sys.EventStream.Publish(&MembersChanged{Event: ev, Members: cloneMembers(members)})
	}
}

func cloneMembers(ms []Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = m.clone()
	}
	return out
}
