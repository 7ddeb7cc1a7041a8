package actors

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A resumed learner continues from its checkpoint in a new term: its update
// counter carries on and every version it publishes is newer than any
// published before, so runners never see the version go backwards.
func TestLearnerResumesInANewTerm(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	run := func(resume bool, steps uint64) RunStatus {
		t.Helper()
		st, _ := runDevToEnd(t, NodeOptions{EnvID: "CartPole-v1", Seed: 3, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: steps},
			CheckpointDir: dir, SnapshotEvery: time.Second, Resume: resume, Logger: testLogger(t, slog.LevelWarn)}, 2*time.Minute)
		return st
	}
	first := run(false, 6_000)
	c1, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c1.GetTerm() != 1 || c1.GetLearnerUpdates() == 0 || c1.GetLearnerUpdates() > first.LearnerUpdates {
		t.Fatalf("first checkpoint: term %d, updates %d (status %d)", c1.GetTerm(), c1.GetLearnerUpdates(), first.LearnerUpdates)
	}
	second := run(true, 12_000) // max_steps counts the run's env steps: 6,000 more
	c2, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c2.GetTerm() != 2 {
		t.Fatalf("resumed learner is in term %d, want 2", c2.GetTerm())
	}
	if c2.GetLearnerUpdates() <= c1.GetLearnerUpdates() {
		t.Fatalf("updates went from %d to %d across the resume", c1.GetLearnerUpdates(), c2.GetLearnerUpdates())
	}
	// The replay went on from its snapshot (written at the clean stop): its
	// insert count continues, so it holds more than this run's runners sent
	// (a replay started empty holds at most that).
	if second.ReplayInserted <= second.ExperienceSent {
		t.Fatalf("replay inserted %d after the resume, its runners sent %d: the replay started empty", second.ReplayInserted, second.ExperienceSent)
	}
	// The exploration position (the run's env steps, which drive ε) carries
	// on: the run reaches its 12,000 env steps having stepped only what was
	// left after the checkpoint's (an ε schedule started over steps 12,000).
	if c2.GetEnvSteps() < 12_000 {
		t.Fatalf("env steps %d after the resume, want ≥ 12000", c2.GetEnvSteps())
	}
	if left := 12_000 - c1.GetEnvSteps(); second.ExperienceSent > left+left/2 {
		t.Fatalf("the resumed run's runners sent %d transitions, want about the %d env steps left after the checkpoint's %d: the ε schedule started over",
			second.ExperienceSent, left, c1.GetEnvSteps())
	}
	if second.WeightsVersion <= first.WeightsVersion {
		t.Fatalf("weights version went backwards: %d then %d", first.WeightsVersion, second.WeightsVersion)
	}
	// The previous checkpoints are kept, the newest first.
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile+".1")); err != nil {
		t.Fatalf("previous checkpoint not kept: %v", err)
	}
}

// A corrupt newest checkpoint is detected and the previous one is used.
func TestCorruptNewestCheckpointFallsBack(t *testing.T) {
	dir := t.TempDir()
	for i := uint64(1); i <= 4; i++ {
		if err := WriteCheckpoint(dir, testCheckpoint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile+".3")); err == nil {
		t.Fatalf("more than %d checkpoints kept", CheckpointsKept)
	}
	path := filepath.Join(dir, CheckpointFile)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, skipped, err := ReadLatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetLearnerUpdates() != 3 || len(skipped) != 1 {
		t.Fatalf("got the checkpoint of update %d with %d skipped, want 3 and 1", c.GetLearnerUpdates(), len(skipped))
	}
}
