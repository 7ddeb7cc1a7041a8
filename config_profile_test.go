package qfleet

import (
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster"
)

// A cluster profile's weights budget is a default: DefaultConfigForProfile
// carries it, and a config file's key read over it wins.
func TestProfileWeightsBudget(t *testing.T) {
	for _, p := range []string{cluster.ProfileLocal, cluster.ProfileLAN, cluster.ProfileWAN} {
		rate, interval, ok := cluster.WeightsBudget(p)
		if !ok {
			t.Fatalf("profile %s has no weights budget", p)
		}
		cf := DefaultConfigForProfile("CartPole-v1", p)
		if cf.Profile != p || cf.WeightsMaxRate != rate || cf.WeightsMinInterval != interval {
			t.Errorf("%s: profile %q, weights_max_rate %d, weights_min_interval %v; want %s, %d, %v", p, cf.Profile, cf.WeightsMaxRate, cf.WeightsMinInterval, p, rate, interval)
		}
		if err := cf.Config.Validate(); err != nil {
			t.Errorf("%s's defaults: %v", p, err)
		}
	}

	// Every profile's budget is off today: one that has a budget shows
	// that the mechanism carries it.
	profileWeightsBudget = func(p string) (int, time.Duration, bool) {
		if p == cluster.ProfileLAN {
			return 50_000, 250 * time.Millisecond, true
		}
		return cluster.WeightsBudget(p)
	}
	t.Cleanup(func() { profileWeightsBudget = cluster.WeightsBudget })
	cf := DefaultConfigForProfile("CartPole-v1", cluster.ProfileLAN)
	if cf.WeightsMaxRate != 50_000 || cf.WeightsMinInterval != 250*time.Millisecond {
		t.Fatalf("lan's budget did not reach the config: %d, %v", cf.WeightsMaxRate, cf.WeightsMinInterval)
	}
	if err := ParseConfig([]byte("weights_max_rate: 30000\n"), "node.yaml", &cf); err != nil {
		t.Fatal(err)
	}
	if cf.WeightsMaxRate != 30_000 || cf.WeightsMinInterval != 250*time.Millisecond {
		t.Errorf("after the file: weights_max_rate %d (want the file's 30000), weights_min_interval %v (want lan's 250ms)", cf.WeightsMaxRate, cf.WeightsMinInterval)
	}
	if err := ParseConfig([]byte("weights_min_interval: 0s\n"), "node.yaml", &cf); err != nil || cf.WeightsMinInterval != 0 {
		t.Errorf("a file's 0s does not turn the profile's interval off: %v, %v", cf.WeightsMinInterval, err)
	}
	if wan := DefaultConfig("CartPole-v1"); wan.WeightsMaxRate != 0 || wan.WeightsMinInterval != 0 || wan.Profile != cluster.ProfileWAN {
		t.Errorf("DefaultConfig is not wan's: %s, %d, %v", wan.Profile, wan.WeightsMaxRate, wan.WeightsMinInterval)
	}
	if odd := DefaultConfigForProfile("CartPole-v1", "fast"); odd.WeightsMaxRate != 0 || odd.WeightsMinInterval != 0 {
		t.Errorf("an unknown profile gave a budget: %d, %v", odd.WeightsMaxRate, odd.WeightsMinInterval)
	}
}
