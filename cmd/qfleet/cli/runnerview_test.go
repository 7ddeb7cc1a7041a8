package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster/netlab"
)

// runnerNodeStatus is the part of a runner-only node's /status that
// checkRunnerView reads.
type runnerNodeStatus struct {
	Roles    []string       `json:"roles"`
	Counters map[string]any `json:"counters"`
	Runners  map[string]struct {
		EnvSteps               uint64  `json:"env_steps"`
		Episodes               uint64  `json:"episodes"`
		WeightsVersion         uint64  `json:"weights_version"`
		WeightsLagPublications uint64  `json:"weights_lag_publications"`
		WeightsLagSeconds      float64 `json:"weights_lag_seconds"`
	} `json:"runners"`
	WeightsPublication uint64 `json:"weights_publication"`
}

// checkRunnerView: a runner-only node (h, serving HTTP at addr) shows what
// it does itself. Its /metrics has its own runners' env steps, growing, and
// no metric of the learner's, the replay's or the run-wide stats (a 0 there
// would read as a stalled learner); its /status, read between two /metrics,
// agrees with them (read half a second after the first and before the second): its env steps, episodes and weights publication lie
// between the two readings, and it has no learner or replay counter.
func checkRunnerView(t *testing.T, h *netlab.Host, addr string) {
	t.Helper()
	first, err := getMetrics(h, addr)
	if err != nil {
		t.Fatalf("%s's /metrics: %v", h.Name(), err)
	}
	time.Sleep(500 * time.Millisecond)
	st, err := labStatus[runnerNodeStatus](h, addr)
	if err != nil {
		t.Fatalf("%s's /status: %v", h.Name(), err)
	}
	time.Sleep(500 * time.Millisecond)
	second, err := getMetrics(h, addr)
	if err != nil {
		t.Fatalf("%s's /metrics: %v", h.Name(), err)
	}
	value := func(ms []promSample, name string) float64 {
		v, ok := promValue(ms, name, nil)
		if !ok {
			t.Errorf("%s's /metrics lacks %s", h.Name(), name)
		}
		return v
	}
	steps1, steps2 := value(first, "qfleet_runner_env_steps_total"), value(second, "qfleet_runner_env_steps_total")
	if steps2 <= steps1 {
		t.Errorf("%s's qfleet_runner_env_steps_total did not grow in 1 s: %v then %v", h.Name(), steps1, steps2)
	}
	for _, s := range second {
		for _, not := range []string{"qfleet_learner_", "qfleet_replay_", "qfleet_env_steps_total", "qfleet_episodes_total", "qfleet_episode_return_mean100", "qfleet_experience_lost"} {
			if strings.HasPrefix(s.name, not) {
				t.Errorf("%s (runner only) exports %s = %v", h.Name(), s.name, s.value)
			}
		}
	}
	if age := value(second, "qfleet_runner_weights_age_seconds"); age < 0 || age > 6 {
		t.Errorf("%s acts on weights taken %v s ago: the budget never holds a runner 6 s", h.Name(), age)
	}
	between := func(what string, got float64, name string) {
		lo, hi := value(first, name), value(second, name)
		if got < lo || got > hi {
			t.Errorf("%s's /status %s = %v, not between its %s readings around it (%v, %v)", h.Name(), what, got, name, lo, hi)
		}
	}
	num := func(key string) float64 {
		v, ok := st.Counters[key].(float64)
		if !ok {
			t.Errorf("%s's /status counters lack %s: %v", h.Name(), key, st.Counters)
		}
		return v
	}
	between("counters.env_steps", num("env_steps"), "qfleet_runner_env_steps_total")
	between("counters.episodes", num("episodes"), "qfleet_runner_episodes_total")
	between("weights_publication", float64(st.WeightsPublication), "qfleet_weights_publication")
	for _, key := range []string{"learner_updates", "replay_size", "replay_inserted", "experience_lost"} {
		if v, ok := st.Counters[key]; ok {
			t.Errorf("%s's /status has counters.%s = %v: not its role", h.Name(), key, v)
		}
	}
	runner := h.Name() + "/runner-0"
	if r, ok := st.Runners[runner]; !ok || r.EnvSteps == 0 {
		t.Errorf("%s's /status runners lack %s with env steps: %+v", h.Name(), runner, st.Runners)
	}
	t.Logf("%s's own view: env steps %v → %v in 1 s, status %s", h.Name(), steps1, steps2, fmt.Sprint(st.Counters))
}
