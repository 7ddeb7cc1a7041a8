package actors

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// localView is what the runners of this node did, kept on their own node:
// the run-wide counts live with the stats on the learner's node, so without
// this a runner-only node (the game machine) could not show whether it
// works. The runners write it; NodeStatus and /metrics read it.
type localView struct {
	mu             sync.Mutex
	episodes       uint64
	greedy, all    returnWindow
	runners        map[string]RunnerStatus
	weightsKnown   bool // a runner here acted on weights: the weights gauges are due
	episodesMetric prometheus.Counter
	mean100        *prometheus.GaugeVec
	sentMetric     prometheus.Counter
	lagPubsMetric  *prometheus.GaugeVec
	lagSecsMetric  *prometheus.GaugeVec
	ageMetric      *prometheus.GaugeVec
}

// register makes the runner-node metrics and registers them with f.
func (v *localView) register(m *Metrics, f func(prometheus.Collector)) {
	v.runners = map[string]RunnerStatus{}
	v.episodesMetric = prometheus.NewCounter(prometheus.CounterOpts{Name: "qfleet_runner_episodes_total", Help: "Episodes finished by this node's runners."})
	v.sentMetric = prometheus.NewCounter(prometheus.CounterOpts{Name: "qfleet_runner_experience_sent_total", Help: "Transitions this node's runners sent to the replay (to another host, their bytes count as wire bytes of the experience flow)."})
	v.mean100 = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "qfleet_runner_episode_return_mean100", Help: "Mean return of the last 100 episodes this node's runners played at epsilon <= 0.05; absent before the first."}, nil)
	v.lagPubsMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "qfleet_runner_weights_lag_publications", Help: "Publications the weights this node's runners act on are behind the newest they heard of (the largest over its runners); absent before the first weights."}, nil)
	v.lagSecsMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "qfleet_runner_weights_lag_seconds", Help: "Seconds since this node's runners first heard of newer weights than they act on (the largest over its runners; 0: acting on the newest they know); absent before the first weights."}, nil)
	v.ageMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "qfleet_runner_weights_age_seconds", Help: "Seconds since this node's runners took the weights they act on (the oldest over its runners); absent before the first weights."}, nil)
	steps := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "qfleet_runner_env_steps_total", Help: "Env steps taken by this node's runners."},
		func() float64 { return float64(m.LocalRunnerSteps.Load()) })
	for _, c := range []prometheus.Collector{steps, v.episodesMetric, v.sentMetric, v.mean100, v.lagPubsMetric, v.lagSecsMetric, v.ageMetric} {
		f(c)
	}
}

// localEpisode records an episode of one of this node's runners, counted
// toward its mean100 as the stats count it (played at ε ≤ GreedyEpsilon).
func (m *Metrics) localEpisode(ret, maxEpsilon float64) {
	v := &m.local
	v.mu.Lock()
	v.episodes++
	v.all.add(ret)
	if maxEpsilon <= GreedyEpsilon {
		v.greedy.add(ret)
	}
	mean := v.greedy.mean()
	v.mu.Unlock()
	v.episodesMetric.Inc()
	if !math.IsNaN(mean) {
		v.mean100.WithLabelValues().Set(mean)
	}
}

// localRunner records a runner's report (as it sends it to the stats) and
// its weights lag, and adds sent transitions to the node's count.
func (m *Metrics) localRunner(name string, rs RunnerStatus, newlySent uint64) {
	v := &m.local
	v.mu.Lock()
	v.runners[name] = rs
	v.weightsKnown = v.weightsKnown || rs.WeightsTerm > 0
	// The node's gauges are its runners' largest lag and oldest weights.
	var pubs uint64
	var secs, age float64
	for _, r := range v.runners {
		pubs, secs, age = max(pubs, r.WeightsLagPublications), max(secs, r.WeightsLagSeconds), max(age, r.WeightsAgeSeconds)
	}
	known := v.weightsKnown
	v.mu.Unlock()
	v.sentMetric.Add(float64(newlySent))
	if known {
		v.lagPubsMetric.WithLabelValues().Set(float64(pubs))
		v.lagSecsMetric.WithLabelValues().Set(secs)
		v.ageMetric.WithLabelValues().Set(age)
	}
}

// runnerView is the status of a node without the learner: its own runners'
// counts, returns and weights, in place of the run's (the stats are not
// here). st is the node's status (the replay's parts stay, if it is here).
func (m *Metrics) runnerView(st RunStatus) RunStatus {
	v := &m.local
	v.mu.Lock()
	defer v.mu.Unlock()
	st.EnvSteps = m.LocalRunnerSteps.Load()
	st.Episodes = v.episodes
	st.Mean100, st.Mean100Count, st.Mean100All = v.greedy.mean(), v.greedy.n, v.all.mean()
	st.Runners = make(map[string]RunnerStatus, len(v.runners))
	st.ExperienceSent, st.ExperienceDropped, st.WeightsVersion = 0, 0, 0
	for name, r := range v.runners {
		st.Runners[name] = r
		st.ExperienceSent += r.ExperienceSent
		st.ExperienceDropped += r.ExperienceDropped
		if st.WeightsVersion == 0 || r.WeightsVersion < st.WeightsVersion {
			st.WeightsVersion = r.WeightsVersion // the oldest acted on
		}
	}
	return st
}

// sinceOrZero is the seconds from t to now, 0 for a zero t.
func sinceOrZero(t, now time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return now.Sub(t).Seconds()
}

// WireTotals is the bytes this node sent and received over the wire, every
// flow together (qfleet_wire_bytes_total): its link use both ways.
func (m *Metrics) WireTotals() (sent, received float64) {
	ch := make(chan prometheus.Metric, 16)
	go func() { m.WireBytes.Collect(ch); close(ch) }()
	for c := range ch {
		var d dto.Metric
		if c.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() != "direction" {
				continue
			}
			switch l.GetValue() {
			case "sent":
				sent += d.GetCounter().GetValue()
			case "received":
				received += d.GetCounter().GetValue()
			}
		}
	}
	return sent, received
}
