package cli

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

// TestNodeSettingKeys: qfleet.NodeSettingKeys (the keys a sweep spec drops
// from a base and refuses as params) are the flags of 'qfleet node' beyond
// the training flags, and keys of a config file.
func TestNodeSettingKeys(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	addNodeFlags(fs)
	var flags []string
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, strings.ReplaceAll(f.Name, "-", "_")) })
	keys := slices.Sorted(slices.Values(qfleet.NodeSettingKeys()))
	slices.Sort(flags)
	if !slices.Equal(keys, flags) {
		t.Errorf("qfleet.NodeSettingKeys() = %v\nthe node's flags are %v", keys, flags)
	}
	printed, err := qfleet.MarshalConfig(qfleet.DefaultConfig(qfleet.DefaultEnv), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(printed), "\n"+k+":") {
			t.Errorf("node setting %s is not a key of a config file", k)
		}
	}
}
