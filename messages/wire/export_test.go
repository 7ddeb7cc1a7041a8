package wire

import (
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/qfleet/qfleet/messages"
)

// What the external tests (package wire_test, which builds batches with the
// runner's own n-step accumulator) need of the package's insides.
var (
	F32ToF16   = f32ToF16
	F16ToF32   = f16ToF32
	ZstdCoders = zstdCoders
	NewEncoder = newEncoder
	ZstdMagic  = zstdMagic
)

const (
	ZstdWhole = zstdWhole
	ZstdSplit = zstdSplit
)

// Dedup runs the FRAMES packer's row deduplication on b and returns the
// frames its observations use, the stride it found and the distinct rows.
func Dedup(b *messages.ExperienceBatch) (nObs, stride, rows int) {
	s := new(scratch)
	nObs, stride = s.dedup(b)
	return nObs, stride, len(s.rows)
}

func (o Options) String() string {
	return fmt.Sprintf("frames=%v,f16=%v,zstd=%v", o.Frames, o.Float16, o.Zstd)
}

// NumTransforms is the number of frame transforms of the stacked-frames
// codec (plain, difference, XOR).
const NumTransforms = numTransforms

// StackedTransform is the frame transform the stacked-frames packer uses.
var StackedTransform = stackedTransform

// SetStackedChoice makes the stacked-frames packer use frame transform tr
// and zstd level, for the measurement that chose them; the returned
// function restores the codec's own choice.
func SetStackedChoice(tr byte, level zstd.EncoderLevel) (restore func()) {
	oldTr, oldLevel := stackedTransform, stackedLevel
	stackedTransform, stackedLevel = tr, level
	return func() { stackedTransform, stackedLevel = oldTr, oldLevel }
}
