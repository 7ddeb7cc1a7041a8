package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// LearnerSpec is what the learner needs besides the hyper-parameters.
type LearnerSpec struct {
	EnvID           string
	Net             nets.Spec
	Seed            uint64
	CheckpointDir   string        // "" disables checkpoints
	Resume          bool          // start from the newest checkpoint in CheckpointDir
	CheckpointEvery time.Duration // periodic checkpoints; 0 only at the end
}

// versionOf is the published weights version: the term in the high 24 bits,
// the publication count within the term in the low 40, so that versions never
// go backwards across learner restarts (each restart is a new term).
func versionOf(term, n uint64) uint64 { return term<<40 | n&countBits }

// countBits masks the publication count of a version.
const countBits = 1<<40 - 1

// SplitVersion is versionOf undone: a version's learner term and its
// publication count within the term.
func SplitVersion(v uint64) (term, publication uint64) { return v >> 40, v & countBits }

// SaveCheckpoint asks the learner to write its checkpoint now; the learner
// responds with a *CheckpointSaved.
type SaveCheckpoint struct{}

// CheckpointSaved answers SaveCheckpoint. Err is nil on success.
type CheckpointSaved struct {
	Path string
	Err  error
}

// learner is the learner role: it keeps PrefetchBatches sample requests
// outstanding at the replay so that a batch is waiting when an update ends,
// trains the online network on each batch, syncs the target network, and
// publishes weights to the broadcaster every PublishEvery updates.
type learner struct {
	spec    LearnerSpec
	cfg     Config
	dir     Directory
	metrics *Metrics
	log     *slog.Logger

	trainer        *nets.Trainer
	batch          nets.Batch
	actions        []int32
	nextReq        uint64
	pending        map[uint64]time.Time // sample requests outstanding → when last sent
	stopTick       scheduler.CancelFunc
	updates        uint64
	version        uint64 // last published, versionOf(term, published)
	published      uint64 // publications in this term
	term           uint64
	lastCheckpoint time.Time
	firstStart     bool // the process's first learner, not one the supervisor restarted
	// best: the last publications and the best evaluated one (best.go);
	// shared by the learner instances of one process, so that a restart
	// keeps the best.
	best *bestKeeper
}

func newLearner(spec LearnerSpec, cfg Config, dir Directory, m *Metrics, log *slog.Logger) actor.Producer {
	starts := 0
	best := newBestKeeper(spec.Net.NumParams())
	return func() actor.Actor {
		// After a crash the supervisor builds a fresh learner: it resumes
		// from this run's last checkpoint whatever Resume says.
		s := spec
		s.Resume = spec.Resume || starts > 0
		starts++
		return &learner{spec: s, cfg: cfg, dir: dir, metrics: m, log: log.With("role", "learner"), firstStart: starts == 1, best: best}
	}
}

func (l *learner) trainConfig() nets.TrainConfig {
	tc := nets.DefaultTrainConfig()
	tc.BatchSize = l.cfg.BatchSize
	tc.LearningRate = l.cfg.LearningRate
	tc.MaxGradNorm = l.cfg.MaxGradNorm
	tc.DoubleDQN = l.cfg.DoubleDQN
	return tc
}

func (l *learner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Restarting:
		l.log.Warn("learner restarting")
		l.metrics.countRestart("learner", ctx.Self().GetId())
	case *actor.Started:
		if err := l.start(ctx); err != nil {
			if errors.Is(err, ErrResumeMisfit) || errors.Is(err, ErrCorruptCheckpoint) {
				// A restart reads the same files and fails the same way: ten
				// of them would only keep the run going without a learner for
				// the restart window. Stopped, the learner is listed in the
				// stopped roles, which ends the command's run.
				l.log.Error("learner cannot start, stopped: a restart would fail the same way", "err", err)
				ctx.Stop(ctx.Self())
				return
			}
			panic(err)
		}
	case *messages.SampleBatch:
		if _, ok := l.pending[msg.GetRequestId()]; !ok {
			return // a duplicate answer to a request that was re-sent
		}
		delete(l.pending, msg.GetRequestId())
		if err := l.update(msg); err != nil {
			// A malformed batch is the replay's bug or a hostile peer: log it
			// and keep training on the next one.
			l.log.Error("update skipped", "err", err)
		} else {
			if l.cfg.Prioritized {
				l.sendPriorities(ctx, msg.GetKeys())
			}
			if l.updates%uint64(l.cfg.PublishEvery) == 0 {
				l.publish(ctx)
			}
		}
		l.request(ctx)
	case *learnerTick:
		l.resendStale(ctx)
		if l.spec.CheckpointDir != "" && l.spec.CheckpointEvery > 0 && time.Since(l.lastCheckpoint) >= l.spec.CheckpointEvery {
			if _, err := l.saveCheckpoint(); err != nil {
				// Training goes on; the previous checkpoint stays (writes
				// are atomic). The next try is an interval away, not a tick:
				// a full disk stays full a while, and one line per interval
				// says so without flooding the log.
				l.lastCheckpoint = time.Now()
				l.log.Error("periodic checkpoint failed: training goes on, the previous checkpoint stays", "err", err, "retry_in", l.spec.CheckpointEvery)
			}
		}
	case *messages.EvalReport:
		l.evaluated(msg)
	case *syncLearner:
		ctx.Respond(msg)
	case *SaveCheckpoint:
		path, err := l.saveCheckpoint()
		ctx.Respond(&CheckpointSaved{Path: path, Err: err})
	case *actor.Stopping:
		if l.stopTick != nil {
			l.stopTick()
		}
		if l.trainer != nil {
			l.trainer.Close()
		}
	}
}

func (l *learner) start(ctx actor.Context) error {
	rng := rand.New(rand.NewPCG(l.spec.Seed, 0x6c6561726e6572))
	t, err := nets.NewTrainer(l.spec.Net, l.trainConfig(), nets.InitParams(l.spec.Net, rng))
	if err != nil {
		return fmt.Errorf("learner: %w", err)
	}
	l.trainer = t
	l.term = 1
	if l.spec.Resume && l.spec.CheckpointDir != "" {
		if err := l.restore(); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("learner: resume: %w", err)
		}
		if l.best.best == nil {
			l.restoreBest()
		}
	}
	l.log.Info("learner started", "params", l.spec.Net.NumParams(), "batch", l.cfg.BatchSize, "term", l.term, "updates", l.updates)
	l.pending = map[uint64]time.Time{}
	l.publish(ctx)
	for i := 0; i < l.cfg.PrefetchBatches; i++ {
		l.request(ctx)
	}
	l.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(time.Second, time.Second, ctx.Self(), &learnerTick{})
	l.lastCheckpoint = time.Now()
	return nil
}

// restore loads the newest good checkpoint: parameters, optimizer state and
// counters; the term goes one up, so every version published from now on is
// newer than any published before the restart.
func (l *learner) restore() error {
	c, path, skipped, err := readLatestCheckpoint(l.spec.CheckpointDir)
	for _, e := range skipped {
		l.log.Error("corrupt checkpoint skipped", "err", e)
	}
	if err != nil {
		return err
	}
	if err := checkpointFits(c, path, l.spec.EnvID, l.spec.Net); err != nil {
		return err
	}
	if err := l.trainer.Restore(nets.TrainerState{Online: c.Online, Target: c.Target, AdamM: c.AdamM, AdamV: c.AdamV, AdamStep: c.AdamStep}); err != nil {
		return fmt.Errorf("checkpoint %s does not fit the network: %w", path, misfit(err.Error()))
	}
	l.updates, l.term, l.published = c.GetLearnerUpdates(), c.GetTerm()+1, 0
	if l.firstStart {
		// The run's env steps before this process: the exploration position
		// (ε follows the run's steps, carried with the weights) continues
		// instead of starting over. A restarted learner's process already
		// counts them.
		l.metrics.setEnvStepsBase(c.GetEnvSteps())
	}
	// The counter must match the resumed count: a new process adds all of
	// it; after an in-process restart it already holds them (and more).
	if counted := l.metrics.Status().LearnerUpdates; l.updates > counted {
		l.metrics.LearnerUpdates.Add(float64(l.updates - counted))
	}
	l.metrics.update(func(s *RunStatus) { s.LearnerUpdates = l.updates })
	l.log.Warn("learner resumed from checkpoint", "updates", l.updates, "term", l.term, "previous_version", c.GetWeightsVersion(), "env_steps", c.GetEnvSteps())
	return nil
}

// learnerTick drives re-sending of sample requests that went unanswered.
type learnerTick struct{}

// requestTimeout is how long a sample request may go unanswered before it
// is sent again (same id, so the replay and the learner drop duplicates). The
// rate limiter may hold a request for long; a re-send costs one message. It
// matters when the replay restarts or a message is lost between hosts.
const requestTimeout = 5 * time.Second

func (l *learner) request(ctx actor.Context) {
	l.nextReq++
	l.pending[l.nextReq] = time.Time{}
	l.sendRequest(ctx, l.nextReq)
}

func (l *learner) sendRequest(ctx actor.Context, id uint64) {
	replay := l.dir.Replay()
	if replay == nil {
		return // no replay in the cluster yet: the tick sends it later
	}
	l.pending[id] = time.Now()
	ctx.Send(replay, &messages.SampleRequest{RequestId: id, BatchSize: uint32(l.cfg.BatchSize), ReplyTo: RefOf(ctx.Self())})
}

func (l *learner) resendStale(ctx actor.Context) {
	for id, at := range l.pending {
		if time.Since(at) > requestTimeout {
			l.sendRequest(ctx, id)
		}
	}
}

// update runs one gradient step on a sampled batch.
func (l *learner) update(s *messages.SampleBatch) error {
	n := int(s.GetCount())
	if n != l.cfg.BatchSize || len(s.GetActions()) != n {
		return fmt.Errorf("sample batch of %d transitions, learner needs %d", n, l.cfg.BatchSize)
	}
	l.actions = resize(l.actions, n)
	for i, a := range s.Actions {
		l.actions[i] = int32(a)
	}
	l.batch = nets.Batch{
		Size: n, Obs: s.Observations, Actions: l.actions, Rewards: s.Rewards,
		Discounts: s.Discounts, NextObs: s.NextObservations, Weights: s.Weights,
	}
	if len(l.batch.Weights) == 0 {
		l.batch.Weights = nil
	}
	if l.cfg.LearningRateDecay > 0 {
		l.trainer.SetLearningRate(learningRate(l.cfg, l.updates))
	}
	st, err := l.trainer.Update(&l.batch)
	if err != nil {
		return err
	}
	l.updates++
	l.metrics.LearnerUpdates.Inc()
	l.metrics.LearnerLoss.Set(float64(st.Loss))
	l.metrics.update(func(s *RunStatus) { s.LearnerUpdates = l.updates })
	if l.cfg.TargetTau > 0 {
		l.trainer.SoftUpdateTarget(l.cfg.TargetTau)
	} else if l.updates%uint64(l.cfg.TargetUpdatePeriod) == 0 {
		l.trainer.SyncTarget()
	}
	return nil
}

// sendPriorities gives the replay the new |TD| of the transitions just
// trained on (prioritized replay); the replay skips keys overwritten since.
func (l *learner) sendPriorities(ctx actor.Context, keys []uint64) {
	replay := l.dir.Replay()
	if replay == nil || len(keys) == 0 {
		return
	}
	td := l.trainer.TDErrors()
	ctx.Send(replay, &messages.PriorityUpdate{Keys: append([]uint64(nil), keys...), Priorities: append([]float32(nil), td...)})
}

// publish sends a copy of the online parameters to the broadcaster.
func (l *learner) publish(ctx actor.Context) {
	l.published++
	l.version = versionOf(l.term, l.published)
	w := &messages.Weights{Version: l.version, Term: l.term, Params: l.trainer.CopyParams(nil), LearnerUpdates: l.updates,
		EnvSteps: l.metrics.EnvStepsTotal()}
	if b := l.dir.Broadcaster(); b != nil {
		ctx.Send(b, w) // with no broadcaster yet, the next publication reaches it
	}
	if l.cfg.EvalEvery > 0 {
		l.best.hold(w)
	}
	l.metrics.setWeightsVersion(l.version)
	l.metrics.update(func(s *RunStatus) { s.LearnerUpdates = l.updates; s.WeightsVersion = l.version })
}

func (l *learner) saveCheckpoint() (string, error) {
	if l.spec.CheckpointDir == "" {
		return "", fmt.Errorf("learner: no checkpoint directory configured")
	}
	st := l.trainer.State()
	c := &messages.Checkpoint{
		Env: l.spec.EnvID, Layers: specLayers(l.spec.Net), LayerNorm: l.spec.Net.LayerNorm, Online: st.Online, Target: st.Target,
		AdamM: st.AdamM, AdamV: st.AdamV, AdamStep: st.AdamStep,
		LearnerUpdates: l.updates, WeightsVersion: l.version, Term: l.term,
		EnvSteps:   l.metrics.EnvStepsTotal(),
		UnixMillis: time.Now().UnixMilli(),
	}
	if err := WriteCheckpoint(l.spec.CheckpointDir, c); err != nil {
		l.metrics.CheckpointFailures.Inc()
		return "", err
	}
	l.lastCheckpoint = time.Now()
	return l.spec.CheckpointDir + "/" + CheckpointFile, nil
}
