package qfleet

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/console"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/internal/testutil/testckpt"
)

// A run whose learner stops for good ends within a second, with an error
// naming it, instead of going on without a learner until --max-time and then
// waiting 30 s for a final checkpoint that no one writes. The node here
// starts past the command's startup check, as a checkpoint replaced between
// the check and the learner's start would.
func TestRunEndsWhenTheLearnerStops(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	testckpt.WriteRandom(t, ckpt, "Acrobot-v1", actors.DefaultConfigFor("Acrobot-v1"))
	cf := DefaultConfig("CartPole-v1")
	cf.MaxSteps, cf.MaxTime, cf.CheckpointDir, cf.Live = 100_000_000, "20s", ckpt, console.LiveNever
	tr, err := NewRun(cf, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.checkResume(actors.AllRoles); err == nil {
		t.Fatal("the startup check let an Acrobot checkpoint into a CartPole run")
	}
	node, err := actors.StartDev(actors.NodeOptions{EnvID: tr.cf.Env, Seed: tr.cf.Seed, Config: tr.cf.Config,
		Stop:          actors.StopRule{TargetReturn: tr.targetReturn, MaxEnvSteps: tr.cf.MaxSteps},
		CheckpointDir: tr.cf.CheckpointDir, CheckpointEvery: tr.checkpointEvery, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr testutil.SyncBuffer
	start := time.Now()
	_, err = tr.run("dev", node, nil, runHooks{}, &stdout, &stderr)
	took := time.Since(start)
	t.Logf("run ended after %v: %v\n%s", took.Round(time.Millisecond), err, stderr.String())
	if err == nil || !strings.Contains(err.Error(), "learner stopped for good") {
		t.Errorf("run returned %v, want an error saying the learner stopped", err)
	}
	if !strings.Contains(stderr.String(), "the learner stopped for good") || strings.Contains(stderr.String(), "--max-time") {
		t.Errorf("stderr does not say the run ended for the learner:\n%s", stderr.String())
	}
	if took > 3*time.Second {
		t.Errorf("the run went on %v without its learner (--max-time 20s)", took)
	}
}
