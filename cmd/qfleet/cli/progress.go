package cli

import (
	"fmt"
	"math"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// progress formats the periodic progress line: totals and rates since the
// previous line.
type progress struct {
	metrics *actors.Metrics
	started time.Time
	last    actors.RunStatus
	lastAt  time.Time
}

func newProgress(m *actors.Metrics, started time.Time) *progress {
	return &progress{metrics: m, started: started, lastAt: started}
}

func (p *progress) line() string {
	now := time.Now()
	st := runStatusOf(p.metrics)
	dt := now.Sub(p.lastAt).Seconds()
	stepsPerSec := float64(st.EnvSteps-p.last.EnvSteps) / dt
	updatesPerSec := float64(st.LearnerUpdates-p.last.LearnerUpdates) / dt
	p.last, p.lastAt = st, now
	mean := "-"
	if !math.IsNaN(st.Mean100) {
		mean = fmt.Sprintf("%.1f (n=%d)", st.Mean100, st.Mean100Count)
	}
	return fmt.Sprintf("[%6.1fs] steps=%d episodes=%d mean100=%s mean100_all=%.1f env_steps/s=%.0f updates/s=%.0f updates=%d weights=t%d/v%d",
		now.Sub(p.started).Seconds(), st.EnvSteps, st.Episodes, mean, finite(st.Mean100All), stepsPerSec, updatesPerSec,
		st.LearnerUpdates, st.WeightsVersion>>40, st.WeightsVersion&(1<<40-1))
}

// runStatusOf is the run status as this node shows it: a runner-only node has
// no stats actor, so its env steps are its own runners'.
func runStatusOf(m *actors.Metrics) actors.RunStatus {
	st := m.Status()
	st.EnvSteps = max(st.EnvSteps, m.LocalRunnerSteps.Load())
	return st
}
