package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
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

// WriteCheckpoint writes c to dir/learner.ckpt atomically (see writeDurable),
// keeping the previous CheckpointsKept−1 as learner.ckpt.1, .2, ...
func WriteCheckpoint(dir string, c *messages.Checkpoint) error {
	payload, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("checkpoint: encode: %w", err)
	}
	if err := writeDurable(dir, CheckpointFile, checkpointMagic, payload, CheckpointsKept); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// writeDurable writes payload to dir/name atomically: a temp file in the
// same directory, fsync, rename, fsync of the directory. The file is the
// magic, a CRC-32C of the payload, then the payload, so that a torn or
// corrupted file is detected on load rather than half-read. The previous
// keep−1 files are kept as name.1 (the newest of them), name.2, ...
func writeDurable(dir, name string, magic [4]byte, payload []byte, keep int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var header [8]byte
	copy(header[:4], magic[:])
	binary.LittleEndian.PutUint32(header[4:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := tmp.Write(header[:]); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(payload); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	final := filepath.Join(dir, name)
	// Rotate: name → .1 → .2 …; the oldest falls off.
	for i := keep - 1; i >= 1; i-- {
		from := final
		if i > 1 {
			from = fmt.Sprintf("%s.%d", final, i-1)
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", final, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable; a failure here leaves a valid file.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readLatestDurable returns the payload of the newest of dir/name, name.1,
// ... (keep files) that passes its magic and checksum, and the errors of the
// corrupt ones it passed over. The error wraps os.ErrNotExist when there is
// none at all, ErrCorruptCheckpoint when all that exist are corrupt.
func readLatestDurable(dir, name string, magic [4]byte, keep int, decode func(path string, payload []byte) error) (skipped []error, err error) {
	final := filepath.Join(dir, name)
	found := false
	for i := 0; i < keep; i++ {
		path := final
		if i > 0 {
			path = fmt.Sprintf("%s.%d", final, i)
		}
		payload, err := readDurable(path, magic)
		if err == nil {
			if err = decode(path, payload); err == nil {
				return skipped, nil
			}
		}
		if !errors.Is(err, os.ErrNotExist) {
			found = true
			skipped = append(skipped, err)
		}
	}
	if found {
		return skipped, fmt.Errorf("%w: no readable %s in %s", ErrCorruptCheckpoint, name, dir)
	}
	return nil, fmt.Errorf("none in %s: %w", dir, os.ErrNotExist)
}

// readDurable reads one file written by writeDurable and checks it.
func readDurable(path string, magic [4]byte) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 8 || [4]byte(data[:4]) != magic {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorruptCheckpoint, path)
	}
	payload := data[8:]
	if binary.LittleEndian.Uint32(data[4:8]) != crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorruptCheckpoint, path)
	}
	return payload, nil
}

// ReadLatestCheckpoint loads the newest checkpoint in dir that passes its
// checksum, falling back to older ones; skipped lists the corrupt ones it
// passed over. It returns an error wrapping os.ErrNotExist when there is none.
func ReadLatestCheckpoint(dir string) (c *messages.Checkpoint, skipped []error, err error) {
	c, _, skipped, err = readLatestCheckpoint(dir)
	return c, skipped, err
}

// readLatestCheckpoint is ReadLatestCheckpoint that also names the file it
// read, for errors that must say which one does not fit.
func readLatestCheckpoint(dir string) (c *messages.Checkpoint, path string, skipped []error, err error) {
	skipped, err = readLatestDurable(dir, CheckpointFile, checkpointMagic, CheckpointsKept, func(p string, payload []byte) error {
		c, err = decodeCheckpoint(p, payload)
		path = p
		return err
	})
	if err != nil {
		return nil, "", skipped, fmt.Errorf("checkpoint: %w", err)
	}
	return c, path, skipped, nil
}

// ReadCheckpoint loads dir/learner.ckpt and verifies its checksum.
func ReadCheckpoint(dir string) (*messages.Checkpoint, error) {
	path := filepath.Join(dir, CheckpointFile)
	payload, err := readDurable(path, checkpointMagic)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return decodeCheckpoint(path, payload)
}

func decodeCheckpoint(path string, payload []byte) (*messages.Checkpoint, error) {
	c := &messages.Checkpoint{}
	if err := proto.Unmarshal(payload, c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptCheckpoint, path, err)
	}
	return c, nil
}

// ErrResumeMisfit is what a checkpoint or replay snapshot of another run
// shape is (another env, another network, observations of another size):
// errors.Is(err, ErrResumeMisfit) holds for the errors CheckResume and the
// learner's restore return for one. Reading it again never helps, so it is
// a startup error, not a reason to restart.
var ErrResumeMisfit = errors.New("does not fit this run")

// misfit is an ErrResumeMisfit whose text is the whole story (the file,
// what it is for, what the run is), without the sentinel's words.
type misfit string

func (m misfit) Error() string        { return string(m) }
func (m misfit) Is(target error) bool { return target == ErrResumeMisfit }

// CheckResume checks, before a node starts its roles, that what they would
// resume from in dir fits the run: with RoleLearner among roles, the newest
// good checkpoint must be of env and of net's shape and parameter count;
// with RoleReplay, the newest good replay snapshot must be of env, with
// observations of net.Inputs values and arrays of the lengths it says. No
// checkpoint (or snapshot) at all is fine: the role starts fresh. A misfit
// wraps ErrResumeMisfit; files that exist but none of which reads back whole
// wrap ErrCorruptCheckpoint. The learner checks again when it restores.
func CheckResume(dir, env string, net nets.Spec, roles []string) error {
	if slices.Contains(roles, RoleLearner) {
		c, path, _, err := readLatestCheckpoint(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			if err := checkpointFits(c, path, env, net); err != nil {
				return err
			}
		}
	}
	if slices.Contains(roles, RoleReplay) {
		s, path, _, err := readLatestSnapshot(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		case s.GetEnv() != env || int(s.GetObsSize()) != net.Inputs:
			return misfit(fmt.Sprintf("replay snapshot %s is for %s (observations of %d values), this run is %s (%d values)",
				path, s.GetEnv(), s.GetObsSize(), env, net.Inputs))
		default:
			if err := checkSnapshot(s, net.Inputs); err != nil {
				return misfit(fmt.Sprintf("replay snapshot %s does not fit %s: %v", path, env, err))
			}
		}
	}
	return nil
}

// checkpointFits checks a checkpoint read from path against the run: its
// env, its layer sizes (when it records them) and the lengths of the four
// parameter vectors the trainer restores.
func checkpointFits(c *messages.Checkpoint, path, env string, net nets.Spec) error {
	want := specLayers(net)
	n := net.NumParams()
	layersFit := len(c.GetLayers()) == 0 || slices.Equal(c.GetLayers(), want)
	countsFit := len(c.GetOnline()) == n && len(c.GetTarget()) == n && len(c.GetAdamM()) == n && len(c.GetAdamV()) == n
	if c.GetEnv() == env && layersFit && countsFit && c.GetLayerNorm() == net.LayerNorm {
		return nil
	}
	have, need := layersText(c.GetLayers()), layersText(want)
	if c.GetLayerNorm() != net.LayerNorm {
		have, need = lnText(have, c.GetLayerNorm()), lnText(need, net.LayerNorm)
	}
	if have == need || len(c.GetLayers()) == 0 {
		// Same layer sizes, other parameter counts (a dueling or conv net,
		// or a checkpoint that does not record its layers): the counts tell.
		have, need = paramsText(c), fmt.Sprintf("%s, %d parameters", net, n)
	}
	return misfit(fmt.Sprintf("checkpoint %s is for %s (%s), this run is %s (%s)", path, c.GetEnv(), have, env, need))
}

// lnText marks a net's description with its LayerNorm setting.
func lnText(s string, ln bool) string {
	if ln {
		return s + ", layer_norm"
	}
	return s + ", no layer_norm"
}

// specLayers are a network's layer sizes as a checkpoint records them:
// inputs, hidden widths, outputs.
func specLayers(net nets.Spec) []uint32 {
	layers := []uint32{uint32(net.Inputs)}
	for _, h := range net.Hidden {
		layers = append(layers, uint32(h))
	}
	return append(layers, uint32(net.Outputs))
}

// layersText is "4 → 64 → 64 → 2".
func layersText(layers []uint32) string {
	parts := make([]string, len(layers))
	for i, l := range layers {
		parts[i] = strconv.FormatUint(uint64(l), 10)
	}
	return strings.Join(parts, " → ")
}

// paramsText describes a checkpoint's parameter vectors by their lengths.
func paramsText(c *messages.Checkpoint) string {
	prefix := ""
	if len(c.GetLayers()) > 0 {
		prefix = layersText(c.GetLayers()) + ", "
	}
	on, tg, m, v := len(c.GetOnline()), len(c.GetTarget()), len(c.GetAdamM()), len(c.GetAdamV())
	if on == tg && on == m && on == v {
		return fmt.Sprintf("%s%d parameters", prefix, on)
	}
	return fmt.Sprintf("%s%d online, %d target, %d+%d optimizer parameters", prefix, on, tg, m, v)
}
