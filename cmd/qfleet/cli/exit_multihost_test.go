package cli

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster/netlab"
)

// TestLearnerExitsAfterRunnerNodeLeft: host A runs replay + learner +
// broadcaster, B the runner. B stops; A's remote then dials B's departed
// address once more, and protoactor's endpoint writer retries the dial
// 5 × 2 s. A, stopped while it does, exits within seconds: its shutdown
// does not wait for those retries (it took 7-10 s when it did).
func TestLearnerExitsAfterRunnerNodeLeft(t *testing.T) {
	netlab.Require(t)
	bin := qfleetBinary(t)
	lab := netlab.New(t, "A", "B")
	a, b := lab.Host("A"), lab.Host("B")
	learner := a.Start(t, "A", bin, nodeArgs(a, "replay,learner,broadcaster", "lan", "--insecure",
		"--max-steps", "10000000", "--target-return", "1e9", "--run-dir", filepath.Join(t.TempDir(), "run"))...)
	if err := learner.WaitOutput("qfleet node A:", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	runner := b.Start(t, "B", bin, nodeArgs(b, "runner", "lan", "--insecure", "--join", net.JoinHostPort(a.Addr(), gossipPort))...)
	if err := learner.WaitOutput("steps=", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := runner.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-runner.Done()
	if err := learner.WaitOutput("EndpointWriter failed to connect", 30*time.Second); err != nil {
		t.Fatalf("A never dialed B's departed address, the case this test is for: %v", err)
	}
	stopAt := time.Now()
	if err := learner.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-learner.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("A still runs 30 s after SIGTERM:\n%s", learner.Output())
	}
	if d := time.Since(stopAt); d > 5*time.Second {
		t.Errorf("A took %v to exit after SIGTERM, want < 5 s:\n%s", d.Round(100*time.Millisecond), learner.Output())
	}
	t.Logf("A exited %v after SIGTERM", time.Since(stopAt).Round(10*time.Millisecond))
}
