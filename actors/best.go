package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

// BestCheckpointFile is the learner's best-evaluated weights in the
// checkpoint directory: a Checkpoint (the format of learner.ckpt, online
// parameters only) with evaluated set, eval_mean_return the evaluation's
// mean and env_steps the run's env steps it was triggered at. One file,
// replaced atomically by a better one.
const BestCheckpointFile = "best.ckpt"

// bestRingBytes bounds the memory of the weights the learner holds for the
// best checkpoint; bestRingMax and bestRingMin bound their count.
const (
	bestRingBytes = 16 << 20
	bestRingMax   = 1024
	bestRingMin   = 4
)

// bestKeeper holds the last published weights, so that when an evaluation
// of version V comes back (the evaluator played episodes meanwhile, while
// the learner went on publishing) V's parameters are still at hand, and the
// best evaluation so far with its parameters. The ring holds the published
// messages themselves: their parameters are a copy made for publishing that
// no one changes, so holding one costs no copy, only keeping it from the
// collector. Its length covers a few seconds of publications (at CartPole's
// 200 a second, 1024 of them; a MinAtar net's 0.8 MB, 20).
type bestKeeper struct {
	ring   []*messages.Weights // oldest first
	size   int
	best   *EvalStatus // nil before the first evaluation of a held version
	params []float32   // best's weights
}

func newBestKeeper(numParams int) *bestKeeper {
	n := bestRingBytes / max(4*numParams, 1)
	return &bestKeeper{size: min(max(n, bestRingMin), bestRingMax)}
}

// hold keeps w as the newest publication.
func (b *bestKeeper) hold(w *messages.Weights) {
	if len(b.ring) == b.size {
		copy(b.ring, b.ring[1:])
		b.ring = b.ring[:len(b.ring)-1]
	}
	b.ring = append(b.ring, w)
}

// find is the held publication of version, or nil.
func (b *bestKeeper) find(version uint64) *messages.Weights {
	for i := len(b.ring) - 1; i >= 0; i-- {
		if b.ring[i].GetVersion() == version {
			return b.ring[i]
		}
	}
	return nil
}

// evaluated takes an evaluation report: a held version whose mean is at
// least the best so far becomes the best. A tie goes to the later version:
// on envs with a capped return (CartPole's 500) most evaluations of a good
// agent tie at the cap, and the later weights have trained longer (at a
// smaller step size, with a decay), so they hold up better over more
// episodes than the first that happened to score the cap on ten. It
// returns the publication when it did, and whether the version was held.
func (b *bestKeeper) evaluated(e EvalStatus) (best *messages.Weights, held bool) {
	w := b.find(e.WeightsVersion)
	if w == nil {
		return nil, false
	}
	if b.best != nil && e.Mean < b.best.Mean {
		return nil, true
	}
	b.best, b.params = &e, w.GetParams()
	return w, true
}

// evaluated is the learner's side of an evaluation: a new best is kept, in
// memory always and as best.ckpt when checkpoints are on.
func (l *learner) evaluated(r *messages.EvalReport) {
	e := EvalStatusOf(r)
	w, held := l.best.evaluated(e)
	if !held {
		l.log.Warn("evaluated weights no longer held: the evaluation cannot become the best checkpoint",
			"version", e.WeightsVersion, "mean", e.Mean, "held", len(l.best.ring))
		return
	}
	if w == nil {
		return
	}
	l.metrics.recordBest(e)
	l.log.Info("best evaluation so far", "version", e.WeightsVersion, "mean", e.Mean, "env_steps", e.EnvSteps)
	if l.spec.CheckpointDir == "" {
		return
	}
	c := &messages.Checkpoint{
		Env: l.spec.EnvID, Layers: specLayers(l.spec.Net), LayerNorm: l.spec.Net.LayerNorm, Online: w.GetParams(),
		LearnerUpdates: e.LearnerUpdates, WeightsVersion: e.WeightsVersion, Term: e.WeightsVersion >> 40,
		EnvSteps: e.EnvSteps, UnixMillis: time.Now().UnixMilli(), EvalMeanReturn: e.Mean, Evaluated: true,
	}
	if err := WriteBestCheckpoint(l.spec.CheckpointDir, c); err != nil {
		l.metrics.CheckpointFailures.Inc()
		l.log.Error("best checkpoint not written: the previous one stays", "err", err)
	}
}

// syncLearner is answered by the learner as it comes: what was in its
// mailbox before (an evaluation the stats handed on) has been handled.
type syncLearner struct{}

// SyncLearner waits until the learner on this node has handled what was
// sent to it before (the evaluation that ended the run, forwarded by the
// stats), so that the best evaluation read next includes it.
func (d *Node) SyncLearner(timeout time.Duration) error {
	_, err := d.System.Root.RequestFuture(actor.NewPID(d.System.Address(), LearnerName), &syncLearner{}, timeout).Result()
	return err
}

// restoreBest takes a resumed run's best.ckpt as the best so far, so that
// only a better evaluation replaces it. A missing or unreadable one is no
// best; one of another net is left alone (a new run's best replaces it).
func (l *learner) restoreBest() {
	c, err := ReadBestCheckpoint(l.spec.CheckpointDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("best checkpoint unreadable: the next evaluation replaces it", "err", err)
		}
		return
	}
	if c.GetEnv() != l.spec.EnvID || len(c.GetOnline()) != l.spec.Net.NumParams() || c.GetLayerNorm() != l.spec.Net.LayerNorm {
		return
	}
	e := EvalStatus{WeightsVersion: c.GetWeightsVersion(), LearnerUpdates: c.GetLearnerUpdates(), EnvSteps: c.GetEnvSteps(), Mean: c.GetEvalMeanReturn()}
	l.best.best, l.best.params = &e, c.GetOnline()
	l.metrics.recordBest(e)
}

// WriteBestCheckpoint writes c to dir/best.ckpt atomically, as
// WriteCheckpoint writes learner.ckpt (temp file, fsync, rename), replacing
// the previous best.
func WriteBestCheckpoint(dir string, c *messages.Checkpoint) error {
	payload, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("best checkpoint: encode: %w", err)
	}
	if err := writeDurable(dir, BestCheckpointFile, checkpointMagic, payload, 1); err != nil {
		return fmt.Errorf("best checkpoint: %w", err)
	}
	return nil
}

// ReadBestCheckpoint loads dir/best.ckpt and verifies its checksum; the
// error wraps os.ErrNotExist when there is none.
func ReadBestCheckpoint(dir string) (*messages.Checkpoint, error) {
	path := filepath.Join(dir, BestCheckpointFile)
	payload, err := readDurable(path, checkpointMagic)
	if err != nil {
		return nil, fmt.Errorf("best checkpoint: %w", err)
	}
	return decodeCheckpoint(path, payload)
}
