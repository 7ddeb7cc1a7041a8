package actors

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds a node's Prometheus metrics (their names are an interface:
// dashboards and alerts use them; never rename one) in a
// registry of its own, never the global one, so that several nodes can live
// in one test process. All methods are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	EnvSteps prometheus.Counter
	Episodes prometheus.Counter
	// The means are vectors without labels: absent until an episode ends
	// (a 0 would read as a return of 0).
	Mean100, Mean100All *prometheus.GaugeVec
	ReplaySize          prometheus.Gauge
	ReplayInserted      prometheus.Counter
	ExperienceDropped   prometheus.Counter
	ExperienceLost      prometheus.Gauge // a gauge: a late batch moves its part of a gap back to inserted
	// ExperienceLostDeparted follows RunStatus.ExperienceLostDeparted.
	ExperienceLostDeparted prometheus.Gauge
	ExperienceRejected     prometheus.Counter
	// ExperienceDuplicates: batches over a range of a runner's stream the
	// replay already had (a replayed message); in no term of the accounting.
	ExperienceDuplicates prometheus.Counter
	LearnerUpdates       prometheus.Counter
	LearnerLoss          prometheus.Gauge
	// The weights version as two gauges, the learner term and the
	// publication within it: the combined 64-bit order (term<<40 | count)
	// stays internal, as a float it reads 1.0995e+12.
	WeightsTerm        prometheus.Gauge
	WeightsPublication prometheus.Gauge
	ClusterMembers     prometheus.Gauge
	WireBytes          *prometheus.CounterVec
	RoleRestarts       *prometheus.CounterVec
	// CheckpointFailures: learner checkpoints and replay snapshots that
	// could not be written (training goes on from the previous files).
	CheckpointFailures prometheus.Counter
	// Evaluations (the evaluator role): vectors without labels, so that
	// each is absent from /metrics until its first value, not 0 (a 0 would
	// read as an evaluation that returned 0).
	EvalMean, EvalStd, BestEvalMean *prometheus.GaugeVec

	// LocalRunnerSteps counts the env steps of this node's runners (the
	// run-wide count lives with the stats on the learner's node).
	LocalRunnerSteps atomic.Uint64
	// local is what this node's runners did, for a node without the
	// learner to show its own (nodeview.go).
	local localView
	roles map[string]bool // the roles whose metrics are registered

	mu           sync.Mutex
	envStepsBase uint64 // the run's env steps before this process (resume)
	status       RunStatus
	evals        evalLog // the evaluations taken, for the scalars file

	links linkBook // each runner's link, where the broadcaster and the replay count it (links.go; a lock of its own)
}

// RunStatus is the run-level view the command prints and summarises.
type RunStatus struct {
	EnvSteps         uint64    `json:"env_steps"`
	Episodes         uint64    `json:"episodes"`
	Mean100          float64   `json:"mean_return_100"`     // ε ≤ 0.05 episodes; NaN until one is played
	Mean100Count     int       `json:"mean_return_100_n"`   // episodes in that window (≤ 100)
	Mean100All       float64   `json:"mean_return_100_all"` // every runner's episodes
	LearnerUpdates   uint64    `json:"learner_updates"`
	WeightsVersion   uint64    `json:"weights_version"`
	ReplaySize       int       `json:"replay_size"`
	ReplayInserted   uint64    `json:"replay_inserted"`
	Solved           bool      `json:"solved"`
	SolvedAtEnvSteps uint64    `json:"solved_at_env_steps"`
	SolvedAt         time.Time `json:"-"`
	// The lowest mean100 from solving on (with stop_on: none, the run goes
	// on after it): how well what was learned holds.
	Mean100MinAfterSolved *float64 `json:"mean_return_100_min_after_solved,omitempty"`
	ExperienceRejected    uint64   `json:"experience_rejected"`

	// Experience accounting: Σ sent = replay_inserted + experience_rejected +
	// experience_lost + in flight. Sent and dropped are summed over the
	// runners' reports; lost is counted by the replay (gaps in the streams).
	ExperienceSent    uint64 `json:"experience_sent"`
	ExperienceDropped uint64 `json:"experience_dropped"` // by full runner outboxes (counted, never sent)
	ExperienceLost    uint64 `json:"experience_lost"`    // sent, never reached the replay (or died with it)
	// ExperienceLostDeparted: sent by runners whose node is gone, in
	// flight when it went, never to arrive (settled where the replay is).
	ExperienceLostDeparted uint64 `json:"experience_lost_departed"`

	Runners  map[string]RunnerStatus   `json:"runners"`
	Departed map[string]DepartedRunner `json:"departed_runners"`
	// Counts of departed runners forgotten to bound the list.
	settledSent, settledDropped, settledLostDeparted uint64
	replayLocal                                      bool // the replay is on this node: departed runners can be settled

	Restarts     map[string]int `json:"restarts"`      // per role actor, by its supervisor
	StoppedRoles []string       `json:"stopped_roles"` // role actors that used up their restart budget
	// The last error each failed role actor gave (an external env's, say),
	// so that a role stopped for good can be told why.
	RoleErrors map[string]string `json:"role_errors,omitempty"`

	// Evaluations (the evaluator role) the stats took, the last of them,
	// and the best the learner keeps (its weights are best.ckpt's): nil
	// until there is one. Replaced whole, never changed in place.
	Evaluations int         `json:"evaluations"`
	LastEval    *EvalStatus `json:"last_eval,omitempty"`
	BestEval    *EvalStatus `json:"best_eval,omitempty"`
}

// RunnerStatus is what the stats actor knows of one runner.
type RunnerStatus struct {
	EnvSteps          uint64  `json:"env_steps"`
	Episodes          uint64  `json:"episodes"`
	WeightsVersion    uint64  `json:"weights_version"` // acted on
	WeightsTerm       uint64  `json:"weights_term"`
	Epsilon           float64 `json:"epsilon"`        // as of its last report
	LadderIndex       int     `json:"ladder_index"`   // its rung in the Ape-X ε ladder, 0-based, across the cluster's runners
	LadderCount       int     `json:"ladder_count"`   // runners in the ladder (0: the runner did not say)
	LadderEpsilon     float64 `json:"ladder_epsilon"` // the ε its rung decays to
	ExperienceSent    uint64  `json:"experience_sent"`
	ExperienceDropped uint64  `json:"experience_dropped"`
	ExperienceLost    uint64  `json:"experience_lost"`
	// The runner's link as this node counts it (links.go): the weights the
	// broadcaster here sent it and the experience the replay here received
	// from it, in bytes and bytes/s over the last ~10 s, and the version it
	// has whole. Where the broadcaster is, the weights lag fields are the
	// broadcaster's count: behind the newest published.
	WeightsBytesSent        uint64  `json:"weights_bytes_sent"`
	WeightsBytesPerS        float64 `json:"weights_bytes_per_s"`
	ExperienceBytesReceived uint64  `json:"experience_bytes_received"`
	ExperienceBytesPerS     float64 `json:"experience_bytes_per_s"`
	WeightsAckedTerm        uint64  `json:"weights_acked_term"`
	WeightsAckedPublication uint64  `json:"weights_acked_publication"`
	// ExperienceReceived: transitions of this runner the replay got
	// (inserted or rejected), when the replay is on this node.
	ExperienceReceived uint64    `json:"experience_received"`
	LastReport         time.Time `json:"last_report"`
	// The weights lag as the runner's own node sees it: publications behind
	// the newest it heard of, and seconds since it first heard of a newer.
	WeightsLagPublications uint64  `json:"weights_lag_publications"`
	WeightsLagSeconds      float64 `json:"weights_lag_seconds"`
	// WeightsAgeSeconds: since the runner took the weights it acts on (its
	// own node's view; a runner hears of a newer version only when it comes).
	WeightsAgeSeconds float64 `json:"weights_age_seconds,omitempty"`
}

// NewMetrics registers every qfleet metric, as on a node with every role,
// in a fresh registry: for tests and benchmarks. A node uses NewNodeMetrics.
func NewMetrics() *Metrics { return NewNodeMetrics(KnownRoles()...) }

// NewNodeMetrics makes a node's metrics in a fresh registry and registers
// those of its roles only: a runner-only node exports no learner or replay
// metric (a 0 there would read as a stalled learner), and metrics of its
// own runners instead (the run-wide counts are kept by the stats, on the
// learner's node). Every field is made, registered or not, so that code
// can set it whatever the node's roles.
func NewNodeMetrics(roles ...string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r, roles: map[string]bool{}}
	for _, role := range roles {
		m.roles[role] = true
	}
	// f registers c when the node has one of roles (any node for none).
	f := func(c prometheus.Collector, roles ...string) {
		if len(roles) == 0 || slices.ContainsFunc(roles, m.Has) {
			r.MustRegister(c)
		}
	}
	counter := func(name, help string, roles ...string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		f(c, roles...)
		return c
	}
	gauge := func(name, help string, roles ...string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		f(g, roles...)
		return g
	}
	gaugeVec := func(name, help string, roles ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, nil)
		f(g, roles...)
		return g
	}
	const learner, replay, runner = RoleLearner, RoleReplay, RoleRunner
	// The stats (the run's env steps, episodes and returns), the learner's
	// counts and the evaluations it takes live on the learner's node.
	m.EnvSteps = counter("qfleet_env_steps_total", "Env steps taken by all runners.", learner)
	m.Episodes = counter("qfleet_episodes_total", "Episodes finished by all runners.", learner)
	m.Mean100 = gaugeVec("qfleet_episode_return_mean100", "Mean return of the last 100 episodes played at epsilon <= 0.05; absent before the first.", learner)
	m.Mean100All = gaugeVec("qfleet_episode_return_mean100_all", "Mean return of the last 100 episodes of any runner; absent before the first.", learner)
	m.ReplaySize = gauge("qfleet_replay_size", "Transitions held by the replay table.", replay)
	m.ReplayInserted = counter("qfleet_replay_inserted_total", "Transitions inserted into the replay table.", replay)
	m.ExperienceDropped = counter("qfleet_experience_dropped_total", "Transitions dropped (counted) before reaching the replay.", runner)
	m.ExperienceLost = gauge("qfleet_experience_lost", "Transitions sent by runners that never reached the replay (gaps the replay counted; a late batch takes its part back, so it can fall).", replay)
	m.ExperienceLostDeparted = gauge("qfleet_experience_lost_departed", "Transitions sent by runners whose node is gone that were in flight when it went (settled where the replay is; a late batch takes its part back).", replay)
	m.ExperienceRejected = counter("qfleet_experience_rejected_total", "Transitions the replay refused as malformed.", replay)
	m.ExperienceDuplicates = counter("qfleet_experience_duplicates_total", "Transitions the replay refused as already received (replayed messages).", replay)
	m.CheckpointFailures = counter("qfleet_checkpoint_failures_total", "Learner checkpoints and replay snapshots that could not be written; the previous ones stay.", learner, replay)
	m.LearnerUpdates = counter("qfleet_learner_updates_total", "Gradient updates done by the learner.", learner)
	m.LearnerLoss = gauge("qfleet_learner_loss", "Huber TD loss of the learner's last update.", learner)
	m.WeightsTerm = gauge("qfleet_weights_term", "Learner term of the weights version: published (learner node) or acted on (runner node); one up per learner start or resume.", learner, runner)
	m.WeightsPublication = gauge("qfleet_weights_publication", "Publication count within the term of the weights version: published (learner node) or acted on (runner node).", learner, runner)
	m.ClusterMembers = gauge("qfleet_cluster_members", "Live cluster members, this node included.")
	m.WireBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qfleet_wire_bytes_total", Help: "Bytes on the wire per flow and direction."}, []string{"flow", "direction"})
	f(m.WireBytes)
	m.EvalMean = gaugeVec("qfleet_eval_mean_return", "Mean return of the last evaluation's episodes (the evaluator role); absent before the first.", learner)
	m.EvalStd = gaugeVec("qfleet_eval_std_return", "Standard deviation of the last evaluation's returns; absent before the first.", learner)
	m.BestEvalMean = gaugeVec("qfleet_best_eval_mean_return", "Mean return of the best evaluation, whose weights the learner keeps (best.ckpt); absent before the first.", learner)
	m.RoleRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qfleet_role_restarts_total", Help: "Restarts of role actors by their node supervisor."}, []string{"role"})
	f(m.RoleRestarts)
	m.local.register(m, func(c prometheus.Collector) { f(c, runner) })
	m.ClusterMembers.Set(1)
	m.status.Mean100 = math.NaN()
	m.status.Mean100All = math.NaN()
	m.status.Runners = map[string]RunnerStatus{}
	m.status.Restarts = map[string]int{}
	return m
}

// Has says whether the node has role (its metrics are registered).
func (m *Metrics) Has(role string) bool { return m.roles[role] }

// setWeightsVersion sets the two weights gauges from a full version
// (versionOf(term, count)).
func (m *Metrics) setWeightsVersion(v uint64) {
	term, pub := SplitVersion(v)
	m.WeightsTerm.Set(float64(term))
	m.WeightsPublication.Set(float64(pub))
}

// WeightsLag is how many publications the runner's acted-on weights are
// behind the learner's published ones: versions are term<<40 | count, and
// counts of different learner terms (before and after a resume) do not
// compare, so those give no lag. A runner's report can be newer than the
// learner's, hence the floor at 0.
func WeightsLag(published, acted uint64) (uint64, bool) {
	pt, p := SplitVersion(published)
	at, a := SplitVersion(acted)
	if published == 0 || pt != at {
		return 0, false
	}
	if a >= p {
		return 0, true
	}
	return p - a, true
}

// NodeStatus is the run status as this node shows it: a node with runners
// and without the learner has no stats actor, so its counts, returns and
// runners are its own runners' (runnerView).
func (m *Metrics) NodeStatus() RunStatus {
	st := m.Status()
	if m.Has(RoleRunner) && !m.Has(RoleLearner) {
		return m.runnerView(st)
	}
	st.EnvSteps = max(st.EnvSteps, m.LocalRunnerSteps.Load())
	return st
}

// Status returns a snapshot of the run status.
func (m *Metrics) Status() RunStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Runners = make(map[string]RunnerStatus, len(m.status.Runners))
	for k, v := range m.status.Runners {
		s.Runners[k] = v
	}
	s.Departed = make(map[string]DepartedRunner, len(m.status.Departed))
	for k, v := range m.status.Departed {
		s.Departed[k] = v
	}
	s.Restarts = make(map[string]int, len(m.status.Restarts))
	for k, v := range m.status.Restarts {
		s.Restarts[k] = v
	}
	s.StoppedRoles = append([]string(nil), m.status.StoppedRoles...)
	if len(m.status.RoleErrors) > 0 {
		s.RoleErrors = make(map[string]string, len(m.status.RoleErrors))
		for k, v := range m.status.RoleErrors {
			s.RoleErrors[k] = v
		}
	}
	return s
}

// EnvStepsTotal is the run's env steps: those the stats on this node counted
// (every runner's, on the learner's node), plus those of the run before this
// process when it resumed from a checkpoint.
func (m *Metrics) EnvStepsTotal() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.envStepsBase + m.status.EnvSteps
}

// setEnvStepsBase records the run's env steps before this process started.
func (m *Metrics) setEnvStepsBase(n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.envStepsBase = n
}

// update applies f to the run status under the lock.
func (m *Metrics) update(f func(s *RunStatus)) {
	m.mu.Lock()
	f(&m.status)
	lostDeparted := m.status.ExperienceLostDeparted
	m.mu.Unlock()
	m.ExperienceLostDeparted.Set(float64(lostDeparted))
}

// RunSteps is the run's env steps as this node knows them, counting the
// steps before a resume, so that a resumed run's curve continues.
func (m *Metrics) RunSteps() uint64 {
	return max(m.EnvStepsTotal(), m.LocalRunnerSteps.Load())
}

// Finite is x, or 0 for NaN and ±Inf: RunStatus means are NaN before the
// first episode, and JSON has no NaN.
func Finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
