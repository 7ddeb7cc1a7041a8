package cli

// The fault lab: a three-host cluster of real 'qfleet node' processes in
// network namespaces (faults_test.go has the scenarios), what it reads of
// each node (/status) and the invariants every scenario checks.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/netlab"
)

var faultsFull = flag.Bool("faults", false,
	"run the fault-injection scenarios TestFault* in full (minutes; `make faults`)")

func requireFaults(t *testing.T) {
	t.Helper()
	if !*faultsFull {
		t.Skip("fault-injection scenario: runs in `make faults` (go test -run TestFault ./cmd/qfleet/ -args -faults)")
	}
	netlab.Require(t)
}

// faultStatus is A's /status with the accounting fields.
type faultStatus struct {
	Members  []string `json:"members"`
	Counters struct {
		EnvSteps           uint64 `json:"env_steps"`
		Episodes           uint64 `json:"episodes"`
		LearnerUpdates     uint64 `json:"learner_updates"`
		ExperienceSent     uint64 `json:"experience_sent"`
		ExperienceDropped  uint64 `json:"experience_dropped"`
		ExperienceLost     uint64 `json:"experience_lost"`
		ExperienceRejected uint64 `json:"experience_rejected"`
		// In flight to the replay when a runner's node went: settled lost.
		ExperienceLostDeparted uint64 `json:"experience_lost_departed"`
		ReplayInserted         uint64 `json:"replay_inserted"`
		ReplaySize             uint64 `json:"replay_size"`
	} `json:"counters"`
	Runners        map[string]actors.RunnerStatus   `json:"runners"`
	Departed       map[string]actors.DepartedRunner `json:"departed_runners"`
	WeightsVersion uint64                           `json:"weights_version"`
	Mean100        float64                          `json:"mean_return_100"`
	Solved         bool                             `json:"solved"`
}

// hostRunner returns the (single) runner of host in st, live or, while
// its node is declared gone, departed (ok is false then).
func (st faultStatus) hostRunner(host string) (actors.RunnerStatus, bool) {
	for name, r := range st.Runners {
		if strings.HasPrefix(name, host+"/") {
			return r, true
		}
	}
	for name, d := range st.Departed {
		if strings.HasPrefix(name, host+"/") {
			return d.RunnerStatus, false
		}
	}
	return actors.RunnerStatus{}, false
}

type faultOpts struct {
	target     float64
	maxSteps   int
	ckptDir    string
	ckptEvery  string
	runnerHTTP bool // B and C serve /metrics on their own host
	// replayHost puts the replay on a fourth host D (snapshots every 2 s
	// into its own checkpoint directory, /status on D); A keeps the learner
	// and the broadcaster.
	replayHost bool
	// slowB limits B's link with tbf to this rate (e.g. "2mbit").
	slowB string
	// latencyMs > 0 routes remote messaging to A and to B through a
	// toxiproxy that adds latencyMs ± jitterMs each way (A and B advertise
	// the proxy's port).
	latencyMs, jitterMs int
}

// faultCluster is one running A+B+C cluster.
type faultCluster struct {
	t        *testing.T
	bin      string
	lab      *netlab.Lab
	a        *netlab.Host
	learner  *netlab.Process
	runners  map[string]*netlab.Process
	httpAddr string
	aArgs    []string
	summary  string

	d          *netlab.Host // the replay's host, with replayHost
	replay     *netlab.Process
	dArgs      []string
	dDir       string // D's checkpoint directory (replay snapshots)
	replayHTTP string
}

func startFaultCluster(t *testing.T, o faultOpts) *faultCluster {
	t.Helper()
	hosts, aRoles, want := []string{"A", "B", "C"}, "replay,learner,broadcaster", "A,B,C"
	if o.replayHost {
		hosts, aRoles, want = append(hosts, "D"), "learner,broadcaster", "A,B,C,D"
	}
	fc := &faultCluster{t: t, bin: qfleetBinary(t), lab: netlab.New(t, hosts...), runners: map[string]*netlab.Process{}}
	fc.a = fc.lab.Host("A")
	if o.slowB != "" {
		// burst 32 kbit (4000 B, > 1 MTU); queue bounded at 400 ms.
		if err := fc.lab.LimitLink("B", o.slowB, "32kbit", "400ms"); err != nil {
			t.Fatal(err)
		}
	}
	advertise := map[string][]string{}
	if o.latencyMs > 0 {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"A", "B"} {
			h := fc.lab.Host(name)
			p := h.Start(t, "proxy"+name, exe, helperArg, "proxy", net.JoinHostPort(h.Addr(), proxyPort), net.JoinHostPort(h.Addr(), remotePort),
				strconv.Itoa(o.latencyMs), strconv.Itoa(o.jitterMs))
			if err := p.WaitOutput("latency", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			advertise[name] = []string{"--advertise", net.JoinHostPort(h.Addr(), proxyPort)}
		}
	}
	fc.httpAddr = net.JoinHostPort(fc.a.Addr(), httpPort)
	fc.summary = filepath.Join(t.TempDir(), "A.json")
	fc.aArgs = nodeArgs(fc.a, aRoles, "lan", "--insecure",
		"--target-return", fmt.Sprint(o.target), "--max-steps", strconv.Itoa(o.maxSteps),
		"--summary", fc.summary, "--http", fc.httpAddr, "--run-dir", filepath.Join(t.TempDir(), "run"))
	fc.aArgs = append(fc.aArgs, advertise["A"]...)
	if o.ckptDir != "" {
		// The replay snapshots too, so a restarted A goes on with its table.
		fc.aArgs = append(fc.aArgs, "--checkpoint-dir", o.ckptDir, "--checkpoint-every", o.ckptEvery, "--replay-snapshot-every", o.ckptEvery)
	}
	fc.learner = fc.a.Start(t, "A", fc.bin, fc.aArgs...)
	if err := fc.learner.WaitOutput("qfleet node A:", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	seed := net.JoinHostPort(fc.a.Addr(), gossipPort)
	if o.replayHost {
		fc.d = fc.lab.Host("D")
		fc.replayHTTP = net.JoinHostPort(fc.d.Addr(), httpPort)
		fc.dDir = filepath.Join(t.TempDir(), "D")
		fc.dArgs = nodeArgs(fc.d, "replay", "lan", "--insecure", "--join", seed, "--http", fc.replayHTTP,
			"--checkpoint-dir", fc.dDir, "--replay-snapshot-every", "2s")
		fc.replay = fc.d.Start(t, "D", fc.bin, fc.dArgs...)
	}
	for _, name := range []string{"B", "C"} {
		h := fc.lab.Host(name)
		args := append(nodeArgs(h, "runner", "lan", "--insecure", "--join", seed), advertise[name]...)
		if o.runnerHTTP {
			args = append(args, "--http", net.JoinHostPort(h.Addr(), httpPort))
		}
		fc.runners[name] = h.Start(t, name, fc.bin, args...)
	}
	// Training is underway: A sees A, B, C, has episodes from both runners,
	// and the learner is updating.
	pollWhile(t, fc.learner, 60*time.Second, 300*time.Millisecond, "cluster A,B,C training", func() error {
		st, err := fc.status()
		if err != nil {
			return err
		}
		m := append([]string(nil), st.Members...)
		sort.Strings(m)
		if strings.Join(m, ",") != want {
			return fmt.Errorf("members %v", st.Members)
		}
		for _, h := range []string{"B", "C"} {
			if r, ok := st.hostRunner(h); !ok || r.Episodes == 0 {
				return fmt.Errorf("no episodes from %s yet", h)
			}
		}
		if st.Counters.LearnerUpdates < 200 {
			return fmt.Errorf("learner updates %d < 200", st.Counters.LearnerUpdates)
		}
		return nil
	})
	return fc
}

func (fc *faultCluster) status() (faultStatus, error) {
	return fc.statusOf(fc.a, fc.httpAddr)
}

// replayStatus is the /status of the node with the replay (A, or D).
func (fc *faultCluster) replayStatus() (faultStatus, error) {
	if fc.d == nil {
		return fc.status()
	}
	return fc.statusOf(fc.d, fc.replayHTTP)
}

func (fc *faultCluster) statusOf(h *netlab.Host, addr string) (faultStatus, error) {
	return labStatus[faultStatus](h, addr)
}

// runnerVersion is the full 64-bit version (term<<40 | count) a runner node
// acts on, from qfleet_weights_term and qfleet_weights_publication on its
// /metrics.
func (fc *faultCluster) runnerVersion(host string) (uint64, error) {
	h := fc.lab.Host(host)
	ms, err := getMetrics(h, net.JoinHostPort(h.Addr(), httpPort))
	if err != nil {
		return 0, err
	}
	term, okT := promValue(ms, "qfleet_weights_term", nil)
	n, okN := promValue(ms, "qfleet_weights_publication", nil)
	if !okT || !okN {
		return 0, fmt.Errorf("%s: no qfleet_weights_term or qfleet_weights_publication", host)
	}
	return uint64(term)<<40 | uint64(n), nil
}

// pauseMeter follows learner_updates and keeps the longest time it did not
// move (the learner's longest pause, at the polling resolution).
type pauseMeter struct {
	updates  uint64
	since    time.Time
	maxPause time.Duration
}

func (p *pauseMeter) observe(st faultStatus) {
	now := time.Now()
	if p.since.IsZero() {
		p.updates, p.since = st.Counters.LearnerUpdates, now
		return
	}
	if st.Counters.LearnerUpdates > p.updates {
		p.updates, p.since = st.Counters.LearnerUpdates, now
		return
	}
	p.maxPause = max(p.maxPause, now.Sub(p.since))
}

// watch polls A's /status every interval for at most d, feeding the pause
// meter, until until returns true. It returns the last good status and
// whether until was satisfied.
func (fc *faultCluster) watch(d, interval time.Duration, pm *pauseMeter, until func(st faultStatus) bool) (faultStatus, bool) {
	var last faultStatus
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		st, err := fc.status()
		if err == nil {
			last = st
			if pm != nil {
				pm.observe(st)
			}
			if until != nil && until(st) {
				return st, true
			}
		} else if learnerDone(fc.learner) {
			fc.t.Fatalf("A exited during the scenario (%v)", fc.learner.Wait())
		}
		time.Sleep(interval)
	}
	return last, until == nil
}

// untilDone polls A's /status every interval, passing each to observe (if
// not nil), until A exits (it reached its target); it fails the test after
// d. It returns the last status seen.
func (fc *faultCluster) untilDone(d, interval time.Duration, observe func(faultStatus)) faultStatus {
	var last faultStatus
	deadline := time.After(d)
	for {
		select {
		case <-fc.learner.Done():
			return last
		case <-deadline:
			fc.t.Fatalf("A did not reach its target within %v (mean100 %.1f)", d, last.Mean100)
		case <-time.After(interval):
			if st, err := fc.status(); err == nil {
				last = st
				if observe != nil {
					observe(st)
				}
			}
		}
	}
}

// finishSolved checks the end of a run that A finished by reaching its
// target: A exited 0 with a solved summary, the runner nodes ended, and the
// weights versions they acted on never went backwards. It returns A's summary.
func (fc *faultCluster) finishSolved(vw *versionWatch) qfleet.Summary {
	t := fc.t
	t.Helper()
	if err := fc.learner.Wait(); err != nil {
		t.Fatalf("A exited with %v, want 0", err)
	}
	var sum qfleet.Summary
	if data, err := os.ReadFile(fc.summary); err != nil {
		t.Errorf("A's summary: %v", err)
	} else if err := json.Unmarshal(data, &sum); err != nil || !sum.Solved {
		t.Errorf("A's summary: solved=%v (err %v), want solved\n%s", sum.Solved, err, data)
	}
	fc.waitRunnersEnd()
	if back := vw.close(); len(back) > 0 {
		t.Errorf("weights versions went backwards on runner nodes: %v", back)
	}
	return sum
}

// stop ends the run with SIGTERM on A (a clean shutdown: A leaves, so B and
// C end by themselves) unless A already finished, and checks that every
// node exits 0.
func (fc *faultCluster) stop() {
	t := fc.t
	t.Helper()
	signalled := false
	if !learnerDone(fc.learner) {
		if err := fc.learner.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		signalled = true
	}
	select {
	case <-fc.learner.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("A did not exit within 60 s of SIGTERM")
	}
	// An interrupted node exits 1 after its clean shutdown ("interrupted").
	var ee *exec.ExitError
	if err := fc.learner.Wait(); err != nil && !(signalled && errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(fc.learner.Output(), "terminated: stopping")) {
		t.Errorf("A exited with %v, want 0 (or 1 after a clean SIGTERM stop)", err)
	}
	fc.waitRunnersEnd()
}

func (fc *faultCluster) waitRunnersEnd() {
	t := fc.t
	t.Helper()
	names := []string{"B", "C"}
	if fc.replay != nil {
		names = append(names, "D")
	}
	for _, name := range names {
		p := fc.runners[name]
		if name == "D" {
			p = fc.replay
		}
		select {
		case <-p.Done():
		case <-time.After(20 * time.Second):
			t.Errorf("%s still running 20 s after A left", name)
			continue
		}
		if err := p.Wait(); err != nil {
			t.Errorf("%s exited with %v, want 0", name, err)
		}
	}
}

// checkAccounting checks the experience invariant on A's last /status:
//
//	Σ sent = inserted + rejected + lost + in_flight
//
// sent (and dropped) are the runners' cumulative counters as of their last
// progress report; inserted, rejected and lost are the replay's, live. lost
// is exact: every batch says how many transitions its runner sent before it,
// and the replay counts what it never received of those (batches lost on a
// cut link, or held by a replay that died). So in_flight = Σ sent − inserted
// − rejected − lost is the experience really in flight plus a reporting lag,
// per runner:
//
//   - at most CreditWindow (256) transitions are sent and not yet received
//     by the replay, or not yet shown lost by a later batch;
//   - sent is reported every ProgressEverySteps (500) env steps, checked
//     after a chunk of StepsPerChunk (64): the replay may already have
//     inserted up to 500+64 steps' transitions plus what sat in the outbox
//     (OutboxLimit 64) and the batch being built (SendBatch 32 + NStep 3)
//     at the last report, that the report does not count yet — so in_flight
//     can be negative by that much.
//
// Hence, per runner, −(500+64+64+32+3) ≤ in_flight ≤ 256. Anything outside N
// times that is unaccounted experience.
//
// rsBefore and rsAfter are the status of the replay's node read just before
// and just after st (A's own st twice, unless the replay has a host of its
// own): inserted, rejected and lost are read there. Between two HTTP reads
// on a loaded machine the runners insert hundreds of transitions, so the
// replay's counts at st's moment are bracketed by the two reads: the check
// fails only if no count in between satisfies the invariant.
func checkAccounting(t *testing.T, scenario string, st, rsBefore, rsAfter faultStatus) {
	t.Helper()
	cfg := actors.DefaultConfig()
	n := int64(len(st.Runners))
	lo := -n * int64(cfg.ProgressEverySteps+cfg.StepsPerChunk+cfg.OutboxLimit+cfg.SendBatch+cfg.NStep)
	hi := n * int64(cfg.CreditWindow)
	// sent and dropped include the departed runners' (settled: what they
	// sent is known exactly, what they had in flight is lost_departed), so
	// only live runners have experience in flight.
	sent, dropped, lostDeparted := st.Counters.ExperienceSent, st.Counters.ExperienceDropped, int64(st.Counters.ExperienceLostDeparted)
	accounted := func(rs faultStatus) int64 {
		return int64(rs.Counters.ReplayInserted) + int64(rs.Counters.ExperienceRejected) + int64(rs.Counters.ExperienceLost) + lostDeparted
	}
	// The replay's counts only grow (a late batch moves lost to inserted),
	// so in flight at st's moment lies between these two.
	maxInFlight := int64(sent) - accounted(rsBefore)
	minInFlight := int64(sent) - accounted(rsAfter)
	rs := rsAfter
	t.Logf("FAULT accounting scenario=%s runners=%d departed=%d sent=%d inserted=%d rejected=%d lost=%d lost_departed=%d dropped=%d in_flight=%d..%d bound=[%d,%d]",
		scenario, n, len(st.Departed), sent, rs.Counters.ReplayInserted, rs.Counters.ExperienceRejected, rs.Counters.ExperienceLost, lostDeparted, dropped, minInFlight, maxInFlight, lo, hi)
	if maxInFlight < lo || minInFlight > hi {
		t.Errorf("experience accounting: sent %d = inserted %d + rejected %d + lost %d + lost with departed runners %d + in flight %d..%d: in flight outside [%d, %d] (unaccounted experience)",
			sent, rs.Counters.ReplayInserted, rs.Counters.ExperienceRejected, rs.Counters.ExperienceLost, lostDeparted, minInFlight, maxInFlight, lo, hi)
	}
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
