package wire

import "github.com/qfleet/qfleet/messages"

// Options choose the experience codec. Frames and zstd are lossless;
// Float16 is lossy (obs rounded to half precision: ~3 significant digits).
// With Frames, a batch of stacked frames (frame_stack > 1) whose values are
// all whole numbers 0..255 goes as CODEC_STACKED_FRAMES, exactly (Float16
// does not apply to it); any other batch as CODEC_FRAMES.
type Options struct{ Frames, Float16, Zstd bool }

// DefaultOptions is the codec for experience between hosts.
var DefaultOptions = Options{Frames: true, Float16: true, Zstd: true}

const (
	// MaxBytes bounds every payload, compressed or decoded.
	MaxBytes = 64 << 20
	// MaxFloats bounds count·obs_size of an experience batch and
	// num_params of weights.
	MaxFloats = 1 << 24
	// MaxWeightsChunks bounds the chunks of one weights version.
	MaxWeightsChunks = 1 << 16

	layoutVersion  = 1
	maxStride      = 64
	flagPriorities = 1 << 0
	flagSequential = 1 << 1
	flagPalette    = 1 << 2
	maxPalette     = 256

	codecFrames  = uint32(messages.Codec_CODEC_FRAMES)
	codecFloat16 = uint32(messages.Codec_CODEC_FLOAT16)
	codecZstd    = uint32(messages.Codec_CODEC_ZSTD)
	codecDelta   = uint32(messages.Codec_CODEC_DELTA)
	codecStacked = uint32(messages.Codec_CODEC_STACKED_FRAMES)
)

// Experience payloads with CODEC_ZSTD start with a mode byte.
const (
	zstdWhole = 0 // the layout is one zstd frame
	zstdSplit = 1 // uvarint n, a zstd frame of n bytes holding the layout up to the low row bytes, then those raw
)
