package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
)

// Well-known actor names: every node spawns its roles under the supervisor
// "qfleet", so a role's PID is its node's remote address plus one of these.
const (
	SupervisorName  = "qfleet"
	ReplayName      = SupervisorName + "/replay"
	LearnerName     = SupervisorName + "/learner"
	BroadcasterName = SupervisorName + "/broadcaster"
	StatsName       = SupervisorName + "/stats"
	EvaluatorName   = SupervisorName + "/evaluator"
)

// Directory tells a role where the others are. Dev mode answers with local
// PIDs; cluster mode follows memberlist. Safe for concurrent use.
type Directory interface {
	Replay() *actor.PID
	Broadcaster() *actor.PID
	Stats() *actor.PID
}

// ReplayIncarnations is implemented by a Directory that can tell a replay
// restarted at the same address from the one before it (cluster mode: the
// node's epoch, new with every process). The PID string alone cannot: a node
// restarted with --resume comes back at the same address and name. A runner
// that sees a new incarnation knows at once that the credits still due died
// with the old replay, instead of waiting CreditTimeout for them.
type ReplayIncarnations interface {
	ReplayIncarnation() uint64
}

// LocalDirectory places every role on one actor system (dev mode).
type LocalDirectory struct{ Address string }

var _ Directory = LocalDirectory{}

func (d LocalDirectory) Replay() *actor.PID      { return actor.NewPID(d.Address, ReplayName) }
func (d LocalDirectory) Broadcaster() *actor.PID { return actor.NewPID(d.Address, BroadcasterName) }
func (d LocalDirectory) Stats() *actor.PID       { return actor.NewPID(d.Address, StatsName) }

// RefOf is a PID in its wire form (messages cannot import protoactor, so
// the PIDs in messages are ActorRefs); PIDOf turns it back. Every package
// that puts PIDs on the wire uses this one pair.
func RefOf(p *actor.PID) *messages.ActorRef {
	return &messages.ActorRef{Address: p.Address, Id: p.Id}
}

// PIDOf is the PID of a ref from the wire; nil for a nil ref (a field the
// sender left out), which callers check before sending.
func PIDOf(r *messages.ActorRef) *actor.PID {
	if r == nil {
		return nil
	}
	return actor.NewPID(r.Address, r.Id)
}
