package wire_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// "Pixels on the wire" (BENCHMARKS.md): bytes per transition and time per
// batch of the stacked-frames codec against the ways other distributed DQNs
// ship pixel observations, on identical recorded CartPolePixels-v1 frames:
// 84×84 gray, stacked k = 4, n-step n = 3, batches of 32 transitions.

// pixelStreams are the recorded streams: one env acting at random (short
// episodes: many resets), one env balancing with ε = 0.05 (500-step
// episodes, a cart that barely moves), and four envs taking turns, as a
// runner's vector does, at ε = 0.3.
func pixelStreams(tb testing.TB, nBatches int) []struct {
	name    string
	batches []*messages.ExperienceBatch
} {
	return []struct {
		name    string
		batches []*messages.ExperienceBatch
	}{
		{"random, 1 env", pixelStream(tb, 1, 4, 3, 32, nBatches, 1, 41)},
		{"balanced ε=0.05, 1 env", pixelStream(tb, 1, 4, 3, 32, nBatches, 0.05, 42)},
		{"ε=0.3, 4 envs", pixelStream(tb, 4, 4, 3, 32, nBatches, 0.3, 43)},
	}
}

// stackBytes is a stacked observation as the uint8 array a Python runner
// holds (84×84×4, channel-last).
func stackBytes(dst []byte, row []float32) []byte {
	dst = dst[:0]
	for _, v := range row {
		dst = append(dst, byte(v))
	}
	return dst
}

// lz4Coder compresses one stacked observation as RLlib does
// (lz4.frame.compress of the array's bytes: frame format, 64 KB blocks,
// fast level, no content checksum; RLlib's base64 on top is not counted).
type lz4Coder struct {
	buf bytes.Buffer
	w   *lz4.Writer
	r   *lz4.Reader
	out []byte
}

func newLZ4Coder() *lz4Coder {
	c := &lz4Coder{r: lz4.NewReader(nil)}
	c.w = lz4.NewWriter(&c.buf)
	return c
}

func (c *lz4Coder) compress(tb testing.TB, src []byte) []byte {
	c.buf.Reset()
	c.w.Reset(&c.buf)
	if err := c.w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.w.Write(src); err != nil {
		tb.Fatal(err)
	}
	if err := c.w.Close(); err != nil {
		tb.Fatal(err)
	}
	return c.buf.Bytes()
}

func (c *lz4Coder) decompress(tb testing.TB, src []byte, n int) []byte {
	c.r.Reset(bytes.NewReader(src))
	c.out = append(c.out[:0], make([]byte, n)...)
	if _, err := io.ReadFull(c.r, c.out); err != nil {
		tb.Fatal(err)
	}
	return c.out
}

// pngCoder encodes one stacked observation as Ape-X ships frames: PNG,
// either the k frames as k gray images or the stack as one NRGBA image
// (channel j of the 4 is frame j: the stack's bytes are NRGBA pixels).
type pngCoder struct {
	enc  png.Encoder
	buf  bytes.Buffer
	gray *image.Gray
	rgba *image.NRGBA
}

type pngPool struct{ b *png.EncoderBuffer }

func (p *pngPool) Get() *png.EncoderBuffer  { return p.b }
func (p *pngPool) Put(b *png.EncoderBuffer) { p.b = b }

func newPNGCoder(level png.CompressionLevel) *pngCoder {
	return &pngCoder{enc: png.Encoder{CompressionLevel: level, BufferPool: &pngPool{}},
		gray: image.NewGray(image.Rect(0, 0, 84, 84)), rgba: image.NewNRGBA(image.Rect(0, 0, 84, 84))}
}

// size is the bytes of the stack's PNG(s): gray, k images, else one NRGBA.
func (c *pngCoder) size(tb testing.TB, stack []byte, gray bool) int {
	if !gray {
		copy(c.rgba.Pix, stack)
		return c.encode(tb, c.rgba)
	}
	n := 0
	for j := range 4 {
		for p := range c.gray.Pix {
			c.gray.Pix[p] = stack[4*p+j]
		}
		n += c.encode(tb, c.gray)
	}
	return n
}

func (c *pngCoder) encode(tb testing.TB, img image.Image) int {
	c.buf.Reset()
	if err := c.enc.Encode(&c.buf, img); err != nil {
		tb.Fatal(err)
	}
	return c.buf.Len()
}

// wireSizes are a stream's bytes per transition, each way.
type wireSizes struct {
	transitions                   int
	raw, lz4                      float64
	pngGray, pngRGBA, pngRGBABest float64
	ours                          float64
}

func (w wireSizes) bestOther() float64 { return min(w.lz4, w.pngGray, w.pngRGBA, w.pngRGBABest) }

func measureWire(tb testing.TB, batches []*messages.ExperienceBatch, o wire.Options) wireSizes {
	var w wireSizes
	lz := newLZ4Coder()
	pngDef, pngBest := newPNGCoder(png.DefaultCompression), newPNGCoder(png.BestCompression)
	var stack []byte
	for _, b := range batches {
		d := int(b.ObsSize)
		w.transitions += int(b.Count)
		w.raw += float64(2 * b.Count * b.ObsSize)
		for _, rows := range [][]float32{b.Observations, b.NextObservations} {
			for i := range int(b.Count) {
				stack = stackBytes(stack, rows[i*d:(i+1)*d])
				w.lz4 += float64(len(lz.compress(tb, stack)))
				w.pngGray += float64(pngDef.size(tb, stack, true))
				w.pngRGBA += float64(pngDef.size(tb, stack, false))
				w.pngRGBABest += float64(pngBest.size(tb, stack, false))
			}
		}
		p, err := wire.PackExperience(b, o)
		if err != nil {
			tb.Fatal(err)
		}
		w.ours += float64(proto.Size(p))
	}
	n := float64(w.transitions)
	w.raw, w.lz4, w.pngGray, w.pngRGBA, w.pngRGBABest, w.ours = w.raw/n, w.lz4/n, w.pngGray/n, w.pngRGBA/n, w.pngRGBABest/n, w.ours/n
	return w
}

// TestPixelsOnTheWire measures bytes per transition on the recorded streams
// (the table in BENCHMARKS.md, from -v: 12 batches a stream) and holds the
// codec to its target: at most a third of the best of LZ4 and PNG.
func TestPixelsOnTheWire(t *testing.T) {
	nBatches := 3 // enough to hold the target; the table is from -v
	if testing.Verbose() {
		nBatches = 12
	}
	for _, st := range pixelStreams(t, nBatches) {
		w := measureWire(t, st.batches, wire.DefaultOptions)
		t.Logf("%-24s %d transitions, B/transition: raw %.0f, LZ4 %.0f, PNG 4×gray %.0f, PNG NRGBA %.0f (best compression %.0f), ours %.1f: %.1f× smaller than the best other",
			st.name, w.transitions, w.raw, w.lz4, w.pngGray, w.pngRGBA, w.pngRGBABest, w.ours, w.bestOther()/w.ours)
		if w.ours > w.bestOther()/3 {
			t.Errorf("%s: %.0f B/transition, more than a third of the best other (%.0f)", st.name, w.ours, w.bestOther())
		}
	}
}

// TestPixelsTransformsAndLevels logs the payload bytes per transition of
// every frame transform at every zstd level (and without zstd), the
// measurement behind the codec's choice.
func TestPixelsTransformsAndLevels(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("a measurement: its output is the point, run it with -v")
	}
	names := []string{"plain", "difference", "XOR"}
	for _, st := range pixelStreams(t, 12) {
		for tr := range wire.NumTransforms {
			line := fmt.Sprintf("%-24s %-10s", st.name, names[tr])
			for _, level := range append(stackedLevels, -1) {
				o := wire.DefaultOptions
				if level < 0 {
					o.Zstd = false
				} else {
					defer wire.SetStackedChoice(byte(tr), level)()
				}
				var size, n int
				for _, b := range st.batches {
					p, err := wire.PackExperience(b, o)
					if err != nil {
						t.Fatal(err)
					}
					size, n = size+len(p.Payload), n+int(b.Count)
				}
				name := "no zstd"
				if level >= 0 {
					name = level.String()
				}
				line += fmt.Sprintf("  %s %.1f", name, float64(size)/float64(n))
			}
			t.Log(line)
		}
	}
}

// BenchmarkPixelsOnTheWire: time per batch of 32 transitions to encode and
// decode, each way, on the random 1-env stream (B/transition as reported).
func BenchmarkPixelsOnTheWire(b *testing.B) {
	batches := pixelStream(b, 1, 4, 3, 32, 8, 1, 41)
	b.Run("ours/pack", func(b *testing.B) {
		var bytes, n int
		for i := 0; b.Loop(); i++ {
			eb := batches[i%len(batches)]
			p, err := wire.PackExperience(eb, wire.DefaultOptions)
			if err != nil {
				b.Fatal(err)
			}
			bytes, n = bytes+proto.Size(p), n+int(eb.Count)
		}
		b.ReportMetric(float64(bytes)/float64(n), "B/transition")
	})
	// The zstd part of packing at each level, on the uncompressed layouts.
	var raws [][]byte
	for _, eb := range batches {
		p, err := wire.PackExperience(eb, wire.Options{Frames: true})
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, p.Payload)
	}
	for _, level := range stackedLevels {
		b.Run("ours/zstd-only/level="+level.String(), func(b *testing.B) {
			enc, err := wire.NewEncoder(level)
			if err != nil {
				b.Fatal(err)
			}
			var out []byte
			var bytes int
			for i := 0; b.Loop(); i++ {
				out = enc.EncodeAll(raws[i%len(raws)], out[:0])
				bytes += len(out)
			}
			b.ReportMetric(float64(bytes)/float64(b.N*32), "payloadB/transition")
		})
	}
	b.Run("ours/unpack", func(b *testing.B) {
		packed := make([]*messages.PackedExperience, len(batches))
		for i, eb := range batches {
			var err error
			if packed[i], err = wire.PackExperience(eb, wire.DefaultOptions); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; b.Loop(); i++ {
			if _, err := wire.UnpackExperience(packed[i%len(packed)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	benchOthers(b, batches)
}

// benchOthers times LZ4 and PNG per batch: 64 stacks (obs and next) from
// float32 to bytes to their coding, and back to bytes.
func benchOthers(b *testing.B, batches []*messages.ExperienceBatch) {
	d := int(batches[0].ObsSize)
	lz := newLZ4Coder()
	var stack []byte
	b.Run("lz4/compress", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			eb := batches[i%len(batches)]
			for _, rows := range [][]float32{eb.Observations, eb.NextObservations} {
				for t := range int(eb.Count) {
					stack = stackBytes(stack, rows[t*d:(t+1)*d])
					lz.compress(b, stack)
				}
			}
		}
	})
	b.Run("lz4/decompress", func(b *testing.B) {
		var frames [][]byte
		for _, eb := range batches {
			for _, rows := range [][]float32{eb.Observations, eb.NextObservations} {
				for t := range int(eb.Count) {
					stack = stackBytes(stack, rows[t*d:(t+1)*d])
					frames = append(frames, bytes.Clone(lz.compress(b, stack)))
				}
			}
		}
		per := 2 * int(batches[0].Count)
		for i := 0; b.Loop(); i++ {
			for _, f := range frames[(i*per)%len(frames) : (i*per)%len(frames)+per] {
				lz.decompress(b, f, d)
			}
		}
	})
	for _, gray := range []bool{false, true} {
		name := "png-nrgba/encode"
		if gray {
			name = "png-4gray/encode"
		}
		b.Run(name, func(b *testing.B) {
			pc := newPNGCoder(png.DefaultCompression)
			for i := 0; b.Loop(); i++ {
				eb := batches[i%len(batches)]
				for _, rows := range [][]float32{eb.Observations, eb.NextObservations} {
					for t := range int(eb.Count) {
						stack = stackBytes(stack, rows[t*d:(t+1)*d])
						pc.size(b, stack, gray)
					}
				}
			}
		})
	}
	b.Run("png-nrgba/decode", func(b *testing.B) {
		pc := newPNGCoder(png.DefaultCompression)
		var pngs [][]byte
		for _, eb := range batches[:1] {
			for _, rows := range [][]float32{eb.Observations, eb.NextObservations} {
				for t := range int(eb.Count) {
					stack = stackBytes(stack, rows[t*d:(t+1)*d])
					pc.size(b, stack, false)
					pngs = append(pngs, bytes.Clone(pc.buf.Bytes()))
				}
			}
		}
		for b.Loop() {
			for _, p := range pngs {
				if _, err := png.Decode(bytes.NewReader(p)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
