package actors

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
)

// flakyCartPole panics on every 1200th step of the process (env test hook):
// a runner whose env fails must be restarted by its supervisor with a fresh
// env, and the run carries on.
type flakyCartPole struct {
	envs.Env
	steps *atomic.Int64
}

func (f flakyCartPole) Step(a int) ([]float32, float64, bool, bool) {
	if f.steps.Add(1)%1200 == 0 {
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
	d, err := StartDev(NodeOptions{EnvID: "test/FlakyCartPole-v1", Seed: 2, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 5_000},
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
	restarts := 0
	for _, n := range st.Restarts {
		restarts += n
	}
	// A failure every 1200 steps of the process: 3 or more in 5000 steps
	// (every failed instance's steps count towards the budget).
	if restarts < 3 || st.EnvSteps < 5_000 || len(st.StoppedRoles) != 0 {
		t.Fatalf("restarts %d, env steps %d, stopped roles %v: want ≥ 3 restarts, 5000 steps, none stopped", restarts, st.EnvSteps, st.StoppedRoles)
	}
}

// failingRole panics on every start, after noting the time.
type failingRole struct{ starts chan time.Time }

func (f *failingRole) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		f.starts <- time.Now()
		panic("failing role: injected failure")
	}
}

// supervisorOf spawns child under a parent that supervises with strategy.
type supervisorOf struct{ child *actor.Props }

func (s *supervisorOf) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		ctx.Spawn(s.child)
	}
}

// A role that fails on every start is restarted after a doubling back-off,
// not in a tight loop, and stopped once it uses up its budget.
func TestRestartBackoffAndBudget(t *testing.T) {
	sys := newTestSystem(t)
	starts := make(chan time.Time, 100)
	strategy := &backoffStrategy{budget: 3, window: 10 * time.Second, initial: 50 * time.Millisecond, max: 150 * time.Millisecond}
	child := actor.PropsFromProducer(func() actor.Actor { return &failingRole{starts: starts} })
	sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &supervisorOf{child: child} }, actor.WithSupervisor(strategy)))
	var at []time.Time
	timeout := time.After(5 * time.Second)
	for len(at) < 4 {
		select {
		case t0 := <-starts:
			at = append(at, t0)
		case <-timeout:
			t.Fatalf("%d starts within 5 s, want 4 (1 + a budget of 3 restarts)", len(at))
		}
	}
	for i, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond} {
		if gap := at[i+1].Sub(at[i]); gap < want {
			t.Errorf("restart %d came %v after the failure, want ≥ %v", i+1, gap, want)
		}
	}
	select {
	case <-starts:
		t.Fatal("restarted beyond its budget")
	case <-time.After(500 * time.Millisecond):
	}
}
