package qfleet_test

import (
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
)

// FuzzParseConfig: any bytes as a config file give a config or a one-line
// error, never a panic; a config that parses either validates or names the
// field it breaks.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"seed: 3\nmax_steps: 200000\nhidden: [64, 64]\nlearning_rate: 0.001\n",
		"batch_size: 0\n", "batch_size: abc\n", "nope: 1\n", "hidden: [-1]\n",
		"credit_timeout: 5s\nwire_float16: false\n", "target_return: 195\n", "{", "- 1\n- 2\n", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cf := qfleet.Config{Config: actors.DefaultConfig()}
		if err := qfleet.ParseConfig(data, "fuzz.yaml", &cf); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if err := cf.Config.Validate(); err != nil && !strings.Contains(err.Error(), " = ") {
			t.Fatalf("validation error names no field: %v", err)
		}
	})
}
