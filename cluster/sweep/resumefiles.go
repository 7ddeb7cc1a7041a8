package sweep

// A trial's checkpoint files as they travel between a worker and the
// coordinator: ASHA's promotion form pauses a trial at a rung and may
// continue it later on another node, from the checkpoint (and replay
// snapshot) its last segment wrote.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/messages"
)

// trialCheckpoints is the checkpoint directory in a trial's run directory.
const trialCheckpoints = "checkpoints"

// Size limits of the files a result or a StartTrial carries. A remote
// message travels in a batch of messages under the remote's receive limit
// (cluster.MaxBatchBytes, 64 MiB), and a worker repeats a result until it is
// acknowledged, so a result stays well under half of that: a checkpoint up
// to maxCheckpointBytes (a Nature DQN's is about 27 MB), and the replay
// snapshot only when both fit in maxResumeBytes. A trial whose snapshot is
// left out resumes with an empty replay, which refills before learning goes
// on.
const (
	maxCheckpointBytes = 28 << 20
	maxResumeBytes     = 28 << 20
)

// readResumeFiles reads the checkpoint a run wrote into cdir, and its
// replay snapshot when it fits beside it.
func readResumeFiles(cdir string) (ckpt, snap []byte, err error) {
	ckpt, err = readBounded(filepath.Join(cdir, actors.CheckpointFile), maxCheckpointBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the run's checkpoint, to continue it from: %w", err)
	}
	snap, err = readBounded(filepath.Join(cdir, actors.SnapshotFile), maxResumeBytes-len(ckpt))
	if err != nil {
		snap = nil // too large to travel, or none: the next segment refills its replay
	}
	return ckpt, snap, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: none was written", path)
		}
		return nil, err
	}
	if st.Size() > int64(limit) {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d that travel with a trial", path, st.Size(), limit)
	}
	return os.ReadFile(path)
}

// writeResumeFiles writes a segment's checkpoint (and replay snapshot) into
// cdir, for 'qfleet dev --resume'. The files are as the last segment wrote
// them (a magic, a checksum, the payload): the run checks them and refuses
// a corrupt or misfit one with a clear error.
func writeResumeFiles(cdir string, ckpt, snap []byte) error {
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return fmt.Errorf("trial checkpoint: %v", err)
	}
	if err := os.WriteFile(filepath.Join(cdir, actors.CheckpointFile), ckpt, 0o600); err != nil {
		return fmt.Errorf("trial checkpoint: %v", err)
	}
	if len(snap) > 0 {
		if err := os.WriteFile(filepath.Join(cdir, actors.SnapshotFile), snap, 0o600); err != nil {
			return fmt.Errorf("trial replay snapshot: %v", err)
		}
	}
	return nil
}

// carriedTooLarge says why the checkpoint files a result carries are more
// than a worker sends ("" when they are not): a peer that sends more is
// not followed, and the trial fails rather than the sweep holding it.
func carriedTooLarge(ckpt, snap []byte) string {
	switch {
	case len(ckpt) > maxCheckpointBytes:
		return fmt.Sprintf("its checkpoint is %d bytes, more than the %d a worker sends", len(ckpt), maxCheckpointBytes)
	case len(ckpt)+len(snap) > maxResumeBytes:
		return fmt.Sprintf("its checkpoint and replay snapshot are %d bytes, more than the %d a worker sends", len(ckpt)+len(snap), maxResumeBytes)
	}
	return ""
}

// settlePause says whether a segment's result can pause its trial: it must
// carry a checkpoint to continue from, and none larger than a worker sends.
// When it cannot, the result becomes the trial's failure saying why, and
// oversized files are dropped rather than kept.
func settlePause(res *messages.TrialResult, pause bool) bool {
	if pause && len(res.Checkpoint) == 0 {
		res.Ok, res.Error, pause = false, "its segment ended without a checkpoint to continue from", false
	}
	if why := carriedTooLarge(res.Checkpoint, res.ReplaySnapshot); why != "" {
		res.Ok, res.Error, pause = false, why, false
		res.Checkpoint, res.ReplaySnapshot = nil, nil
	}
	return pause
}
