package actors

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/envs"
)

// heapOf is the live heap that build's result holds: the median of 5
// measurements, since goroutines of earlier tests (actors still running)
// allocate and free around any one of them.
func heapOf(build func() any) uint64 {
	var got []int64
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep := build()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(keep)
		got = append(got, int64(after.HeapAlloc)-int64(before.HeapAlloc))
	}
	slices.Sort(got)
	return uint64(max(got[2], 0))
}

// The replay items of the estimate are what a real table of that config
// allocates, within 10% and never under: float rows, packed binary frames,
// prioritized.
func TestMemoryEstimateMatchesReplayTable(t *testing.T) {
	for _, c := range []struct {
		env         string
		prioritized bool
	}{{"CartPole-v1", false}, {"CartPole-v1", true}, {"MinAtar/Breakout-v1", false}, {"MinAtar/Seaquest-v1", true}} {
		env, err := envs.Make(c.env)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfigFor(c.env)
		cfg.ReplayCapacity, cfg.Prioritized = 200_000, c.prioritized
		var est uint64
		for _, i := range replayItems(env.Spec(), cfg, false) {
			est += i.Bytes()
		}
		obs := env.Spec().ObsSize()
		got := heapOf(func() any {
			var tb *Table
			if len(replayOptions(env.Spec(), DefaultConfig())) > 0 {
				tb = NewFrameTable(envs.Binary, obs, cfg.ReplayCapacity)
			} else {
				tb = NewTable(obs, cfg.ReplayCapacity)
			}
			if c.prioritized {
				tb.Prioritize(cfg.PriorityExponent)
			}
			return tb
		})
		t.Logf("%s prioritized=%v: estimate %d B, table %d B (%.2f×)", c.env, c.prioritized, est, got, float64(est)/float64(got))
		if est < got || float64(est) > 1.1*float64(got) {
			t.Errorf("%s prioritized=%v: estimate %d B for a table of %d B", c.env, c.prioritized, est, got)
		}
	}
}

// A config over the limit is refused naming the setting behind the largest
// part, its bytes per unit, the total and the limit.
func TestMemoryBudgetNamesLargestSetting(t *testing.T) {
	env, _ := envs.Make("CartPole-v1")
	cfg := DefaultConfig()
	cfg.ReplayCapacity = 1_000_000_000
	err := EstimateMemory(env.Spec(), cfg, AllRoles, false).Check(8 << 30)
	if !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("err %v, want ErrMemoryBudget", err)
	}
	for _, want := range []string{"replay_capacity = 1000000000", "52 B each", "48 GiB", "over its limit of 8.0 GiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := EstimateMemory(env.Spec(), DefaultConfig(), AllRoles, false).Check(8 << 30); err != nil {
		t.Fatalf("the default config is refused: %v", err)
	}
}

// The default limit is a share of what the machine (or its cgroup) has.
func TestDefaultMaxMemory(t *testing.T) {
	total, def := memTotal(), DefaultMaxMemory()
	if total == 0 || def == 0 || def > total || def < total/10 {
		t.Fatalf("MemTotal %d, default limit %d: want a share of it", total, def)
	}
}
