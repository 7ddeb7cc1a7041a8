package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qfleet/qfleet/actors"
)

// httpView is what the --http endpoints show of a node.
type httpView struct {
	node    string
	roles   []string
	members func() []memberInfo // this node included
	metrics *actors.Metrics
	started time.Time
	run     runInfo
	history *history
}

// runInfo is the run's fixed settings the dashboard draws against.
type runInfo struct {
	Env            string   `json:"env"`
	Seed           uint64   `json:"seed"`
	TargetReturn   *float64 `json:"target_return"` // null when not finite
	MaxSteps       uint64   `json:"max_steps"`
	ReplayCapacity int      `json:"replay_capacity"`
}

// memberInfo is one cluster member as /status shows it.
type memberInfo struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	// State: alive or leaving (live), left or failed (gone: remembered from
	// the membership events, which the member table forgets).
	State        string  `json:"state"`
	StateSeconds float64 `json:"state_seconds"` // how long it has been in State as this node saw it (0: unknown)
	Self         bool    `json:"self"`
}

// liveNames are the names of the live members: /status's "members".
func liveNames(ms []memberInfo) []string {
	var names []string
	for _, m := range ms {
		if m.State == "alive" || m.State == "leaving" {
			names = append(names, m.Name)
		}
	}
	return names
}

// newHTTPHandler serves /metrics (Prometheus text), /status (JSON), /history
// (JSON) and / (the dashboard), on a mux of its own, never the default one.
func newHTTPHandler(v httpView) http.Handler {
	mux := http.NewServeMux()
	m := v.metrics
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st := m.Status()
		members := v.members()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"node": v.node, "roles": v.roles, "members": liveNames(members),
			"uptime_seconds": time.Since(v.started).Seconds(), "weights_version": st.WeightsVersion,
			"counters": map[string]any{
				"env_steps": st.EnvSteps, "episodes": st.Episodes, "learner_updates": st.LearnerUpdates,
				"experience_rejected": st.ExperienceRejected, "experience_sent": st.ExperienceSent,
				"experience_dropped": st.ExperienceDropped, "experience_lost": st.ExperienceLost,
				"replay_inserted": st.ReplayInserted, "replay_size": st.ReplaySize,
			},
			"runners":         st.Runners,
			"mean_return_100": finite(st.Mean100), "mean_return_100_episodes": st.Mean100Count,
			"mean_return_100_all": finite(st.Mean100All), "solved": st.Solved,
			// For the dashboard; the fields above stay as tools read them.
			"member_info": members, "weights_lag": runnerLags(st),
			"restarts": st.Restarts, "stopped_roles": st.StoppedRoles, "run": v.run,
		})
	})
	serveDashboard(mux, v.history, v.started)
	return mux
}

// runnerLags is each runner's weights lag (weightsLag: publications behind
// the learner's published version, as of its last report); runners whose
// version is of another learner term are left out: they do not compare.
func runnerLags(st actors.RunStatus) map[string]uint64 {
	lags := map[string]uint64{}
	for name, r := range st.Runners {
		if lag, ok := weightsLag(st.WeightsVersion, r.WeightsVersion); ok {
			lags[name] = lag
		}
	}
	return lags
}
