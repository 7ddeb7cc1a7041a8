package actors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// within polls cond until it holds or d passes.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// quietSystem is an actor system that logs nothing (dead letters to roles
// a test does not run).
func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discardLog() }))
}

// gauge is the value of a metric of m's registry, and whether it is there.
func gauge(t *testing.T, m *Metrics, name string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// spawnRole starts one role actor at its well-known name on sys, as a node
// supervisor would.
func spawnRole(t *testing.T, sys *actor.ActorSystem, name string, p actor.Producer) {
	t.Helper()
	if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(p), name); err != nil {
		t.Fatal(err)
	}
}

// greedyReturns plays one greedy episode per seed with params on a fresh
// env, by a loop of its own: what the evaluator must have played.
func greedyReturns(t *testing.T, spec nets.Spec, params []float32, seeds []int64) []float64 {
	t.Helper()
	env, err := envs.Make("CartPole-v1")
	if err != nil {
		t.Fatal(err)
	}
	f := nets.NewForward(spec)
	if err := f.SetParams(params); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, s := range seeds {
		obs, ret := env.Reset(s), 0.0
		for step := 0; step < env.Spec().MaxEpisodeSteps; step++ {
			var r float64
			var term, trunc bool
			obs, r, term, trunc = env.Step(f.Greedy(obs))
			ret += r
			if term || trunc {
				break
			}
		}
		out = append(out, ret)
	}
	return out
}

// TestEvaluatorGreedyOwnSeeds: a real evaluator, fed a fixed net through a
// real broadcaster, reports to real stats the returns of greedy episodes
// from EpisodeSeeds(EvalSeed(run seed)) — those of a direct greedy rollout
// — and the same at its second evaluation (same seeds, same weights); its
// seeds are not the runner's, and the runner's seeds give other returns.
func TestEvaluatorGreedyOwnSeeds(t *testing.T) {
	const seed, episodes = 7, 6
	cfg := DefaultConfig()
	cfg.EvalEvery, cfg.EvalEpisodes = 1000, episodes
	sp, _ := envs.SpecOf("CartPole-v1")
	net := NetSpec(sp, cfg)
	params := nets.InitParams(net, rand.New(rand.NewPCG(3, 4)))

	sys := quietSystem()
	defer sys.Shutdown()
	m := NewMetrics()
	dir := LocalDirectory{Address: sys.Address()}
	log := discardLog()
	spawnRole(t, sys, StatsName, newStats(StopRule{TargetReturn: 1e9}, m, log, func() {}))
	spawnRole(t, sys, BroadcasterName, newBroadcaster(cfg, m, log))
	spawnRole(t, sys, EvaluatorName, newEvaluator(EvaluatorSpec{Name: "t/evaluator", EnvID: "CartPole-v1", Seed: seed, Net: net}, cfg, dir, m, log))

	publish := func(n, steps uint64) {
		sys.Root.Send(dir.Broadcaster(), &messages.Weights{Version: versionOf(1, n), Term: 1, Params: slices.Clone(params), LearnerUpdates: 10 * n, EnvSteps: steps})
	}
	for _, name := range []string{"qfleet_eval_mean_return", "qfleet_eval_std_return", "qfleet_best_eval_mean_return"} {
		if v, ok := gauge(t, m, name); ok {
			t.Errorf("%s = %g before any evaluation, want absent", name, v)
		}
	}
	publish(1, 500) // before the first due point: no evaluation
	publish(2, 1200)
	within(t, 10*time.Second, "first evaluation", func() bool { return m.Status().Evaluations == 1 })
	first := *m.Status().LastEval

	want := greedyReturns(t, net, params, EpisodeSeeds(EvalSeed(seed), episodes))
	mean, std, lo, hi := ReturnStats(want)
	if first.Mean != mean || math.Abs(first.Std-std) > 1e-9 || first.Min != lo || first.Max != hi || first.Episodes != episodes {
		t.Errorf("evaluation %+v, want greedy returns %v (mean %g std %g)", first, want, mean, std)
	}
	if v, ok := gauge(t, m, "qfleet_eval_mean_return"); !ok || v != mean {
		t.Errorf("qfleet_eval_mean_return = %g (there: %v), want %g", v, ok, mean)
	}
	if first.WeightsVersion != versionOf(1, 2) || first.EnvSteps != 1200 || first.LearnerUpdates != 20 {
		t.Errorf("evaluation of version %x at %d env steps (%d updates), want %x at 1200 (20)", first.WeightsVersion, first.EnvSteps, first.LearnerUpdates, versionOf(1, 2))
	}

	publish(3, 1900) // not yet the next due point (2000)
	publish(4, 2100)
	within(t, 10*time.Second, "second evaluation", func() bool { return m.Status().Evaluations == 2 })
	second := *m.Status().LastEval
	if second.Mean != first.Mean || second.Std != first.Std || second.EnvSteps != 2100 {
		t.Errorf("second evaluation of the same net %+v, want the first's returns (same seeds) at 2100 steps: %+v", second, first)
	}

	// The runner of this run draws its env seeds from PCG(seed·1,000,003, 1).
	r := rand.New(rand.NewPCG(seed*1_000_003, 1))
	var trainSeeds []int64
	for range episodes {
		trainSeeds = append(trainSeeds, r.Int64())
	}
	for _, s := range EpisodeSeeds(EvalSeed(seed), episodes) {
		if slices.Contains(trainSeeds, s) {
			t.Errorf("evaluation seed %d is a training seed", s)
		}
	}
	if train := greedyReturns(t, net, params, trainSeeds); slices.Equal(train, want) {
		t.Errorf("training seeds give the evaluation's returns %v: the seeds do not tell them apart", train)
	}
}

// weightsTap is a subscriber of the broadcaster that keeps a copy of every
// version it is sent (and acknowledges it, as a runner does): the test's
// view of what the learner published.
type weightsTap struct{ seen chan *messages.Weights }

func (w *weightsTap) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(actor.NewPID(ctx.Self().Address, BroadcasterName), &messages.SubscribeWeights{Runner: RefOf(ctx.Self())})
	case *messages.Weights:
		w.seen <- &messages.Weights{Version: msg.GetVersion(), Params: slices.Clone(msg.GetParams())}
		ctx.Send(actor.NewPID(ctx.Self().Address, BroadcasterName), &messages.WeightsAck{Runner: RefOf(ctx.Self()), Version: msg.GetVersion(), Term: msg.GetTerm()})
	}
}

// TestBestCheckpointIsBestEvaluation: a real learner (trained on sample
// batches sent to it, publishing after every update), broadcaster and
// stats; evaluations of known versions go to the stats as the evaluator
// sends them. best.ckpt holds the weights of the version with the highest
// mean (a later tie replaces it: it was trained longer), with its version, env steps and
// mean; /status's best agrees.
func TestBestCheckpointIsBestEvaluation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishEvery, cfg.EvalEvery, cfg.BatchSize, cfg.MinReplaySize = 1, 1000, 8, 8
	sp, _ := envs.SpecOf("CartPole-v1")
	net := NetSpec(sp, cfg)
	dir := t.TempDir()
	sys := quietSystem()
	defer sys.Shutdown()
	m := NewMetrics()
	ld := LocalDirectory{Address: sys.Address()}
	log := discardLog()
	spawnRole(t, sys, StatsName, newStats(StopRule{TargetReturn: 1e9}, m, log, func() {}))
	spawnRole(t, sys, BroadcasterName, newBroadcaster(cfg, m, log))
	tap := &weightsTap{seen: make(chan *messages.Weights, 64)}
	spawnRole(t, sys, "tap", func() actor.Actor { return tap })
	time.Sleep(50 * time.Millisecond) // the tap subscribed before the first publication
	spawnRole(t, sys, LearnerName, newLearner(LearnerSpec{EnvID: "CartPole-v1", Net: net, Seed: 1, CheckpointDir: dir}, cfg, ld, m, log))

	// Versions as the tap saw them; an update per sample batch (no replay
	// runs: the test is the replay), so each batch is a new version.
	versions := map[uint64][]float32{}
	var order []uint64
	rng := rand.New(rand.NewPCG(5, 6))
	learner := actor.NewPID(sys.Address(), LearnerName)
	for id := uint64(1); len(order) < 4 && id < 30; id++ {
		n, d := cfg.BatchSize, net.Inputs
		b := &messages.SampleBatch{RequestId: id, Count: uint32(n), Actions: make([]uint32, n), Rewards: make([]float32, n), Discounts: make([]float32, n)}
		for range n * d {
			b.Observations = append(b.Observations, rng.Float32())
			b.NextObservations = append(b.NextObservations, rng.Float32())
		}
		for i := range n {
			b.Actions[i], b.Rewards[i], b.Discounts[i] = uint32(i%2), 1, 0.99
		}
		sys.Root.Send(learner, b)
		select {
		case w := <-tap.seen:
			if _, ok := versions[w.Version]; !ok {
				versions[w.Version] = w.Params
				order = append(order, w.Version)
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	if len(order) < 4 {
		t.Fatalf("the tap saw %d versions, want 4", len(order))
	}
	for i := 1; i < len(order); i++ {
		if slices.Equal(versions[order[i]], versions[order[0]]) {
			t.Fatalf("version %x has the weights of %x: updates changed nothing", order[i], order[0])
		}
	}
	means := []float64{20, 80, 50, 80} // the second is the best until the fourth ties it, later
	for i, v := range order[:4] {
		sys.Root.Send(ld.Stats(), &messages.EvalReport{Evaluator: "t", WeightsVersion: v, WeightsTerm: 1, EnvSteps: uint64(1000 * (i + 1)),
			MeanReturn: means[i], MinReturn: means[i], MaxReturn: means[i], Episodes: 10})
	}
	within(t, 5*time.Second, "four evaluations", func() bool { return m.Status().Evaluations == 4 })
	within(t, 5*time.Second, "best evaluation", func() bool { b := m.Status().BestEval; return b != nil && b.EnvSteps == 4000 })
	// The learner writes best.ckpt after the stats took the evaluation: on
	// a loaded machine the file can lag the status by a moment.
	var c *messages.Checkpoint
	within(t, 5*time.Second, "best.ckpt of the fourth evaluation", func() bool {
		var err error
		c, err = ReadBestCheckpoint(dir)
		return err == nil && c.GetEnvSteps() == 4000
	})
	if !slices.Equal(c.GetOnline(), versions[order[3]]) {
		t.Errorf("best.ckpt holds other weights than version %x, the best evaluated", order[3])
	}
	if c.GetWeightsVersion() != order[3] || c.GetEnvSteps() != 4000 || c.GetEvalMeanReturn() != 80 || !c.GetEvaluated() || c.GetEnv() != "CartPole-v1" {
		t.Errorf("best.ckpt: version %x env steps %d mean %g evaluated %v env %s, want %x 4000 80 true CartPole-v1",
			c.GetWeightsVersion(), c.GetEnvSteps(), c.GetEvalMeanReturn(), c.GetEvaluated(), c.GetEnv(), order[3])
	}
	if b := m.Status().BestEval; b.WeightsVersion != order[3] || b.Mean != 80 {
		t.Errorf("status best %+v, want version %x mean 80", b, order[3])
	}
	if v, ok := gauge(t, m, "qfleet_best_eval_mean_return"); !ok || v != 80 {
		t.Errorf("qfleet_best_eval_mean_return = %g (there: %v), want 80", v, ok)
	}
	if last := m.Status().LastEval; last.EnvSteps != 4000 {
		t.Errorf("status last evaluation at %d env steps, want 4000", last.EnvSteps)
	}
}
