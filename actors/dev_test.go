package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/nets"
)

// The whole pipeline learns: runners → replay → learner → broadcaster →
// runners, all real actors. A fixed seed must reach mean100 ≥ 150 (episodes
// at ε ≤ 0.05, a full window of 100) within 80k env steps; a random policy
// scores about 22. Async runs are not bit-reproducible, so the bound leaves
// room: the default config reaches 150 near 30k steps.
func TestDevLearnsCartPole(t *testing.T) {
	if testing.Short() {
		t.Skip("learning run: skipped with -short")
	}
	d, st := devLearnsCartPole(t, DefaultConfig())
	if st.LearnerUpdates == 0 || st.WeightsVersion < 2 {
		t.Fatalf("learner did %d updates and published v%d", st.LearnerUpdates, st.WeightsVersion)
	}
	// The rate limiter holds the sample:insert ratio: updates·batch ≈ 32·steps.
	cfg := DefaultConfig()
	ratio := float64(st.LearnerUpdates*uint64(cfg.BatchSize)) / float64(st.EnvSteps-uint64(cfg.MinReplaySize))
	if ratio < 0.8*cfg.SamplesPerInsert || ratio > 1.2*cfg.SamplesPerInsert {
		t.Fatalf("sampled/inserted = %.1f, want %.0f ± 20%%", ratio, cfg.SamplesPerInsert)
	}
	if path, err := d.SaveCheckpoint(10 * time.Second); err == nil {
		t.Fatalf("checkpoint without a directory succeeded: %s", path)
	}
}

// devLearnsCartPole runs CartPole-v1 (seed 7) under cfg to mean100 150 or
// 80,000 env steps, fails the test unless it learned, and returns the run
// (stopped when the test ends) and its status.
func devLearnsCartPole(t *testing.T, cfg Config) (*Node, RunStatus) {
	t.Helper()
	d, err := StartDev(NodeOptions{
		EnvID: "CartPole-v1", Seed: 7, Config: cfg,
		Stop:   StopRule{TargetReturn: 150, MaxEnvSteps: 80_000},
		Logger: testLogger(t, slog.LevelWarn),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	select {
	case <-d.Done():
	case <-time.After(5 * time.Minute):
		t.Fatal("run neither solved nor reached its step budget in 5 minutes")
	}
	st := d.Metrics.Status()
	t.Logf("env steps %d, episodes %d, updates %d, weights v%d, mean100 %.1f (n=%d) in %.1fs",
		st.EnvSteps, st.Episodes, st.LearnerUpdates, st.WeightsVersion, st.Mean100, st.Mean100Count, time.Since(d.Started).Seconds())
	if !st.Solved || st.Mean100 < 150 || st.Mean100Count != 100 {
		t.Fatalf("did not learn: mean100 %.1f over %d episodes after %d env steps", st.Mean100, st.Mean100Count, st.EnvSteps)
	}
	return d, st
}

// testLogger logs at level and above into t.Log until the test ends.
func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	l, _ := testutil.Logger(t, level)
	return l
}

// runDevToEnd starts a dev node, waits for its stop rule to end the run
// (failing after timeout), saves a checkpoint and stops it: one leg of the
// train-then-resume tests. It returns the run's last status and the net.
func runDevToEnd(t *testing.T, o NodeOptions, timeout time.Duration) (RunStatus, nets.Spec) {
	t.Helper()
	d, err := StartDev(o)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	case <-time.After(timeout):
		t.Fatalf("no %d env steps in %v: %+v", o.Stop.MaxEnvSteps, timeout, d.Metrics.Status())
	}
	if _, err := d.SaveCheckpoint(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := d.Metrics.Status()
	d.Stop()
	return st, d.Net
}
