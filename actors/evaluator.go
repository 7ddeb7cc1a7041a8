package actors

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// EvaluatorSpec is what the evaluator role needs besides the config.
type EvaluatorSpec struct {
	Name  string // reported with each evaluation
	EnvID string
	Seed  uint64 // the run's seed: the episodes' seeds are EpisodeSeeds(EvalSeed(Seed), ...)
	Net   nets.Spec
	// NewEnv makes the evaluator's env; nil: envs.Make(EnvID), a Go env or
	// an external env registered by id.
	NewEnv func() (envs.Env, error)
}

// evalSeedStream separates the evaluator's episode seeds from training's:
// runners draw theirs from PCG(run seed·1,000,003 + i, i+1), the evaluator
// from PCG(run seed ^ evalSeedStream, 1) ("evaluate" in ASCII).
const evalSeedStream = 0x6576616c75617465

// EvalSeed is the seed of a run's evaluation episodes: the same at every
// evaluation, so that two evaluations differ only by the weights.
// 'qfleet eval --seed EvalSeed(run seed)' plays the same starts.
func EvalSeed(runSeed uint64) uint64 { return runSeed ^ evalSeedStream }

// EpisodeSeeds are the env seeds of n evaluation episodes under seed: the
// evaluator's (with EvalSeed) and Policy.Evaluate's.
func EpisodeSeeds(seed uint64, n int) []int64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]int64, n)
	for i := range out {
		out[i] = r.Int64()
	}
	return out
}

// evaluator is the evaluator role (Stable-Baselines3's EvalCallback): it
// takes the newest weights from the broadcaster as a runner does (its
// WeightsClient), and every EvalEvery env steps of the run plays
// EvalEpisodes episodes at EvalEpsilon (greedy by default) on an env of its
// own, with the same seeds each time, and reports their returns to the
// stats as an EvalReport.
//
// It learns the run's env steps from the weights: each Weights carries the
// run's env steps as the learner's node counted them when it published
// (what runners drive their ε schedule by). That needs no message of its
// own, and the weights evaluated are by construction those of that moment;
// publications come every publish_every updates, so an evaluation starts
// at most a publication late.
//
// One episode per mailbox turn: new weights, the resubscription tick and a
// stop are taken between episodes, while the weights under evaluation stay
// those it started with.
type evaluator struct {
	spec    EvaluatorSpec
	cfg     Config
	dir     Directory
	metrics *Metrics
	log     *slog.Logger

	env     envs.Env
	limit   int // steps per episode: the env's time limit, or DefaultEvalMaxSteps
	seeds   []int64
	weights *WeightsClient
	newest  *messages.Weights // the newest taken (params copied); nil before the first
	nextAt  uint64            // run env steps at which the next evaluation is due
	run     *evalRun          // the evaluation in progress; nil between them

	stopTick scheduler.CancelFunc
	linkSub  *eventstream.Subscription
}

// evalRun is one evaluation in progress.
type evalRun struct {
	of      *messages.Weights // the weights evaluated
	steps   uint64            // the run's env steps that triggered it
	policy  *nets.Forward
	rng     *rand.Rand // ε draws, the same stream at every evaluation
	returns []float64
	started time.Time
}

// evalEpisode is the evaluator's message to itself: play the next episode.
type evalEpisode struct{}

// evaluatorTick drives resubscription to the broadcaster.
type evaluatorTick struct{}

func newEvaluator(spec EvaluatorSpec, cfg Config, dir Directory, m *Metrics, log *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &evaluator{spec: spec, cfg: cfg, dir: dir, metrics: m, log: log.With("role", "evaluator")}
	}
}

func (e *evaluator) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if err := e.start(ctx); err != nil {
			e.fail(ctx, err)
		}
	case *messages.Weights:
		e.weights.Whole(ctx, msg)
		e.maybeStart(ctx)
	case *messages.WeightsChunk:
		e.weights.Chunk(ctx, msg)
		e.maybeStart(ctx)
	case *evalEpisode:
		e.episode(ctx)
	case *evaluatorTick:
		e.weights.Subscribe(ctx)
	case *linkLost:
		e.weights.LinkLost(ctx, msg.address)
	case *actor.Restarting:
		e.log.Warn("evaluator restarting with a fresh env")
		e.metrics.countRestart("evaluator", ctx.Self().GetId())
		e.release(ctx)
	case *actor.Stopping:
		e.release(ctx)
	}
}

// start makes the env and subscribes to the weights. The first evaluation
// is due at EvalEvery env steps (none of the untrained net).
func (e *evaluator) start(ctx actor.Context) error {
	newEnv := e.spec.NewEnv
	if newEnv == nil {
		id := e.spec.EnvID
		newEnv = func() (envs.Env, error) { return envs.Make(id) }
	}
	env, err := newEnv()
	if err == nil {
		env, err = envs.StackEnv(env, e.cfg.FrameStack) // the stacks the runners act on
	}
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}
	e.env = env
	sp := env.Spec()
	if sp.ObsSize() != e.spec.Net.Inputs {
		return fmt.Errorf("evaluator: env %s: observations of %d values, the network takes %d", sp.ID, sp.ObsSize(), e.spec.Net.Inputs)
	}
	e.limit = sp.MaxEpisodeSteps
	if e.limit <= 0 {
		e.limit = DefaultEvalMaxSteps
	}
	e.seeds = EpisodeSeeds(EvalSeed(e.spec.Seed), e.cfg.EvalEpisodes)
	e.nextAt = uint64(e.cfg.EvalEvery)
	e.weights = NewWeightsClient(e.dir, e.metrics, e.log, e.spec.Net.NumParams(), e.take)
	e.weights.Name = e.spec.Name
	e.weights.Subscribe(ctx)
	e.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(resubscribeAfter/4, resubscribeAfter/4, ctx.Self(), &evaluatorTick{})
	self, sys := ctx.Self(), ctx.ActorSystem()
	e.linkSub = sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*remote.EndpointTerminatedEvent); ok {
			sys.Root.Send(self, &linkLost{address: t.Address})
		}
	})
	return nil
}

// take keeps weights newer than the newest (the weights client decides
// which) as a copy: the message's parameters may be shared with the
// runners of this node.
func (e *evaluator) take(w *messages.Weights) error {
	if len(w.GetParams()) != e.spec.Net.NumParams() {
		return fmt.Errorf("weights of %d params, the evaluator's network has %d", len(w.GetParams()), e.spec.Net.NumParams())
	}
	var buf []float32
	if e.newest != nil && (e.run == nil || e.run.of != e.newest) {
		buf = e.newest.Params[:0] // not under evaluation: reuse its array
	}
	e.newest = &messages.Weights{Version: w.GetVersion(), Term: w.GetTerm(), LearnerUpdates: w.GetLearnerUpdates(), EnvSteps: w.GetEnvSteps(),
		Params: append(buf, w.GetParams()...)}
	return nil
}

// maybeStart starts an evaluation of the newest weights when the run has
// reached the next multiple of EvalEvery and none is in progress. Steps
// passed while one ran (or while no weights came) are not made up for: one
// evaluation per due point reached, with the weights of that moment.
func (e *evaluator) maybeStart(ctx actor.Context) {
	w := e.newest
	if e.run != nil || w == nil || w.GetEnvSteps() < e.nextAt {
		return
	}
	every := uint64(e.cfg.EvalEvery)
	e.nextAt = (w.GetEnvSteps()/every + 1) * every
	policy := nets.NewForward(e.spec.Net)
	if err := policy.SetParams(w.GetParams()); err != nil {
		e.log.Error("evaluation skipped", "err", err)
		return
	}
	e.run = &evalRun{of: w, steps: w.GetEnvSteps(), policy: policy, started: time.Now(),
		rng: rand.New(rand.NewPCG(EvalSeed(e.spec.Seed), 2))}
	ctx.Send(ctx.Self(), &evalEpisode{})
}

// episode plays the next episode of the evaluation in progress, and
// reports the evaluation after its last.
func (e *evaluator) episode(ctx actor.Context) {
	r := e.run
	if r == nil {
		return
	}
	ret := PlayEpisode(e.env, r.policy, e.seeds[len(r.returns)], e.cfg.EvalEpsilon, r.rng, e.limit, nil).Return
	if err := envs.Err(e.env); err != nil {
		e.fail(ctx, fmt.Errorf("evaluator: env: %w", err))
	}
	r.returns = append(r.returns, ret)
	if len(r.returns) < len(e.seeds) {
		ctx.Send(ctx.Self(), &evalEpisode{})
		return
	}
	e.run = nil
	rep := evalReport(e.spec.Name, r, time.Since(r.started))
	e.log.Info("evaluation", "env_steps", rep.GetEnvSteps(), "version", rep.GetWeightsVersion(), "mean", rep.GetMeanReturn(), "std", rep.GetStdReturn(), "seconds", rep.GetWallSeconds())
	if stats := e.dir.Stats(); stats != nil {
		ctx.Send(stats, rep)
	} else {
		e.log.Warn("evaluation not reported: no stats reachable", "env_steps", rep.GetEnvSteps())
	}
	e.maybeStart(ctx) // the run may be past the next due point already
}

// evalReport summarizes an ended evaluation.
func evalReport(name string, r *evalRun, took time.Duration) *messages.EvalReport {
	mean, std, lo, hi := ReturnStats(r.returns)
	return &messages.EvalReport{
		Evaluator: name, WeightsVersion: r.of.GetVersion(), WeightsTerm: r.of.GetTerm(), LearnerUpdates: r.of.GetLearnerUpdates(),
		EnvSteps: r.steps, WeightsEnvSteps: r.of.GetEnvSteps(), MeanReturn: mean, StdReturn: std, MinReturn: lo, MaxReturn: hi,
		Episodes: uint32(len(r.returns)), WallSeconds: took.Seconds(),
	}
}

// ReturnStats are the mean, population standard deviation, min and max of
// xs (at least one): the evaluator's and 'qfleet eval's (EvalResult.Summarize).
func ReturnStats(xs []float64) (mean, std, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		mean += x
		lo, hi = min(lo, x), max(hi, x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs))), lo, hi
}

// PlayedEpisode is one episode PlayEpisode played.
type PlayedEpisode struct {
	Return    float64 // undiscounted
	Length    int     // env steps
	Truncated bool    // by the env's time limit or by PlayEpisode's limit
}

// PlayEpisode plays one episode of env from seed with f's greedy actions, a
// uniformly random one with probability eps (drawn from rng), for at most
// limit steps: the evaluator's episodes and 'qfleet eval's. observe, when
// not nil, sees every observation, the first and the last included.
func PlayEpisode(env envs.Env, f *nets.Forward, seed int64, eps float64, rng *rand.Rand, limit int, observe func(obs []float32)) PlayedEpisode {
	var ep PlayedEpisode
	obs := env.Reset(seed)
	nA := env.Spec().NumActions
	for {
		if observe != nil {
			observe(obs)
		}
		if ep.Length >= limit {
			ep.Truncated = true
			return ep
		}
		a := f.Greedy(obs)
		if eps > 0 && rng.Float64() < eps {
			a = rng.IntN(nA)
		}
		var r float64
		var term, trunc bool
		obs, r, term, trunc = env.Step(a)
		ep.Return += r
		ep.Length++
		if term || trunc {
			if observe != nil {
				observe(obs)
			}
			ep.Truncated = trunc && !term
			return ep
		}
	}
}

// fail ends the actor on an env error: the supervisor restarts it within
// the restart budget, with a fresh env.
func (e *evaluator) fail(ctx actor.Context, err error) {
	e.log.Error("evaluator failed: the supervisor restarts it", "err", err)
	e.metrics.roleFailed(ctx.Self().GetId(), err)
	panic(err)
}

// release lets go of the timer, the event subscription and the env (an
// external env's process).
func (e *evaluator) release(ctx actor.Context) {
	if e.stopTick != nil {
		e.stopTick()
		e.stopTick = nil
	}
	if e.linkSub != nil {
		ctx.ActorSystem().EventStream.Unsubscribe(e.linkSub)
		e.linkSub = nil
	}
	if e.env != nil {
		_ = envs.Close(e.env)
		e.env = nil
	}
	e.run = nil
}
