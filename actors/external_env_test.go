package actors

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/external"
	"github.com/qfleet/qfleet/internal/testutil"
)

// TestRunnerRestartsFailedExternalEnv: a runner whose external env raises
// (testdata/flaky_env.py, a fresh process failing after 400 of its own
// steps) is restarted by its supervisor with a fresh env process, the env's
// error recorded for the role, and the run goes on to its step budget with
// its books whole: the failed instances' steps counted, what they built
// and never sent counted dropped, nothing rejected or lost.
func TestRunnerRestartsFailedExternalEnv(t *testing.T) {
	py := testutil.Python(t)
	script, err := filepath.Abs("testdata/flaky_env.py")
	if err != nil {
		t.Fatal(err)
	}
	o := external.Options{Command: py + " " + script + " 400", ID: fmt.Sprintf("test/Flaky-%d-v0", time.Now().UnixNano()), Timeout: 20 * time.Second}
	start := func(n int) (envs.VecEnv, error) {
		o := o
		o.Envs = n
		return external.Start(context.Background(), o)
	}
	probe, err := start(1)
	if err != nil {
		t.Fatal(err)
	}
	spec := probe.Spec()
	probe.Close()
	if err := envs.RegisterVec(spec, start); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.EnvsPerRunner, cfg.MinReplaySize = 2, 200
	d, err := StartDev(NodeOptions{EnvID: spec.ID, Seed: 3, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 2_000},
		Logger: testLogger(t, slog.LevelError)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	select {
	case <-d.Done():
	case <-time.After(time.Minute):
		t.Fatalf("run stalled after the env failures: %+v", d.Metrics.Status())
	}
	st := d.Metrics.Status()
	id := SupervisorName + "/" + runnerRole(0)
	if st.Restarts[id] < 3 || st.EnvSteps < 2_000 || len(st.StoppedRoles) != 0 {
		t.Fatalf("restarts %v, env steps %d, stopped roles %v: want ≥ 3 restarts of %s, 2000 steps, none stopped", st.Restarts, st.EnvSteps, st.StoppedRoles, id)
	}
	if e := st.RoleErrors[id]; !strings.Contains(e, "boom after 400 steps") || !strings.Contains(e, "ValueError") {
		t.Errorf("the runner's recorded error does not quote the env's: %q", e)
	}
	// Each failed instance's steps reach the stats (its settle report):
	// every episode is 10 steps, so episodes·10 ≤ env steps (before the
	// settle report, 440 episodes came with 400 env steps); what it built
	// and never sent is counted dropped; nothing is rejected or lost, and
	// the replay has at least what the runner's last report says it sent.
	if st.Episodes*10 > st.EnvSteps || st.ExperienceDropped == 0 || st.ExperienceRejected != 0 || st.ExperienceLost != 0 ||
		st.ExperienceSent == 0 || st.ReplayInserted < st.ExperienceSent {
		t.Errorf("books: %d episodes in %d env steps; sent %d, inserted %d, lost %d, rejected %d, dropped %d",
			st.Episodes, st.EnvSteps, st.ExperienceSent, st.ReplayInserted, st.ExperienceLost, st.ExperienceRejected, st.ExperienceDropped)
	}
}
