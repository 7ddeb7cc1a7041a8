package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/messages/wire"
)

func version(term, count uint64) wire.Version {
	return wire.Version{Version: term<<40 | count, Term: term}
}

// names gathers the metric names m's registry exports.
func names(t *testing.T, m *Metrics) map[string]bool {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = true
	}
	return out
}

// value is the value of the metric name without labels in m's registry.
func value(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// A node registers the metrics of its roles only, and its means are absent
// until an episode counts toward them.
func TestNodeMetricsByRole(t *testing.T) {
	runner := NewNodeMetrics(RoleRunner)
	got := names(t, runner)
	for _, want := range []string{"qfleet_runner_env_steps_total", "qfleet_runner_episodes_total", "qfleet_runner_experience_sent_total",
		"qfleet_weights_term", "qfleet_cluster_members"} {
		if !got[want] {
			t.Errorf("a runner node lacks %s", want)
		}
	}
	for name := range got {
		for _, not := range []string{"qfleet_learner_", "qfleet_replay_", "qfleet_env_steps_total", "qfleet_episode_return_mean100", "qfleet_runner_episode_return_mean100", "qfleet_runner_weights_lag"} {
			if strings.HasPrefix(name, not) {
				t.Errorf("a runner node with no episode and no weights exports %s", name)
			}
		}
	}
	runner.localEpisode(20, 1.0) // exploring: not counted toward mean100
	if names(t, runner)["qfleet_runner_episode_return_mean100"] {
		t.Error("mean100 present after an episode at ε 1")
	}
	runner.localEpisode(40, 0.01)
	runner.localRunner("B/runner-0", RunnerStatus{EnvSteps: 100, Episodes: 2, WeightsTerm: 1, WeightsVersion: 1<<40 | 5, WeightsLagPublications: 3, WeightsLagSeconds: 0.5, WeightsAgeSeconds: 0.7}, 64)
	runner.LocalRunnerSteps.Add(100)
	got = names(t, runner)
	for _, want := range []string{"qfleet_runner_episode_return_mean100", "qfleet_runner_weights_lag_publications", "qfleet_runner_weights_lag_seconds", "qfleet_runner_weights_age_seconds"} {
		if !got[want] {
			t.Errorf("a runner node lacks %s after an episode at ε 0.01 and weights", want)
		}
	}
	st := runner.NodeStatus()
	if st.EnvSteps != 100 || st.Episodes != 2 || st.Mean100 != 40 || st.Mean100Count != 1 || st.Mean100All != 30 || st.ExperienceSent != 0 ||
		st.WeightsVersion != 1<<40|5 || st.Runners["B/runner-0"].WeightsLagPublications != 3 {
		t.Errorf("runner node status: %+v", st)
	}
	for name, want := range map[string]float64{"qfleet_runner_weights_lag_publications": 3, "qfleet_runner_weights_lag_seconds": 0.5, "qfleet_runner_weights_age_seconds": 0.7} {
		if got := value(t, runner, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	learner := NewNodeMetrics(RoleReplay, RoleLearner, RoleBroadcaster)
	got = names(t, learner)
	for _, want := range []string{"qfleet_learner_updates_total", "qfleet_replay_size", "qfleet_env_steps_total"} {
		if !got[want] {
			t.Errorf("a learner node lacks %s", want)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "qfleet_runner_") || name == "qfleet_episode_return_mean100" {
			t.Errorf("a learner node without runners or episodes exports %s", name)
		}
	}
}

// The weights client's lag: publications behind the newest it heard of,
// and the time since it first heard of a newer one; 0 when current.
func TestWeightsClientLag(t *testing.T) {
	c := &WeightsClient{}
	now := time.Unix(1000, 0)
	c.heard(version(1, 3), now)
	c.acting = version(1, 3)
	c.heard(version(1, 3), now)
	if p, s := c.Lag(now); p != 0 || s != 0 {
		t.Errorf("current: lag %d, %v s", p, s)
	}
	c.heard(version(1, 7), now)
	if p, s := c.Lag(now.Add(1500 * time.Millisecond)); p != 4 || s != 1.5 {
		t.Errorf("4 behind for 1.5 s: lag %d, %v s", p, s)
	}
	c.acting, c.takenAt = version(1, 7), now
	c.heard(version(1, 7), now)
	if p, s := c.Lag(now.Add(2 * time.Second)); p != 0 || s != 0 {
		t.Errorf("caught up: lag %d, %v s", p, s)
	}
	if a := c.Age(now.Add(2 * time.Second)); a != 2 {
		t.Errorf("weights taken 2 s ago: age %v", a)
	}
}
