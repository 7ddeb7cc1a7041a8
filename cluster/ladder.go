package cluster

import (
	"slices"
	"strings"
)

// LadderPosition is a runner node's place in the cluster-wide Ape-X ε
// ladder: its runners are rungs Offset, Offset+1, ... of Total (the runners
// of every runner node together).
type LadderPosition struct {
	Offset, Total int
}

// RunnerLadder places node self in the ε ladder of members: the live members
// with RoleRunner that advertise runners, ordered by name, each taking as
// many rungs as it runs runners. Members that are leaving give up their
// rungs at once (self keeps its own whatever its state). ok is false when
// self is not such a member (no runner role, no runners, or not listed).
//
// Every node computes this from its own view of the members, so while a
// change spreads by gossip two nodes can briefly overlap or leave a gap; the
// ladder settles when the views agree.
func RunnerLadder(members []Member, self string) (pos LadderPosition, ok bool) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range ms {
		if !m.HasRole(RoleRunner) || m.Runners <= 0 || (m.State != StateAlive && m.Name != self) {
			continue
		}
		if m.Name == self {
			pos.Offset, ok = pos.Total, true
		}
		pos.Total += m.Runners
	}
	if !ok {
		return LadderPosition{}, false
	}
	return pos, true
}

// WatchRunnerLadder calls f with this node's place in the ε ladder now, and
// again whenever a membership change moves it, from a goroutine of its own,
// until stop is called or the membership shuts down. f is not called while
// this node has no place (RunnerLadder's ok is false).
func (m *Membership) WatchRunnerLadder(f func(LadderPosition)) (stop func()) {
	events, cancel := m.Subscribe()
	done := make(chan struct{})
	self := m.cfg.NodeName
	go func() {
		defer close(done)
		var last LadderPosition
		have := false
		update := func() {
			pos, ok := RunnerLadder(m.Members(), self)
			if !ok || (have && pos == last) {
				return
			}
			last, have = pos, true
			m.log.Info("runner ladder position", "offset", pos.Offset, "total", pos.Total)
			f(pos)
		}
		update()
		for range events {
			update()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
