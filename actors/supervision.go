package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Restart policy of a node's role actors. A role that fails is restarted
// after a back-off that doubles with each failure inside RestartWindow
// (RestartBackoff, 2×, 4×, ... capped at RestartBackoffMax), so a role that
// fails at once on every start (a broken env, a full disk) does not spin; a
// role that fails more than RestartBudget times within RestartWindow stays
// stopped, is logged and is listed in /status's stopped_roles, instead of
// restarting forever in silence.
const (
	RestartBudget     = 10
	RestartWindow     = 30 * time.Second
	RestartBackoff    = 100 * time.Millisecond
	RestartBackoffMax = 5 * time.Second
)

// SupervisorStrategy is what a node supervisor applies to its roles: one for
// one, with the budget and back-off above.
func SupervisorStrategy() actor.SupervisorStrategy {
	return &backoffStrategy{budget: RestartBudget, window: RestartWindow, initial: RestartBackoff, max: RestartBackoffMax}
}

// backoffStrategy is protoactor's one-for-one strategy with a delay before
// each restart: protoactor offers the budget (NewOneForOneStrategy) and the
// delay (NewExponentialBackoffStrategy, which never gives up) but not both.
// While the child waits, it is suspended: its mailbox keeps what arrives.
type backoffStrategy struct {
	budget       int
	window       time.Duration
	initial, max time.Duration
}

var _ actor.SupervisorStrategy = (*backoffStrategy)(nil)

func (s *backoffStrategy) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, _ any) {
	rs.Fail()
	n := rs.NumberOfFailures(s.window)
	if n > s.budget {
		rs.Reset()
		sys.Logger().Error("role failed too often: stopped", "pid", child, "reason", reason, "failures", n, "window", s.window)
		sup.StopChildren(child)
		return
	}
	delay := s.backoff(n)
	sys.Logger().Warn("role failed: restarting after back-off", "pid", child, "reason", reason, "failures", n, "backoff", delay)
	time.AfterFunc(delay, func() { sup.RestartChildren(child) })
}

// backoff is the delay before the restart that follows the n-th failure in
// the window: initial·2^(n−1), at most max.
func (s *backoffStrategy) backoff(n int) time.Duration {
	d := s.initial
	for i := 1; i < n && d < s.max; i++ {
		d *= 2
	}
	return min(d, s.max)
}
