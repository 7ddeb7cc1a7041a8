package wire

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Shared zstd coders: EncodeAll and DecodeAll are safe for concurrent use.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = newEncoder(zstd.SpeedFastest)
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxBytes),
			zstd.WithDecoderMaxWindow(MaxBytes),
			zstd.WithDecodeAllCapLimit(true), // output never exceeds cap(dst)
			zstd.WithDecoderConcurrency(0))
	})
	return zstdEnc, zstdDec, zstdErr
}

func newEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	// No checksum: 4 bytes per message matter here, and the transport checks.
	// Single segment: the frame header always carries the content size, which
	// the decoder requires (it sizes its output exactly).
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true), zstd.WithEncoderConcurrency(0))
}

// zstdMagic starts every zstd frame; payloads leave it out (4 bytes of a
// ~600-byte message), as zstd's own ZSTD_f_zstd1_magicless format does.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zstdPack compresses src into one magicless zstd frame, appended to dst.
func zstdPack(dst, src []byte) ([]byte, error) {
	enc, _, err := zstdCoders()
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		return dst, nil
	}
	base := len(dst)
	dst = enc.EncodeAll(src, dst)
	if !bytes.HasPrefix(dst[base:], zstdMagic) {
		return nil, errors.New("zstd encoder wrote no frame magic")
	}
	return append(dst[:base], dst[base+len(zstdMagic):]...), nil
}

var zinPool = sync.Pool{New: func() any { return new([]byte) }}

// unzstd decodes one magicless zstd frame (zstdPack's) of at most limit
// bytes, reusing dst's storage.
func unzstd(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst[:0], nil // the encoding of nothing
	}
	if len(src) > MaxBytes {
		return nil, fmt.Errorf("zstd payload of %d bytes exceeds %d", len(src), MaxBytes)
	}
	in := zinPool.Get().(*[]byte)
	defer zinPool.Put(in)
	*in = append(append((*in)[:0], zstdMagic...), src...)
	return unzstdFramed(dst, *in, limit)
}

// unzstdFramed decodes one zstd frame of at most limit bytes, reusing dst's
// storage. The frame must declare its content size (zstdPack's do), so that
// the output buffer is exactly as large as the header promises, never as
// large as a hostile count would allow.
func unzstdFramed(dst, src []byte, limit int) ([]byte, error) {
	_, dec, err := zstdCoders()
	if err != nil {
		return nil, err
	}
	if len(src) > MaxBytes {
		return nil, fmt.Errorf("zstd payload of %d bytes exceeds %d", len(src), MaxBytes)
	}
	var h zstd.Header
	switch err := h.Decode(src); {
	case err != nil:
		return nil, fmt.Errorf("zstd payload (%d bytes): %w", len(src), err)
	case h.Skippable || !h.HasFCS:
		return nil, fmt.Errorf("zstd payload (%d bytes): frame without content size", len(src))
	case h.FrameContentSize > uint64(min(limit, MaxBytes)):
		return nil, fmt.Errorf("zstd payload (%d bytes): content size %d exceeds the %d bytes the message can need", len(src), h.FrameContentSize, min(limit, MaxBytes))
	}
	size := int(h.FrameContentSize)
	if cap(dst) < size {
		dst = make([]byte, 0, size)
	}
	out, err := dec.DecodeAll(src, dst[:0:size])
	if err != nil {
		return nil, fmt.Errorf("zstd payload (%d bytes, content size %d): %w", len(src), size, err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("zstd payload (%d bytes): decoded %d bytes, header says %d", len(src), len(out), size)
	}
	return out, nil
}
