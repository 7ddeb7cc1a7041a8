package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

// CheckpointFile is the name of the newest learner checkpoint in a directory;
// older ones are kept as learner.ckpt.1 (the previous), .2, ... up to
// CheckpointsKept in all, so that a corrupt newest one falls back to the one
// before it.
const CheckpointFile = "learner.ckpt"

// CheckpointsKept is how many checkpoints a directory keeps.
const CheckpointsKept = 3

// ErrCorruptCheckpoint means a checkpoint file failed its checksum or framing.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

var checkpointMagic = [4]byte{'Q', 'F', 'C', '1'}

// WriteCheckpoint writes c to dir/learner.ckpt atomically: a temp file in the
// same directory, fsync, rename, fsync of the directory. The file is the magic,
// a CRC-32C of the payload, then the protobuf payload, so that a torn or
// corrupted file is detected on load rather than half-read.
func WriteCheckpoint(dir string, c *messages.Checkpoint) error {
	payload, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("checkpoint: encode: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(dir, CheckpointFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var header [8]byte
	copy(header[:4], checkpointMagic[:])
	binary.LittleEndian.PutUint32(header[4:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := tmp.Write(header[:]); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: write %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(payload); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: close %s: %w", tmp.Name(), err)
	}
	final := filepath.Join(dir, CheckpointFile)
	// Rotate: learner.ckpt → .1 → .2 …; the oldest falls off.
	for i := CheckpointsKept - 1; i >= 1; i-- {
		from := final
		if i > 1 {
			from = fmt.Sprintf("%s.%d", final, i-1)
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", final, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint: rotate: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable; a failure here leaves a valid file.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ReadLatestCheckpoint loads the newest checkpoint in dir that passes its
// checksum, falling back to older ones; skipped lists the corrupt ones it
// passed over. It returns an error wrapping os.ErrNotExist when there is none.
func ReadLatestCheckpoint(dir string) (c *messages.Checkpoint, skipped []error, err error) {
	final := filepath.Join(dir, CheckpointFile)
	found := false
	for i := 0; i < CheckpointsKept; i++ {
		path := final
		if i > 0 {
			path = fmt.Sprintf("%s.%d", final, i)
		}
		c, err := readCheckpointFile(path)
		if err == nil {
			return c, skipped, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			found = true
			skipped = append(skipped, err)
		}
	}
	if found {
		return nil, skipped, fmt.Errorf("%w: no readable checkpoint in %s", ErrCorruptCheckpoint, dir)
	}
	return nil, nil, fmt.Errorf("checkpoint: none in %s: %w", dir, os.ErrNotExist)
}

// ReadCheckpoint loads dir/learner.ckpt and verifies its checksum.
func ReadCheckpoint(dir string) (*messages.Checkpoint, error) {
	return readCheckpointFile(filepath.Join(dir, CheckpointFile))
}

func readCheckpointFile(path string) (*messages.Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(data) < 8 || [4]byte(data[:4]) != checkpointMagic {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorruptCheckpoint, path)
	}
	payload := data[8:]
	if binary.LittleEndian.Uint32(data[4:8]) != crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorruptCheckpoint, path)
	}
	c := &messages.Checkpoint{}
	if err := proto.Unmarshal(payload, c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptCheckpoint, path, err)
	}
	return c, nil
}
