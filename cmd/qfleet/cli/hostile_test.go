package cli

// The hostile-peer suite: a peer on runner host B sends what a hostile or
// buggy node would to learner host A (replay, learner, broadcaster) of a
// running three-host cluster (faults_test.go's layout): every crafted
// protoactor batch, protoactor's unimplemented unary methods, garbage on
// the gossip port over TCP and UDP, and 1,000 idle connections on each of
// A's ports. A must refuse and count each, log a few lines rather than one
// per message, and keep training with exact experience accounting.
//
// The peer runs inside B's namespace as a helper mode of the test binary:
//
//	<test binary> multihost-helper hostile probes REMOTE_ADDR
//	<test binary> multihost-helper hostile gossip GOSSIP_ADDR N
//	<test binary> multihost-helper hostile idle N ADDR...

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/messages"
)

func hostileHelper(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "probes":
		return hostileProbes(args[1])
	case len(args) == 3 && args[0] == "gossip":
		n, _ := strconv.Atoi(args[2])
		return gossipGarbage(args[1], n)
	case len(args) >= 3 && args[0] == "idle":
		n, _ := strconv.Atoi(args[1])
		return idleConnections(n, args[2:])
	}
	fmt.Fprintln(os.Stderr, "usage: hostile probes REMOTE_ADDR | gossip GOSSIP_ADDR N | idle N ADDR...")
	return 2
}

// hostileProbes sends every crafted batch to the replay on addr, each on a
// stream of its own, and prints "refused REASON" for each the node closed.
func hostileProbes(addr string) int {
	credit, _ := proto.Marshal(&messages.Credit{Transitions: 1})
	target := actor.NewPID(addr, actors.ReplayName)
	from := "203.0.113.66:7947" // any address: the peer announces what it likes
	failed := 0
	for _, p := range hostile.Probes(target, from, string(proto.MessageName(&messages.Credit{})), credit) {
		if err := hostile.Run(addr, from, p, 10*time.Second); err != nil {
			fmt.Printf("open %s: %v\n", p.Name, err)
			failed++
			continue
		}
		fmt.Printf("refused %s\n", p.Reason)
	}
	if err := hostile.CallUnimplemented(addr); err == nil {
		fmt.Println("open ListProcesses answered")
		failed++
	} else {
		fmt.Println("refused method")
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// gossipGarbage writes n garbage streams and n garbage packets to addr.
func gossipGarbage(addr string, n int) int {
	garbage := []byte("\x00\xff\x01garbage that is no memberlist message")
	for i := 0; i < n; i++ {
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			_, _ = c.Write(garbage)
			c.Close()
		} else {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if u, err := net.Dial("udp", addr); err == nil {
			_, _ = u.Write(garbage)
			u.Close()
		}
	}
	fmt.Println("gossip garbage sent")
	return 0
}

// idleConnections opens n TCP connections to each addr, says so, and holds
// them until killed.
func idleConnections(n int, addrs []string) int {
	var conns []net.Conn
	for _, a := range addrs {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", a, 5*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "connection %d to %s: %v\n", i, a, err)
				return 1
			}
			conns = append(conns, c)
		}
	}
	fmt.Printf("idle open %d\n", len(conns))
	select {}
}

// labHelper runs the hostile helper in h's namespace and returns its output.
func labHelper(t *testing.T, fc *faultCluster, host string, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := fc.lab.Host(host).Command(ctx, exe, append([]string{helperArg, "hostile"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("hostile %v from %s: %v\n%s", args, host, err, out)
	}
	return string(out)
}

// TestFaultHostilePeer: each hostile input leaves A training, is counted by
// reason on A's /metrics, and costs a few log lines.
func TestFaultHostilePeer(t *testing.T) {
	fc := startFaultCluster(t, faultOpts{target: 10000, maxSteps: 10_000_000})
	before, _ := fc.watch(2*time.Second, 200*time.Millisecond, nil, nil)
	aRemote := net.JoinHostPort(fc.a.Addr(), remotePort)

	out := labHelper(t, fc, "B", "probes", aRemote)
	want := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if reason, ok := strings.CutPrefix(line, "refused "); ok {
			want[reason]++
		}
	}
	labHelper(t, fc, "B", "gossip", net.JoinHostPort(fc.a.Addr(), gossipPort), "300")

	// 1,000 idle connections on each of A's ports, held while A trains.
	exe, _ := os.Executable()
	idle := fc.lab.Host("B").Start(t, "idle", exe, helperArg, "hostile", "idle", "1000",
		aRemote, net.JoinHostPort(fc.a.Addr(), gossipPort), fc.httpAddr)
	if err := idle.WaitOutput("idle open 3000", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	during, _ := fc.watch(3*time.Second, 200*time.Millisecond, nil, nil)
	if err := idle.Kill(); err != nil {
		t.Fatal(err)
	}
	after, _ := fc.watch(3*time.Second, 200*time.Millisecond, nil, nil)

	if learnerDone(fc.learner) {
		t.Fatalf("A exited: %v", fc.learner.Wait())
	}
	if !(before.Counters.EnvSteps < during.Counters.EnvSteps && during.Counters.EnvSteps < after.Counters.EnvSteps) ||
		after.Counters.LearnerUpdates <= before.Counters.LearnerUpdates {
		t.Errorf("A stopped training: env steps %d -> %d -> %d, updates %d -> %d", before.Counters.EnvSteps,
			during.Counters.EnvSteps, after.Counters.EnvSteps, before.Counters.LearnerUpdates, after.Counters.LearnerUpdates)
	}
	ms, err := getMetrics(fc.a, fc.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for reason, n := range want {
		got, _ := promValue(ms, "qfleet_remote_rejected_total", map[string]string{"reason": reason})
		if got != n {
			t.Errorf("qfleet_remote_rejected_total{reason=%q} = %v, want %v", reason, got, n)
		}
		total += n
	}
	refusedLines := strings.Count(fc.learner.Output(), "remote message refused")
	memberlistLines := strings.Count(fc.learner.Output(), "component=memberlist")
	t.Logf("HOSTILE probes=%v refused=%v env_steps=%d->%d->%d updates=%d->%d refused_log_lines=%d memberlist_log_lines=%d",
		len(want), total, before.Counters.EnvSteps, during.Counters.EnvSteps, after.Counters.EnvSteps,
		before.Counters.LearnerUpdates, after.Counters.LearnerUpdates, refusedLines, memberlistLines)
	if total < 16 {
		t.Errorf("only %v refusals counted for 16 probes:\n%s", total, out)
	}
	if refusedLines > len(want) {
		t.Errorf("%d refusal log lines for %d reasons: want at most one per reason", refusedLines, len(want))
	}
	if memberlistLines > 10 {
		t.Errorf("%d memberlist log lines after a garbage flood, want at most 10", memberlistLines)
	}
	checkAccounting(t, "hostile-peer", after, after, after)
	fc.stop()
}
