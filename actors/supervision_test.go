package actors

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
)

// flakyCartPole panics on every 700th step of the process (env test hook):
// a runner whose env fails must be restarted by its supervisor with a fresh
// env, and the run carries on.
type flakyCartPole struct {
	envs.Env
	steps *atomic.Int64
}

func (f flakyCartPole) Step(a int) ([]float32, float64, bool, bool) {
	if f.steps.Add(1)%700 == 0 {
		panic("flaky env: injected failure")
	}
	return f.Env.Step(a)
}

func TestRunnerWithFailingEnvIsRestarted(t *testing.T) {
	var steps atomic.Int64
	envs.Register("test/FlakyCartPole-v1", func() envs.Env {
		e, _ := envs.Make("CartPole-v1")
		return flakyCartPole{Env: e, steps: &steps}
	})
	cfg := DefaultConfig()
	d, err := StartDev(DevOptions{EnvID: "test/FlakyCartPole-v1", Seed: 2, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 5_000},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))})
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
	restarts := 0
	for _, n := range st.Restarts {
		restarts += n
	}
	if restarts < 5 || st.EnvSteps < 5_000 || len(st.StoppedRoles) != 0 {
		t.Fatalf("restarts %d, env steps %d, stopped roles %v: want ≥ 5 restarts, 5000 steps, none stopped", restarts, st.EnvSteps, st.StoppedRoles)
	}
}
