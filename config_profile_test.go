package qfleet

import (
	"testing"

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

	// wan's budget (the default profile's) is in DefaultConfig; a file's
	// key read over it wins, the other key stays the profile's.
	wanRate, wanInterval, _ := cluster.WeightsBudget(cluster.ProfileWAN)
	if wanRate == 0 || wanInterval == 0 {
		t.Fatalf("wan has no weights budget (%d, %v): the rest of this test needs one", wanRate, wanInterval)
	}
	cf := DefaultConfig("CartPole-v1")
	if cf.Profile != cluster.ProfileWAN || cf.WeightsMaxRate != wanRate || cf.WeightsMinInterval != wanInterval {
		t.Errorf("DefaultConfig is not wan's: %s, %d, %v", cf.Profile, cf.WeightsMaxRate, cf.WeightsMinInterval)
	}
	if err := ParseConfig([]byte("weights_max_rate: 30000\n"), "node.yaml", &cf); err != nil {
		t.Fatal(err)
	}
	if cf.WeightsMaxRate != 30_000 || cf.WeightsMinInterval != wanInterval {
		t.Errorf("after the file: weights_max_rate %d (want the file's 30000), weights_min_interval %v (want wan's %v)", cf.WeightsMaxRate, cf.WeightsMinInterval, wanInterval)
	}
	if err := ParseConfig([]byte("weights_min_interval: 0s\n"), "node.yaml", &cf); err != nil || cf.WeightsMinInterval != 0 {
		t.Errorf("a file's 0s does not turn the profile's interval off: %v, %v", cf.WeightsMinInterval, err)
	}
	if odd := DefaultConfigForProfile("CartPole-v1", "fast"); odd.WeightsMaxRate != 0 || odd.WeightsMinInterval != 0 {
		t.Errorf("an unknown profile gave a budget: %d, %v", odd.WeightsMaxRate, odd.WeightsMinInterval)
	}
}
