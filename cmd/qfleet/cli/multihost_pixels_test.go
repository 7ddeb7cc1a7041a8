package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster/netlab"
	"github.com/qfleet/qfleet/internal/testutil"
)

// pixelsConfig is CartPolePixels-v1's defaults (actors.DefaultConfigFor)
// written out for the Python port of it, whose id qfleet does not know, and
// the env's spec for the learner's node, which never steps it.
const pixelsConfig = `env: PyCartPolePixels-v1
env_spec: obs=84x84x1 dtype=uint8 actions=2 max_steps=500 threshold=475
network: nature
frame_stack: 4
batch_size: 32
learning_rate: 1e-4
learning_rate_decay: 0
rate_tolerance: 1024
target_tau: 0
target_update_period: 1000
eval_every: 0
`

// TestMultiHostPixels: CartPole from pixels across hosts, the problem with
// large observations. The Python env runs on the runner hosts only (84×84
// gray numpy frames through the subprocess bridge), each runner stacks them
// 4 deep, the Nature network acts there and learns on A, and every link is
// 2 Mbit/s each way (wan profile). The run reports the runners' env steps/s,
// the experience and weights bytes on A's link, and the runners' weights
// lag. The fast variant (make test) checks that experience flows over the
// link at a few hundred bytes a transition, under half the link; the full
// one (-multihost.full) runs long enough for the learning curve to rise.
func TestMultiHostPixels(t *testing.T) {
	netlab.Require(t)
	script, err := filepath.Abs("../../../python/examples/cartpole_pixels.py")
	if err != nil {
		t.Fatal(err)
	}
	c := multiHostCase{target: 475, profile: "wan", limit: "2mbit", curve: true, maxSteps: 4_000, timeout: 3 * time.Minute}
	extra := "min_replay_size: 1000\nsamples_per_insert: 2\nepsilon_decay_steps: 2000\n"
	if *multihostFull {
		c.maxSteps, c.timeout = 60_000, 25*time.Minute
		// Each runner may take 55,000 B/s of weights (together 44% of A's
		// uplink): a 6.7 MB version every ~2 minutes instead of ~4½ at
		// the wan profile's 25,000.
		extra = "min_replay_size: 5000\nsamples_per_insert: 8\nepsilon_decay_steps: 30000\nweights_max_rate: 55000\n"
	}
	cfg := testutil.WriteFile(t, t.TempDir(), "pixels.yaml", pixelsConfig+extra)
	c.learnerArgs = []string{"--config", cfg}
	c.runnerArgs = []string{"--config", cfg, "--env-command", testutil.Python(t) + " " + script}
	res := runMultiHost(t, c)

	link := 2e6 / 8
	exp, _ := promValue(res.metrics, "qfleet_wire_bytes_total", map[string]string{"flow": "experience", "direction": "received"})
	inserted, _ := promValue(res.metrics, "qfleet_replay_inserted_total", nil)
	if inserted == 0 {
		t.Fatal("no transition inserted")
	}
	perTransition, rate := exp/inserted, exp/res.wall.Seconds()
	t.Logf("pixels: %.0f env steps/s over the run, experience %.0f B/transition, %.0f B/s on A's link (%.1f%% of it)",
		float64(res.summary.EnvSteps)/res.wall.Seconds(), perTransition, rate, 100*rate/link)
	// A stacked transition is 56,448 bytes as raw uint8 (obs and next, 4
	// frames each): the codec sends each new frame once.
	if perTransition > 2_000 {
		t.Errorf("experience took %.0f B per transition: want each frame sent once (≤ 2,000 B)", perTransition)
	}
	if rate > link/2 {
		t.Errorf("experience took %.0f B/s of the %.0f B/s link: more than half", rate, link)
	}
	checkWeightsShare(t, res, link)
	curve := scalars(t, res.runDir, "mean100_all")
	t.Logf("mean100_all along the run (env steps: value): %s", curveString(curve))
	if *multihostFull {
		if len(curve) < 2 || curve[len(curve)-1].value < 1.5*curve[0].value {
			t.Errorf("the learning curve did not rise: first %v, last %v", curve[0], curve[len(curve)-1])
		}
	}
}

// point is one scalar of a run's scalars.jsonl.
type point struct {
	step  uint64
	value float64
}

// scalars reads the named curve from a run directory's scalars.jsonl.
func scalars(t *testing.T, dir, name string) []point {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "scalars.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []point
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s struct {
			Step  uint64  `json:"step"`
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("scalars.jsonl: %v", err)
		}
		if s.Name == name {
			out = append(out, point{s.Step, s.Value})
		}
	}
	return out
}

// curveString is about ten points of a curve, evenly spread.
func curveString(c []point) string {
	out := ""
	for i := 0; i < len(c); i += max(1, len(c)/10) {
		out += fmt.Sprintf("%d: %.1f  ", c[i].step, c[i].value)
	}
	if len(c) > 0 {
		out += fmt.Sprintf("(last %d: %.1f)", c[len(c)-1].step, c[len(c)-1].value)
	}
	return out
}
