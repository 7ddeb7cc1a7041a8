package actors

import (
	"log/slog"
	"testing"
	"time"

	_ "github.com/qfleet/qfleet/envs/minatar"
)

// The MinAtar pipeline end to end, with everything issue 5 adds switched on:
// the conv Q-network (runner forward and gorgonia learner), a dueling head,
// prioritized replay with runner priorities, and the packed binary table,
// then a resume from its checkpoint and replay snapshot. A smoke run, not a
// learning run (that is `make minatar` and BENCHMARKS.md): it checks that
// experience flows and is accepted, the learner trains and publishes, and
// the state comes back.
func TestDevMinAtarPipeline(t *testing.T) {
	cfg := DefaultConfigFor("MinAtar/Breakout-v1")
	cfg.MinReplaySize, cfg.EpsilonDecaySteps = 500, 2_000
	cfg.Prioritized, cfg.Dueling = true, true
	dir := t.TempDir()
	run := func(resume bool) RunStatus {
		st, _ := runDevToEnd(t, NodeOptions{EnvID: "MinAtar/Breakout-v1", Seed: 1, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 3_000},
			CheckpointDir: dir, SnapshotEvery: time.Hour, Resume: resume,
			Logger: testLogger(t, slog.LevelWarn)}, 2*time.Minute)
		return st
	}
	first := run(false)
	t.Logf("first: env steps %d, episodes %d, inserted %d, rejected %d, updates %d, weights %#x", first.EnvSteps, first.Episodes,
		first.ReplayInserted, first.ExperienceRejected, first.LearnerUpdates, first.WeightsVersion)
	if first.Episodes == 0 || first.ReplayInserted < 2_000 || first.ExperienceRejected != 0 || first.LearnerUpdates == 0 || first.WeightsVersion == 0 {
		t.Fatal("experience did not flow, was refused, or the learner did not train and publish")
	}
	second := run(true)
	if second.ReplayInserted < first.ReplayInserted || second.LearnerUpdates <= first.LearnerUpdates || second.WeightsVersion <= first.WeightsVersion {
		t.Fatalf("after the resume: inserted %d (was %d), updates %d (was %d), weights %#x (was %#x)", second.ReplayInserted, first.ReplayInserted,
			second.LearnerUpdates, first.LearnerUpdates, second.WeightsVersion, first.WeightsVersion)
	}
}
