package cli

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/netlab"
)

// ladderStatus is the part of /status the ε ladder test reads.
type ladderStatus struct {
	Runners map[string]struct {
		Epsilon       float64 `json:"epsilon"`
		LadderIndex   int     `json:"ladder_index"`
		LadderCount   int     `json:"ladder_count"`
		LadderEpsilon float64 `json:"ladder_epsilon"`
	} `json:"runners"`
}

// TestMultiHostEpsilonLadder: the Ape-X ε ladder spans the cluster's
// runners, not each node's. Host A runs replay + learner + broadcaster, B and
// C two runners each, all with epsilon_ladder 7 and epsilon_end 0.4 (no
// decay, so each runner acts at its rung's ε from the start). A's /status
// shows four rungs of one ladder of 4 — B's runners 0 and 1, C's 2 and 3 —
// and four distinct ε from 0.4 to 0.4^8. When B leaves, C's runners move
// down to rungs 0 and 1 of 2 (ε 0.4 and 0.4^8) without restarting.
func TestMultiHostEpsilonLadder(t *testing.T) {
	netlab.Require(t)
	start := time.Now()
	bin := qfleetBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "ladder.yaml")
	if err := os.WriteFile(cfgPath, []byte("runners: 2\nepsilon_end: 0.4\nepsilon_ladder: 7\nepsilon_decay_steps: 0\nprogress_every_steps: 500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := netlab.New(t, "A", "B", "C")
	a, b, c := lab.Host("A"), lab.Host("B"), lab.Host("C")
	seed := net.JoinHostPort(a.Addr(), gossipPort)
	httpAddr := net.JoinHostPort(a.Addr(), httpPort)
	learner := a.Start(t, "A", bin, nodeArgs(a, "replay,learner,broadcaster", "lan", "--insecure", "--config", cfgPath,
		"--max-steps", "10000000", "--http", httpAddr, "--run-dir", filepath.Join(t.TempDir(), "run"))...)
	if err := learner.WaitOutput("qfleet node A:", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pb := b.Start(t, "B", bin, nodeArgs(b, "runner", "lan", "--insecure", "--config", cfgPath, "--join", seed)...)
	pc := c.Start(t, "C", bin, nodeArgs(c, "runner", "lan", "--insecure", "--config", cfgPath, "--join", seed)...)

	// rungs checks that the runners of hosts (in order) hold rungs 0..n-1 of
	// a ladder of n, at their rung's ε, and returns the ε by runner.
	rungs := func(hosts ...string) (map[string]float64, error) {
		st, err := labStatus[ladderStatus](a, httpAddr)
		if err != nil {
			return nil, err
		}
		var names []string
		for name := range st.Runners {
			for _, h := range hosts {
				if strings.HasPrefix(name, h+"/") {
					names = append(names, name)
				}
			}
		}
		sort.Strings(names) // B/runner-0, B/runner-1, C/runner-0, ...
		n := 2 * len(hosts)
		if len(names) != n {
			return nil, fmt.Errorf("runners of %v in A's /status: %v, want %d", hosts, names, n)
		}
		eps := map[string]float64{}
		for i, name := range names {
			r := st.Runners[name]
			want := actors.LadderEpsilon(0.4, 7, i, n)
			if r.LadderIndex != i || r.LadderCount != n || !closeTo(r.Epsilon, want) || !closeTo(r.LadderEpsilon, want) {
				return nil, fmt.Errorf("%s: rung %d of %d at ε %v (rung's ε %v), want rung %d of %d at ε %v", name, r.LadderIndex, r.LadderCount, r.Epsilon, r.LadderEpsilon, i, n, want)
			}
			eps[name] = r.Epsilon
		}
		return eps, nil
	}

	var eps map[string]float64
	pollWhile(t, learner, 60*time.Second, 250*time.Millisecond, "A to show B's and C's runners on one ladder of 4", func() (err error) {
		eps, err = rungs("B", "C")
		return err
	})
	distinct := map[float64]bool{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, e := range eps {
		distinct[e] = true
		lo, hi = min(lo, e), max(hi, e)
	}
	if len(distinct) != 4 || !closeTo(hi, 0.4) || !closeTo(lo, math.Pow(0.4, 8)) {
		t.Fatalf("ε of the four runners %v: want 4 distinct values from 0.4^8 to 0.4", eps)
	}
	t.Logf("one ladder of 4 after %v: %v", time.Since(start).Round(100*time.Millisecond), eps)

	// B leaves gracefully: C's runners move down to rungs 0 and 1 of 2.
	if err := pb.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	pollWhile(t, pc, 30*time.Second, 250*time.Millisecond, "C's runners to take rungs 0 and 1 of 2 after B left", func() (err error) {
		eps, err = rungs("C")
		return err
	})
	t.Logf("B left; C's runners on a ladder of 2 %v later: %v (test took %v)", time.Since(left).Round(100*time.Millisecond), eps, time.Since(start).Round(100*time.Millisecond))
	if strings.Contains(pc.Output(), "runner restarting") {
		t.Errorf("C's runners restarted:\n%s", pc.Output())
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
