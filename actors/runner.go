package actors

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
	"github.com/qfleet/qfleet/nets"
)

// RunnerSpec names one env runner and what it needs.
type RunnerSpec struct {
	Name  string
	Index int // position among this node's runners, 0-based; its first rung in the ε ladder
	Count int // runners of this node; the ladder's first size (a RunnerLadder message moves the rung)
	EnvID string
	Seed  uint64
	Net   nets.Spec
	// NewEnv makes the runner's vector of n envs (Config.EnvsPerRunner),
	// at its start and again after each restart; nil: envs.MakeVec of
	// EnvID (n Go envs, or an external env registered by id).
	NewEnv func(n int) (envs.VecEnv, error)
}

// runner is the env runner role: it steps a vector of EnvsPerRunner envs with
// an ε-greedy policy on its behaviour copy of the Q-network (one batched
// forward pass per step for the whole vector), turns each env's steps into
// n-step transitions, and streams them to the replay in batches. It never
// waits on a reply to keep stepping; it pauses only when the replay's credit
// is used up. It works in chunks of StepsPerChunk env steps (N per vector
// step) and re-sends itself a message between chunks, so weights and credits
// are taken in between.
//
// The runner keeps the envs, the policy, ε and the n-step returns (per env:
// runnerenvs.go); its sender (sender.go) owns the outbox and the replay's
// credit, its weights client (weightsclient.go) the subscription to the
// broadcaster and the weights acting.
type runner struct {
	spec    RunnerSpec
	cfg     Config
	dir     Directory
	metrics *Metrics
	log     *slog.Logger

	vec     envs.VecEnv
	obsSize int
	obs     []float32 // the observations to act on, env i's at [i·obsSize, (i+1)·obsSize): a copy, the VecEnv reuses its own
	slots   []envSlot // per env: n-step returns, ε rung, episode
	actions []int32
	explore []bool  // the env's action this step is a random one
	greedy  []int32 // GreedyBatch's actions
	sink    TransitionSink
	policy  *nets.Forward
	rng     *rand.Rand

	sender       *ExperienceSender
	weights      *WeightsClient
	idle         bool                      // no step chunk scheduled: waiting for credit
	checkPending bool                      // a creditCheck timer is set
	batch        *messages.ExperienceBatch // being built

	*runnerAccounting // survives restarts of the actor

	stopTick scheduler.CancelFunc
	linkSub  *eventstream.Subscription // lost links to other nodes (linkLost)

	steps, reported uint64 // env steps taken; steps already reported to the stats
	episodes        uint64 // episodes finished (this node's view)
	// The run's env steps as of the newest weights, and ours at that moment:
	// the ε schedule follows the whole cluster's steps.
	runStepsAtWeights, ownStepsAtWeights uint64
	reportedLocal                        uint64 // steps already added to this node's LocalRunnerSteps
}

// runnerAccounting is the part of a runner's state that outlives a restart
// of its actor: the batch sequence and the experience counters, so that the
// replay's gap detection (ExperienceBatch.sent_before) and the run's totals
// stay exact when the supervisor replaces a failed runner.
type runnerAccounting struct {
	ExperienceStream

	// The runner's rung in the ε ladder: spec.Index of spec.Count until a
	// RunnerLadder message places it in the cluster's ladder. Its N envs
	// take the rungs ladderIndex·N+i of ladderCount·N (envSlot.epsEnd).
	ladderIndex, ladderCount int
	reportedSent             uint64 // Sent already added to this node's runner metrics
}

// RunnerLadder tells a runner its rung in the Ape-X ε ladder: Index of Count
// runners, across every runner node of the cluster (Node.SetRunnerLadder).
// The runner keeps stepping; the ε it acts with follows from its next step.
// A local message (a node to its own runners): never sent between hosts.
type RunnerLadder struct {
	Index, Count int
}

// LadderEpsilon is the ε rung index of count ends at (Ape-X; a rung is one
// env of one runner):
// ε_i = end^(1 + α·i/(count−1)); end for a single runner or α = 0.
func LadderEpsilon(end, alpha float64, index, count int) float64 {
	if alpha <= 0 || count <= 1 {
		return end
	}
	return math.Pow(end, 1+alpha*float64(index)/float64(count-1))
}

// stepChunk is the runner's message to itself: take the next chunk of steps.
type stepChunk struct{}

func newRunner(spec RunnerSpec, cfg Config, dir Directory, m *Metrics, log *slog.Logger) actor.Producer {
	acct := &runnerAccounting{ExperienceStream: ExperienceStream{Incarnation: rand.Uint64() | 1}, ladderIndex: spec.Index, ladderCount: max(spec.Count, 1)}
	return func() actor.Actor {
		return &runner{spec: spec, cfg: cfg, dir: dir, metrics: m, log: log.With("role", "runner", "runner", spec.Name), runnerAccounting: acct}
	}
}

func (r *runner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if err := r.start(ctx); err != nil {
			r.fail(ctx, err)
		}
	case *stepChunk:
		r.stepChunk(ctx)
	case *messages.Credit:
		if !r.sender.Credit(msg) {
			return
		}
		r.send(ctx)
		r.resume(ctx)
	case *creditCheck:
		r.checkPending = false
		if r.idle {
			r.sender.RecoverCredit()
			r.send(ctx)
			r.resume(ctx)
			if r.idle {
				r.scheduleCreditCheck(ctx)
			}
		}
	case *messages.WeightsChunk:
		r.weights.Chunk(ctx, msg)
	case *messages.Weights:
		r.weights.Whole(ctx, msg)
	case *runnerTick:
		r.weights.Subscribe(ctx)
	case *RunnerLadder:
		r.setLadder(ctx, msg)
	case *actor.Stopping:
		r.release(ctx)
	case *linkLost:
		r.onLinkLost(ctx, msg.address)
	case *actor.Restarting:
		r.log.Warn("runner restarting with fresh envs")
		r.metrics.countRestart("runner", ctx.Self().GetId())
		r.settle(ctx)
		r.release(ctx)
	}
}

// fail ends the actor on an error (its envs failed, or could not be made):
// the panic lets the supervisor see the failure, apply its restart budget
// and start a fresh runner on the same stream.
func (r *runner) fail(ctx actor.Context, err error) {
	r.log.Error("runner failed: the supervisor restarts it", "err", err)
	r.metrics.roleFailed(ctx.Self().GetId(), err)
	panic(err)
}

// settle closes the books of an instance that is being replaced: the
// experience it built but never sent (the outbox, the batch being filled)
// is counted dropped, and its steps and counters go to the stats now, so
// that an instance that fails before its next progress report loses
// nothing from the run's totals.
func (r *runner) settle(ctx actor.Context) {
	n := uint64(0)
	if r.sender != nil {
		n += uint64(r.sender.Discard())
	}
	if r.batch != nil {
		n += uint64(r.batch.Count)
		r.batch = nil
	}
	if n > 0 {
		r.Dropped += n
		r.metrics.ExperienceDropped.Add(float64(n))
	}
	r.report(ctx)
}

// release lets go of what outlives the actor instance: the timer, the event
// subscription and the envs (an external env's process). A restarted
// runner's new instance makes its own; without this each restart would
// leave a repeating timer behind.
func (r *runner) release(ctx actor.Context) {
	if r.stopTick != nil {
		r.stopTick()
		r.stopTick = nil
	}
	if r.linkSub != nil {
		ctx.ActorSystem().EventStream.Unsubscribe(r.linkSub)
		r.linkSub = nil
	}
	r.closeEnvs()
}

// resume restarts stepping after a pause once the outbox has room.
func (r *runner) resume(ctx actor.Context) {
	if r.idle && r.sender.HasRoom() {
		r.idle = false
		ctx.Send(ctx.Self(), &stepChunk{})
	}
}

// start builds fresh envs and policy (also after a restart: a runner whose
// env failed gets new ones) and subscribes to weights.
func (r *runner) start(ctx actor.Context) error {
	r.policy = nets.NewForward(r.spec.Net)
	r.rng = rand.New(rand.NewPCG(r.spec.Seed, uint64(r.spec.Index)+1))
	if err := r.startEnvs(); err != nil {
		return fmt.Errorf("runner %s: %w", r.spec.Name, err)
	}
	r.sink = r.emit
	r.sender = NewExperienceSender(r.cfg, r.dir, r.metrics, r.log, &r.ExperienceStream)
	r.weights = NewWeightsClient(r.dir, r.metrics, r.log, r.spec.Net.NumParams(), r.applyWeights)
	r.weights.Name = r.spec.Name
	r.newBatch()
	r.weights.Subscribe(ctx)
	r.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(resubscribeAfter/4, resubscribeAfter/4, ctx.Self(), &runnerTick{})
	self, sys := ctx.Self(), ctx.ActorSystem()
	r.linkSub = sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*remote.EndpointTerminatedEvent); ok {
			sys.Root.Send(self, &linkLost{address: t.Address})
		}
	})
	ctx.Send(ctx.Self(), &stepChunk{})
	return nil
}

// linkLost: the stream to another node's address broke (protoactor's
// writer lost its connection, or the cluster reset it: the node failed,
// left, or came back after being declared failed).
type linkLost struct{ address string }

// onLinkLost acts on a broken stream at once instead of after timeouts.
// Delivery is at-most-once: whatever was queued on a broken stream is gone.
// To the replay, that is the experience in flight, whose credits will never
// come: write them off and restore the window now, instead of stalling
// CreditTimeout (after a frozen host continues, its batches of the last
// moments before the freeze die with the old stream). To the broadcaster,
// that may be this runner's subscription: subscribe again at once. The
// replay counts what the broken stream lost (gaps).
//
// At most once per CreditTimeout: protoactor's writer publishes the same
// event when it closes a stream itself, which removes its successor for
// the same address, whose close removes the next one. Such a chain runs
// for as long as messages keep creating new writers (a second after a
// replay host restarted: 30 writers). Sending a window into each would
// lose it; after the first, the credit timeout takes over.
func (r *runner) onLinkLost(ctx actor.Context, address string) {
	if r.sender.LinkLost(address) {
		r.send(ctx)
		r.resume(ctx)
	}
	r.weights.LinkLost(ctx, address)
}

// runnerTick drives re-subscription to the broadcaster.
type runnerTick struct{}

// newBatch starts the batch being built; emit hands it on at SendBatch
// transitions.
func (r *runner) newBatch() {
	n, d := r.cfg.SendBatch, r.obsSize
	r.batch = &messages.ExperienceBatch{
		Runner: r.spec.Name, ObsSize: uint32(d), FrameStack: uint32(max(r.cfg.FrameStack, 0)),
		Observations: make([]float32, 0, n*d), NextObservations: make([]float32, 0, n*d),
		Actions: make([]uint32, 0, n), Rewards: make([]float32, 0, n), Discounts: make([]float32, 0, n),
	}
	if r.cfg.Prioritized && r.cfg.RunnerPriorities {
		r.batch.Priorities = make([]float32, 0, n)
	}
}

// applyWeights loads weights newer than the acting ones (the weights client
// decides which) into the behaviour network, and takes the run's env steps
// they carry for the ε schedule.
func (r *runner) applyWeights(w *messages.Weights) error {
	if err := r.policy.SetParams(w.GetParams()); err != nil {
		return err
	}
	if w.GetEnvSteps() > r.runStepsAtWeights {
		r.runStepsAtWeights, r.ownStepsAtWeights = w.GetEnvSteps(), r.steps
	}
	return nil
}

// version is the (term, version) of the weights acting; zero before the
// first arrive.
func (r *runner) version() wire.Version { return r.weights.acting }

// setLadder moves the runner to another rung of the ε ladder (a change of
// the cluster's runner nodes) and reports at once, so that the stats show it.
func (r *runner) setLadder(ctx actor.Context, p *RunnerLadder) {
	if p.Count < 1 || p.Index < 0 || p.Index >= p.Count {
		r.log.Warn("ε ladder position refused", "index", p.Index, "count", p.Count)
		return
	}
	if p.Index == r.ladderIndex && p.Count == r.ladderCount {
		return
	}
	r.ladderIndex, r.ladderCount = p.Index, p.Count
	r.placeEnvs()
	r.log.Info("ε ladder position", "index", p.Index, "count", p.Count, "epsilon_end", r.ladderEnd())
	r.report(ctx)
}

// ladderEnd is the ε the runner's highest rung (its first env's) decays to:
// what it reports as its ladder ε.
func (r *runner) ladderEnd() float64 {
	n := r.envCount()
	return LadderEpsilon(r.cfg.EpsilonEnd, r.cfg.EpsilonLadder, r.ladderIndex*n, r.ladderCount*n)
}

// decay is how far the ε schedule has come (0 to 1): EpsilonDecaySteps env
// steps of all runners together. The run's count comes with the weights (as
// the learner's node knew it when publishing) plus this runner's steps
// since; before any weights, its own steps times the ladder's runner count.
func (r *runner) decay() float64 {
	if r.cfg.EpsilonDecaySteps == 0 {
		return 1
	}
	run := r.steps * uint64(r.ladderCount)
	if r.runStepsAtWeights > 0 {
		run = r.runStepsAtWeights + (r.steps - r.ownStepsAtWeights)
	}
	return min(1, float64(run)/float64(r.cfg.EpsilonDecaySteps))
}

// epsilonTo is the linear schedule from EpsilonStart to end (a rung's ε)
// at decay frac.
func (r *runner) epsilonTo(end, frac float64) float64 {
	if frac >= 1 {
		return end
	}
	return r.cfg.EpsilonStart + frac*(end-r.cfg.EpsilonStart)
}

// epsilon is the runner's reported ε: its first env's, the highest of its
// rungs.
func (r *runner) epsilon() float64 { return r.epsilonTo(r.ladderEnd(), r.decay()) }

func (r *runner) stepChunk(ctx actor.Context) {
	for n := 0; n < r.cfg.StepsPerChunk && r.sender.HasRoom(); n += len(r.slots) {
		if err := r.stepEnvs(ctx); err != nil {
			r.fail(ctx, fmt.Errorf("runner %s: %w", r.spec.Name, err))
		}
	}
	r.sender.RecoverCredit()
	r.send(ctx)
	if r.steps-r.reported >= uint64(r.cfg.ProgressEverySteps) {
		r.report(ctx)
	}
	if !r.sender.HasRoom() {
		// Outbox full and no credit: wait for credit (or its timeout).
		r.idle = true
		r.scheduleCreditCheck(ctx)
		return
	}
	ctx.Send(ctx.Self(), &stepChunk{})
}

// creditCheck is the runner's timer while it waits for credit.
type creditCheck struct{}

// maxCreditPoll bounds how long a runner waiting for credit takes to notice
// a new replay (the sender's trySend compares the directory's answer): a
// replay host restarted at the same address is seen within this, not
// CreditTimeout.
const maxCreditPoll = 250 * time.Millisecond

// scheduleCreditCheck sets the creditCheck timer unless one is set: one
// chain of checks at a time, however often the runner pauses and resumes.
func (r *runner) scheduleCreditCheck(ctx actor.Context) {
	if !r.checkPending {
		r.checkPending = true
		scheduler.NewTimerScheduler(ctx).SendOnce(min(r.cfg.CreditTimeout, maxCreditPoll), ctx.Self(), &creditCheck{})
	}
}

// enqueue hands the batch being built to the sender's outbox and starts a
// new one.
func (r *runner) enqueue() {
	if r.batch.Count == 0 {
		return
	}
	if r.cfg.Prioritized && r.cfg.RunnerPriorities {
		r.prioritize(r.batch)
	}
	r.sender.Enqueue(r.batch)
	r.newBatch()
}

// send hands the sender's outbox to the replay as far as credit allows,
// stamped with the weights version acting.
func (r *runner) send(ctx actor.Context) {
	r.sender.TrySend(ctx, r.version().Version)
}

// emit appends one finished transition to the batch being built, and hands
// the batch to the outbox when it is full: a vector step can finish many
// transitions at once (N envs, an episode's end), batches stay SendBatch.
func (r *runner) emit(obs []float32, action int, reward, discount float64, nextObs []float32) {
	r.batch.Append(obs, action, reward, discount, nextObs)
	if int(r.batch.Count) >= r.cfg.SendBatch {
		r.enqueue()
	}
}

// prioritize writes a full batch's initial priorities (Ape-X): each
// transition's |TD error| under the runner's own copy of the network,
// |r + γⁿ·(1−done)·max_a' Q(s',a') − Q(s,a)|, from two batched passes over
// the batch's observations and next observations (not two single passes
// per transition), with the weights acting when the batch is full. Before
// the first weights the net is untrained; the estimate is then 1, like a
// new transition's.
func (r *runner) prioritize(b *messages.ExperienceBatch) {
	n, k := int(b.Count), r.spec.Net.Outputs
	b.Priorities = b.Priorities[:0]
	if r.version() == (wire.Version{}) {
		for range n {
			b.Priorities = append(b.Priorities, 1)
		}
		return
	}
	q := r.policy.QBatch(b.Observations, n)
	for i := range n {
		b.Priorities = append(b.Priorities, q[i*k+int(b.Actions[i])]) // Q(s,a) until the next pass
	}
	q = r.policy.QBatch(b.NextObservations, n)
	for i := range n {
		best := slices.Max(q[i*k : (i+1)*k])
		td := float64(b.Rewards[i]) + float64(b.Discounts[i])*float64(best) - float64(b.Priorities[i])
		b.Priorities[i] = float32(math.Abs(td))
	}
}

func (r *runner) report(ctx actor.Context) {
	r.metrics.LocalRunnerSteps.Add(r.steps - r.reportedLocal)
	r.reportedLocal = r.steps
	now := time.Now()
	lagPubs, lagSecs := r.weights.Lag(now)
	r.metrics.localRunner(r.spec.Name, RunnerStatus{
		EnvSteps: r.steps, Episodes: r.episodes, WeightsVersion: r.version().Version, WeightsTerm: r.version().Term,
		Epsilon: r.epsilon(), ExperienceSent: r.Sent, ExperienceDropped: r.Dropped, LastReport: now,
		LadderIndex: r.ladderIndex, LadderCount: r.ladderCount, LadderEpsilon: r.ladderEnd(),
		WeightsLagPublications: lagPubs, WeightsLagSeconds: lagSecs, WeightsAgeSeconds: r.weights.Age(now),
	}, r.Sent-r.reportedSent)
	r.reportedSent = r.Sent
	stats := r.dir.Stats()
	if stats == nil {
		return // reported once the stats are reachable: the deltas add up
	}
	ctx.Send(stats, &messages.RunnerProgress{
		Runner: r.spec.Name, EnvSteps: r.steps - r.reported, WeightsVersion: r.version().Version, WeightsTerm: r.version().Term,
		Epsilon: r.epsilon(), ExperienceSent: r.Sent, ExperienceDropped: r.Dropped, RunnerIncarnation: r.Incarnation,
		LadderIndex: uint32(r.ladderIndex), LadderCount: uint32(r.ladderCount), LadderEpsilon: r.ladderEnd(),
	})
	r.reported = r.steps
}
