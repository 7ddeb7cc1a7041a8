package actors

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/pixels"
	"github.com/qfleet/qfleet/messages"
)

var pixelCapacity = flag.Int("replay.capacity", 100_000, "BenchmarkStackedReplay's table capacity (transitions)")

// BenchmarkStackedReplay fills a replay table of -replay.capacity
// transitions with CartPolePixels-v1 frames stacked 4 deep (random play,
// 3-step returns, a runner's stream) and reports what a transition costs
// held (heap bytes after the fill over the capacity), the frames stored per
// transition, the insert time, and the time of one sample of 32 (stacks
// rebuilt from frames): an op is one sample.
func BenchmarkStackedReplay(b *testing.B) {
	const k = 4
	capacity := *pixelCapacity
	d := 84 * 84 * k
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := NewStackedFrameTable(envs.Uint8, d, capacity, k, 1)
	inserted := 0
	b.ResetTimer()
	streamStacked(b, func() envs.Env { return pixels.NewCartPolePixels() }, k, 1, capacity+capacity/10, func(bt *messages.ExperienceBatch) {
		tab.Insert(bt)
		inserted += int(bt.Count)
	})
	fill := b.Elapsed()
	runtime.GC()
	runtime.ReadMemStats(&after)
	rng := rand.New(rand.NewPCG(1, 1))
	out := &messages.SampleBatch{}
	b.ResetTimer()
	for range b.N {
		tab.SampleUniform(rng, 32, out)
	}
	b.StopTimer()
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(capacity), "heap_B/transition")
	b.ReportMetric(float64(tab.frames.inserted)/float64(inserted), "frames/transition")
	b.ReportMetric(float64(fill.Microseconds())/float64(inserted), "fill_µs/transition")
	b.ReportMetric(float64(tab.evicted), "evicted")
}
