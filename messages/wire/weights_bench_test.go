package wire

import (
	"fmt"
	"testing"

	"github.com/qfleet/qfleet/messages"
)

// BenchmarkPackWeights: the 4-64-64-2 net and a 1M-parameter vector, full
// and as a delta against the previous version, zstd, 64 KiB chunks.
func BenchmarkPackWeights(b *testing.B) {
	for _, n := range []int{4866, 1 << 20} {
		base := testWeights(n, 1, 1, 1)
		next := stepWeights(base, 1, 2)
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
		base := testWeights(n, 1, 1, 1)
		next := stepWeights(base, 1, 2)
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
