package actors

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
	_ "github.com/qfleet/qfleet/envs/pixels"
)

// The pixel pipeline end to end: CartPolePixels-v1's 84×84 frames stacked 4
// deep by the runner and the evaluator, the Nature network acting (lean
// forward) and learning (gorgonia), the replay storing each frame once, then
// a resume from the checkpoint and the stacked replay's snapshot. A smoke
// run, not a learning run.
func TestDevPixelsPipeline(t *testing.T) {
	const env = "CartPolePixels-v1"
	cfg := DefaultConfigFor(env)
	cfg.MinReplaySize, cfg.SamplesPerInsert, cfg.EpsilonDecaySteps = 300, 0, 1_000
	cfg.EvalEvery, cfg.EvalEpisodes, cfg.PublishEvery = 1_000, 2, 1
	dir := t.TempDir()
	run := func(resume bool, steps uint64) RunStatus {
		st, net := runDevToEnd(t, NodeOptions{EnvID: env, Seed: 1, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: steps},
			CheckpointDir: dir, SnapshotEvery: time.Hour, Resume: resume, Roles: append(DevRoles(cfg), RoleEvaluator),
			Logger: testLogger(t, slog.LevelWarn)}, 2*time.Minute)
		if net.Inputs != 84*84*4 || len(net.ConvLayers()) != 3 {
			t.Fatalf("net %s: want the Nature network on 84×84×4", net)
		}
		return st
	}
	first := run(false, 3_000)
	t.Logf("first: env steps %d, episodes %d, inserted %d, rejected %d, updates %d, evaluations %d", first.EnvSteps, first.Episodes,
		first.ReplayInserted, first.ExperienceRejected, first.LearnerUpdates, first.Evaluations)
	if first.Episodes == 0 || first.ReplayInserted < 1_000 || first.ExperienceRejected != 0 || first.LearnerUpdates == 0 || first.WeightsVersion == 0 {
		t.Fatal("experience did not flow, was refused, or the learner did not train and publish")
	}
	if first.Evaluations == 0 || first.LastEval == nil {
		t.Fatal("the evaluator never evaluated (it steps stacked frames too)")
	}
	second := run(true, 6_000) // the run's env steps: 3,000 more
	if second.ReplayInserted < first.ReplayInserted || second.LearnerUpdates <= first.LearnerUpdates {
		t.Fatalf("after the resume: inserted %d (was %d), updates %d (was %d)", second.ReplayInserted, first.ReplayInserted,
			second.LearnerUpdates, first.LearnerUpdates)
	}
}

func TestNetworkKey(t *testing.T) {
	px, err := envs.SpecOf("CartPolePixels-v1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfigFor(px.ID)
	net := NetSpec(px, cfg)
	if err := net.Validate(); err != nil || net.Inputs != 84*84*4 || net.NumParams() != 1_685_154 {
		t.Fatalf("NetSpec %s (%d parameters, %v): want Nature's 1,685,154 on 84×84×4", net, net.NumParams(), err)
	}
	if err := CheckNetwork(px, cfg); err != nil {
		t.Fatal(err)
	}
	cp := envs.NewCartPole().Spec()
	if err := CheckNetwork(cp, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("network nature on CartPole-v1's 4 values: %v, want ErrInvalidConfig", err)
	}
	cfg.Network = "natrue"
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("network %q: %v, want ErrInvalidConfig", cfg.Network, err)
	}
	cfg.Network, cfg.FrameStack = "", 17
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("frame_stack 17: %v, want ErrInvalidConfig", err)
	}
}
