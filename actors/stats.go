package actors

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors/lograte"
	"github.com/qfleet/qfleet/messages"
)

// GreedyEpsilon is the largest ε at which an episode counts toward mean100:
// CleanRL's final ε, so that comparisons with it are like for like.
const GreedyEpsilon = 0.05

// StopRule says when a run is over: when mean100 reaches TargetReturn (over a
// full window of 100 counted episodes), or at MaxEnvSteps (0: never). With
// OnEval, an evaluation's mean return reaching TargetReturn ends it instead
// of mean100 (stop_on: eval). With OnNone, mean100 reaching it is recorded
// (solved, and from then on the lowest mean100) but ends nothing: the run
// goes on to MaxEnvSteps or its time limit, to show whether what was
// learned holds (stop_on: none).
type StopRule struct {
	TargetReturn float64
	MaxEnvSteps  uint64
	OnEval       bool
	OnNone       bool
}

// stats is the run's episode bookkeeper (on the learner's node): it receives
// every runner's episode stats and progress, keeps mean100 over episodes
// played at ε ≤ GreedyEpsilon and mean100_all over all, and closes Done when
// the stop rule fires.
type stats struct {
	rule    StopRule
	metrics *Metrics
	log     *slog.Logger
	done    func()
	start   time.Time

	greedy, all returnWindow
	runnerSteps map[string]uint64 // cumulative env steps per runner
	// Per runner name: the incarnation last heard, and the accounting totals
	// of its earlier incarnations (a restarted runner process counts from 0).
	incarnation map[string]uint64
	retired     map[string][2]uint64
	total       uint64
	solved      bool // mean100 reached the target (recorded once)
	finished    bool
	refusedLog  *lograte.Limiter
}

// returnWindow is the mean of the last 100 returns.
type returnWindow struct {
	buf  [100]float64
	n    int // filled
	next int
	sum  float64
}

func (w *returnWindow) add(x float64) {
	if w.n == len(w.buf) {
		w.sum -= w.buf[w.next]
	} else {
		w.n++
	}
	w.buf[w.next] = x
	w.sum += x
	w.next = (w.next + 1) % len(w.buf)
}

func (w *returnWindow) mean() float64 {
	if w.n == 0 {
		return math.NaN()
	}
	// Recompute rather than trust the running sum: float drift over millions
	// of episodes would otherwise creep into the stop rule.
	s := 0.0
	for i := 0; i < w.n; i++ {
		s += w.buf[i]
	}
	return s / float64(w.n)
}

func newStats(rule StopRule, m *Metrics, log *slog.Logger, done func()) actor.Producer {
	var once sync.Once
	return func() actor.Actor {
		return &stats{rule: rule, metrics: m, log: log.With("role", "stats"), done: func() { once.Do(done) }, runnerSteps: map[string]uint64{},
			incarnation: map[string]uint64{}, retired: map[string][2]uint64{}, refusedLog: lograte.New(10 * time.Second)}
	}
}

func (s *stats) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.start = time.Now()
	case *messages.RunnerProgress:
		if !s.admit(msg.GetRunner()) {
			return
		}
		s.advance(msg.GetRunner(), s.runnerSteps[msg.GetRunner()]+msg.GetEnvSteps())
		s.progress(msg)
	case *messages.EpisodeStats:
		if !s.admit(msg.GetRunner()) {
			return
		}
		s.episode(msg)
	case *messages.EvalReport:
		s.evaluation(ctx, msg)
	}
}

// MaxRunners bounds the runners a run keeps books for (stats, /status, the
// broadcaster's subscribers), so that a peer inventing runner names cannot
// grow a node's memory without end. Far above any real run.
const MaxRunners = 4096

// admit reports whether runner's messages are booked: a runner already
// known, or a new one while there is room.
func (s *stats) admit(runner string) bool {
	if _, ok := s.runnerSteps[runner]; ok || len(s.runnerSteps) < MaxRunners {
		if !ok {
			s.runnerSteps[runner] = 0
		}
		return true
	}
	if ok, held := s.refusedLog.Allow("runner", time.Now()); ok {
		s.log.Warn("runner ignored: the run already has the most runners it keeps books for", "runner", runner, "max", MaxRunners, "ignored_since_last_line", held)
	}
	return false
}

// progress records a runner's latest report; accounting fields are
// cumulative, so the sums over runners are recomputed from the latest.
func (s *stats) progress(p *messages.RunnerProgress) {
	s.metrics.update(func(st *RunStatus) {
		st.runner(p.GetRunner(), true, func(r *RunnerStatus) { s.report(r, p) })
		recountExperience(st)
	})
}

// report takes a runner's progress report into its status.
func (s *stats) report(r *RunnerStatus, p *messages.RunnerProgress) {
	{
		r.EnvSteps = s.runnerSteps[p.GetRunner()]
		r.WeightsVersion, r.WeightsTerm, r.Epsilon = p.GetWeightsVersion(), p.GetWeightsTerm(), p.GetEpsilon()
		r.LadderIndex, r.LadderCount, r.LadderEpsilon = int(p.GetLadderIndex()), int(p.GetLadderCount()), p.GetLadderEpsilon()
		name, inc := p.GetRunner(), p.GetRunnerIncarnation()
		if prev := s.incarnation[name]; prev != 0 && prev != inc {
			s.retired[name] = [2]uint64{r.ExperienceSent, r.ExperienceDropped}
		}
		s.incarnation[name] = inc
		base := s.retired[name]
		r.ExperienceSent, r.ExperienceDropped = base[0]+p.GetExperienceSent(), base[1]+p.GetExperienceDropped()
		r.LastReport = time.Now()
	}
}

// advance moves a runner's cumulative step count forward (never back).
func (s *stats) advance(runner string, steps uint64) {
	if prev := s.runnerSteps[runner]; steps > prev {
		s.runnerSteps[runner] = steps
		s.total += steps - prev
		s.metrics.EnvSteps.Add(float64(steps - prev))
	}
	s.metrics.update(func(st *RunStatus) { st.EnvSteps = s.total })
	// max_steps counts the run's env steps: a resumed run's own and those
	// before it, which its checkpoint carries.
	if s.rule.MaxEnvSteps > 0 && s.metrics.EnvStepsTotal() >= s.rule.MaxEnvSteps {
		s.finish("max env steps reached")
	}
}

func (s *stats) episode(e *messages.EpisodeStats) {
	s.all.add(e.GetReturn())
	counted := e.GetMaxEpsilon() <= GreedyEpsilon
	if counted {
		s.greedy.add(e.GetReturn())
	}
	mean, meanAll := s.greedy.mean(), s.all.mean()
	s.metrics.Episodes.Inc()
	if !math.IsNaN(mean) {
		s.metrics.Mean100.WithLabelValues().Set(mean)
	}
	s.metrics.Mean100All.WithLabelValues().Set(meanAll)
	s.metrics.update(func(st *RunStatus) {
		st.Episodes++
		st.Mean100, st.Mean100Count, st.Mean100All = mean, s.greedy.n, meanAll
		st.runner(e.GetRunner(), true, func(r *RunnerStatus) { r.Episodes++ })
	})
	s.advance(e.GetRunner(), e.GetRunnerEnvSteps())
	if !counted || s.rule.OnEval || s.greedy.n < len(s.greedy.buf) {
		return
	}
	if s.solved {
		// How well it holds: the lowest mean100 since solving.
		s.metrics.update(func(st *RunStatus) {
			if m := st.Mean100MinAfterSolved; m != nil && mean < *m {
				st.Mean100MinAfterSolved = &mean
			}
		})
		return
	}
	if mean >= s.rule.TargetReturn && !s.finished {
		now, run := time.Now(), s.metrics.EnvStepsTotal()
		s.solved = true
		s.metrics.update(func(st *RunStatus) {
			st.Solved, st.SolvedAtEnvSteps, st.SolvedAt, st.Mean100MinAfterSolved = true, run, now, &mean
		})
		s.log.Info("solved", "mean100", mean, "env_steps", run, "seconds", now.Sub(s.start).Seconds())
		if !s.rule.OnNone {
			s.finish("target return reached")
		}
	}
}

func (s *stats) finish(why string) {
	if s.finished {
		return
	}
	s.finished = true
	s.log.Info("run finished", "why", why, "env_steps", s.metrics.EnvStepsTotal())
	s.done()
}
