// Package console draws a run's progress on a terminal or into a log: the
// live line (bar, rates, mean100, ETA) and the periodic progress line.
package console

import (
	"fmt"
	"math"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// progress formats the periodic progress line: totals and rates since the
// previous line.
type Progress struct {
	metrics *actors.Metrics
	started time.Time
	last    actors.RunStatus
	lastAt  time.Time
}

func NewProgress(m *actors.Metrics, started time.Time) *Progress {
	return &Progress{metrics: m, started: started, lastAt: started}
}

func (p *Progress) Line() string {
	now := time.Now()
	st := p.metrics.NodeStatus()
	dt := now.Sub(p.lastAt).Seconds()
	stepsPerSec := float64(st.EnvSteps-p.last.EnvSteps) / dt
	updatesPerSec := float64(st.LearnerUpdates-p.last.LearnerUpdates) / dt
	p.last, p.lastAt = st, now
	mean := "-"
	if !math.IsNaN(st.Mean100) {
		mean = fmt.Sprintf("%.1f (n=%d)", st.Mean100, st.Mean100Count)
	}
	term, pub := actors.SplitVersion(st.WeightsVersion)
	return fmt.Sprintf("[%6.1fs] steps=%d episodes=%d mean100=%s mean100_all=%.1f env_steps/s=%.0f updates/s=%.0f updates=%d weights=t%d/v%d",
		now.Sub(p.started).Seconds(), st.EnvSteps, st.Episodes, mean, actors.Finite(st.Mean100All), stepsPerSec, updatesPerSec,
		st.LearnerUpdates, term, pub)
}
