package wire_test

import (
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

func benchBatches(b *testing.B, size int) []*messages.ExperienceBatch {
	batches := mixedStream(b, 16, size, 21)
	b.ResetTimer()
	return batches
}

// BenchmarkPackExperience: default options (frames, float16, zstd).
func BenchmarkPackExperience(b *testing.B) {
	for _, size := range []int{32, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batches := benchBatches(b, size)
			b.ReportAllocs()
			var n, bytes int
			for i := 0; b.Loop(); i++ {
				eb := batches[i%len(batches)]
				p, err := wire.PackExperience(eb, wire.DefaultOptions)
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
			batches := benchBatches(b, size)
			packed := make([]*messages.PackedExperience, len(batches))
			for i, eb := range batches {
				var err error
				if packed[i], err = wire.PackExperience(eb, wire.DefaultOptions); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			b.ReportAllocs()
			var n, bytes int
			for i := 0; b.Loop(); i++ {
				p := packed[i%len(packed)]
				if _, err := wire.UnpackExperience(p); err != nil {
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
	batches := mixedStream(b, 16, 64, 22)
	var raws [][]byte
	var count int
	for _, eb := range batches {
		p, err := wire.PackExperience(eb, wire.Options{Frames: true, Float16: true})
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, p.Payload)
		count += int(eb.Count)
	}
	perBatch := float64(count) / float64(len(batches))
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		b.Run("level="+l.String(), func(b *testing.B) {
			enc, err := wire.NewEncoder(l)
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
