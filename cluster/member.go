package cluster

import (
	"slices"
	"time"
)

// MemberState is a member's state as this node last heard it.
type MemberState int

const (
	// StateAlive: the member answers probes.
	StateAlive MemberState = iota
	// StateLeaving: the member announced a graceful leave; it still runs but
	// should get no new work. The Directory skips it.
	StateLeaving
	// StateLeft: the member left gracefully (Leave).
	StateLeft
	// StateFailed: the member stopped answering and was declared dead.
	StateFailed
)

func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateLeaving:
		return "leaving"
	case StateLeft:
		return "left"
	case StateFailed:
		return "failed"
	}
	return "unknown"
}

// Live reports whether the member is still part of the cluster.
func (s MemberState) Live() bool { return s == StateAlive || s == StateLeaving }

// Member is one node as seen through gossip. Values are snapshots: they do
// not change after they are returned.
type Member struct {
	Name       string      // Config.NodeName, unique in the cluster
	GossipAddr string      // advertised memberlist IP:port
	RemoteAddr string      // protoactor remote host:port; PIDs on the node use it
	Roles      []string    // roles it runs
	Epoch      uint64      // changes when the node restarts under the same name
	Runners    int         // env runner actors it runs (Config.Runners; 0 from a node that does not say)
	State      MemberState // as last heard
	Since      time.Time   // when this node saw State begin
}

// HasRole reports whether the member runs role.
func (m Member) HasRole(role string) bool { return slices.Contains(m.Roles, role) }

func (m Member) clone() Member {
	m.Roles = slices.Clone(m.Roles)
	return m
}

// EventKind says what happened to a member.
type EventKind int

const (
	// Joined: a member appeared (including this node itself, at Start, and a
	// member that returns after it had failed or left).
	Joined EventKind = iota
	// Updated: a live member changed its metadata: roles, remote address,
	// epoch (a restart faster than failure detection), or it announced that
	// it is leaving (State == StateLeaving).
	Updated
	// Left: a member left gracefully.
	Left
	// Failed: a member was declared dead by failure detection.
	Failed
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	case Left:
		return "left"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Event is one change of the member table, delivered in the order this node
// learned of it.
type Event struct {
	Kind   EventKind
	Member Member // the member after the change
	// Previous is the member before an Updated event, or before a Joined
	// event of a member seen before (a rejoin) (to tell, e.g., an
	// epoch or remote-address change); zero for the other kinds.
	Previous Member
}
