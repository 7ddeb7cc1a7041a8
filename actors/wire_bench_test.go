package actors

import (
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

func wireBenchBatches(b *testing.B, size int) []*messages.ExperienceBatch {
	batches := wireMixedStream(b, 16, size, 21)
	b.ResetTimer()
	return batches
}

// BenchmarkPackExperience: default options (frames, float16, zstd).
func BenchmarkPackExperience(b *testing.B) {
	for _, size := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batches := wireBenchBatches(b, size)
			b.ReportAllocs()
			var n, bytes int
			for i := 0; b.Loop(); i++ {
				eb := batches[i%len(batches)]
				p, err := PackExperience(eb, DefaultWireOptions)
				if err != nil {
					b.Fatal(err)
				}
				n += int(eb.Count)
				bytes += proto.Size(p)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transitions/s")
			b.ReportMetric(float64(bytes)/float64(n), "B/transition")
		})
	}
}

func BenchmarkUnpackExperience(b *testing.B) {
	for _, size := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batches := wireBenchBatches(b, size)
			packed := make([]*messages.PackedExperience, len(batches))
			for i, eb := range batches {
				var err error
				if packed[i], err = PackExperience(eb, DefaultWireOptions); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			b.ReportAllocs()
			var n, bytes int
			for i := 0; b.Loop(); i++ {
				p := packed[i%len(packed)]
				if _, err := UnpackExperience(p); err != nil {
					b.Fatal(err)
				}
				n += int(p.Count)
				bytes += proto.Size(p)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transitions/s")
			b.ReportMetric(float64(bytes)/float64(n), "B/transition")
		})
	}
}

// BenchmarkWireZstdLevel compares zstd levels on the uncompressed
// frames+float16 payloads of 64-transition batches (payload bytes only).
func BenchmarkWireZstdLevel(b *testing.B) {
	batches := wireMixedStream(b, 16, 64, 22)
	var raws [][]byte
	var count int
	for _, eb := range batches {
		p, err := PackExperience(eb, WireOptions{Frames: true, Float16: true})
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, p.Payload)
		count += int(eb.Count)
	}
	perBatch := float64(count) / float64(len(batches))
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		b.Run("level="+l.String(), func(b *testing.B) {
			enc, err := newWireEncoder(l)
			if err != nil {
				b.Fatal(err)
			}
			var out []byte
			var bytes, n int
			for i := 0; b.Loop(); i++ {
				out = enc.EncodeAll(raws[i%len(raws)], out[:0])
				bytes += len(out)
				n++
			}
			b.ReportMetric(float64(n)*perBatch/b.Elapsed().Seconds(), "transitions/s")
			b.ReportMetric(float64(bytes)/(float64(n)*perBatch), "payloadB/transition")
		})
	}
}

// BenchmarkPackWeights: the 4-64-64-2 net and a 1M-parameter vector, full
// and as a delta against the previous version, zstd, 64 KiB chunks.
func BenchmarkPackWeights(b *testing.B) {
	for _, n := range []int{4866, 1 << 20} {
		base := wireTestWeights(n, 1, 1, 1)
		next := wireStepWeights(base, 1, 2)
		for _, delta := range []bool{false, true} {
			var bw *messages.Weights
			if delta {
				bw = base
			}
			b.Run(fmt.Sprintf("params=%d/delta=%v", n, delta), func(b *testing.B) {
				b.SetBytes(int64(4 * n))
				var size int
				for b.Loop() {
					chunks, err := PackWeights(next, bw, 64<<10, true)
					if err != nil {
						b.Fatal(err)
					}
					size = 0
					for _, c := range chunks {
						size += len(c.Payload)
					}
				}
				b.ReportMetric(float64(size)/float64(n), "B/param")
			})
		}
	}
}

func BenchmarkAssembleWeights(b *testing.B) {
	for _, n := range []int{4866, 1 << 20} {
		base := wireTestWeights(n, 1, 1, 1)
		next := wireStepWeights(base, 1, 2)
		chunks, err := PackWeights(next, base, 64<<10, true)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("params=%d/delta=true", n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for b.Loop() {
				a := WeightsAssembler{Base: func(uint64, uint64) *messages.Weights { return base }}
				var w *messages.Weights
				for _, c := range chunks {
					if w, err = a.Add(c); err != nil {
						b.Fatal(err)
					}
				}
				if w == nil {
					b.Fatal("incomplete")
				}
			}
		})
	}
}
