package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/messages"
)

// EvalStatus is one evaluation as /status, the summary and the scalars
// show it.
type EvalStatus struct {
	WeightsVersion uint64  `json:"weights_version"`
	LearnerUpdates uint64  `json:"learner_updates"`
	EnvSteps       uint64  `json:"env_steps"` // the run's env steps that triggered it
	Mean           float64 `json:"mean_return"`
	Std            float64 `json:"std_return"`
	Min            float64 `json:"min_return"`
	Max            float64 `json:"max_return"`
	Episodes       int     `json:"episodes"`
	WallSeconds    float64 `json:"wall_seconds"`
}

// EvalStatusOf is an EvalReport as a status.
func EvalStatusOf(r *messages.EvalReport) EvalStatus {
	return EvalStatus{WeightsVersion: r.GetWeightsVersion(), LearnerUpdates: r.GetLearnerUpdates(), EnvSteps: r.GetEnvSteps(),
		Mean: r.GetMeanReturn(), Std: r.GetStdReturn(), Min: r.GetMinReturn(), Max: r.GetMaxReturn(),
		Episodes: int(r.GetEpisodes()), WallSeconds: r.GetWallSeconds()}
}

// evalLog keeps the latest evaluations for the scalars file, which takes
// them every few seconds: several can end in between. Bounded: a reader
// that falls further behind loses the oldest.
type evalLog struct {
	recent []EvalStatus
	seq    uint64 // evaluations ever added; recent holds the last len(recent)
}

const evalLogKept = 256

// recordEval takes an evaluation into the run status, the gauges and the
// log (the stats actor).
func (m *Metrics) recordEval(e EvalStatus) {
	m.EvalMean.WithLabelValues().Set(e.Mean)
	m.EvalStd.WithLabelValues().Set(e.Std)
	m.update(func(st *RunStatus) {
		st.Evaluations++
		st.LastEval = &e
		m.evals.seq++
		m.evals.recent = append(m.evals.recent, e)
		if n := len(m.evals.recent); n > evalLogKept {
			m.evals.recent = append(m.evals.recent[:0], m.evals.recent[n-evalLogKept:]...)
		}
	})
}

// recordBest takes the learner's new best evaluation.
func (m *Metrics) recordBest(e EvalStatus) {
	m.BestEvalMean.WithLabelValues().Set(e.Mean)
	m.update(func(st *RunStatus) { st.BestEval = &e })
}

// EvalsSince returns the evaluations taken after the first seq (0: all
// that are kept) and the count to pass next time.
func (m *Metrics) EvalsSince(seq uint64) ([]EvalStatus, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.evals.seq - seq
	if n == 0 {
		return nil, m.evals.seq
	}
	n = min(n, uint64(len(m.evals.recent)))
	return append([]EvalStatus(nil), m.evals.recent[uint64(len(m.evals.recent))-n:]...), m.evals.seq
}

// evaluation books an evaluator's report: the run status, the learner on
// this node (which keeps the best version's weights), and, when the run
// stops on evaluations, the stop rule. The learner is told first, so that
// a final checkpoint asked for once Done closes comes after it in the
// learner's mailbox.
func (s *stats) evaluation(ctx actor.Context, r *messages.EvalReport) {
	if r.GetEpisodes() == 0 {
		return
	}
	e := EvalStatusOf(r)
	s.metrics.recordEval(e)
	ctx.Send(actor.NewPID(ctx.Self().Address, LearnerName), r)
	s.log.Info("evaluation", "env_steps", e.EnvSteps, "mean", e.Mean, "std", e.Std, "version", e.WeightsVersion)
	if s.rule.OnEval && e.Mean >= s.rule.TargetReturn && !s.finished {
		now := time.Now()
		s.metrics.update(func(st *RunStatus) {
			st.Solved, st.SolvedAtEnvSteps, st.SolvedAt = true, e.EnvSteps, now
		})
		s.log.Info("solved by evaluation", "mean", e.Mean, "env_steps", e.EnvSteps, "seconds", now.Sub(s.start).Seconds())
		s.finish("an evaluation reached the target return")
	}
}
