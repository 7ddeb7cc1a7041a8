package cli

// Fault-injection scenarios (issue 4): real `qfleet node` processes in the
// network namespaces of a cluster/netlab Lab, the same three-host layout as
// multihost_test.go (A = replay+learner+broadcaster, B and C = one runner
// each, profile lan). Each scenario injects one fault, measures what it
// cost, and checks the suite's invariants:
//
//   - the other nodes keep running;
//   - experience accounting holds at the end (see checkAccounting);
//   - weights versions seen by runners never go backwards;
//   - training progresses after the fault heals.
//
// Every measurement is logged as one line starting with "FAULT " followed
// by key=value pairs, so the numbers can be copied into RELIABILITY.md.
//
// The scenarios (results in RELIABILITY.md):
//
//   - TestFaultRunnerHostKilled: kill -9 runner host B;
//   - TestFaultRunnerHostStopped: SIGSTOP B for 20 s, then SIGCONT;
//   - TestFaultRunnerLinkCut: cut B's link for 20 s, then heal;
//   - TestFaultLearnerHostKilled: kill -9 A, restart it with --resume;
//   - TestFaultReplayHostKilled: the replay on a host D of its own, kill -9
//     D, restart it with --resume (from its snapshot);
//   - TestFaultSlowLinkWithLatency: B's link at 2 Mbit/s (tbf) and 100±20 ms
//     each way added by a toxiproxy in front of A's and B's remote ports;
//   - TestFaultHostilePeer (hostile_test.go): a hostile peer on B sends A
//     crafted protoactor batches, gossip garbage and 1,000 idle connections
//     per port;
//   - TestFaultSweepNodeFrozen (sweep_multihost_test.go): SIGSTOP a sweep's
//     trial node mid-trial; the trial is rerun on the other node, recorded
//     once.
//
// They run with -faults (`make faults`); the fast subset of the default
// `make test` is the link cut with an 8 s cut, the replay-host kill and the
// hostile peer (~20-30 s each).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
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

// isolationStory is the shared story of scenarios 1 and 2: B is cut off
// from the cluster (by fault) for d, then restored (by heal).
func isolationStory(t *testing.T, scenario string, d time.Duration, fault, heal func(fc *faultCluster) error) {
	fc := startFaultCluster(t, faultOpts{target: 10000, maxSteps: 10_000_000})
	before, _ := fc.watch(3*time.Second, 150*time.Millisecond, nil, nil)
	bBefore, _ := before.hostRunner("B")
	t.Logf("underway: env steps %d, learner updates %d, weights v%d, mean100 %.1f", before.Counters.EnvSteps, before.Counters.LearnerUpdates, publication(before.WeightsVersion), before.Mean100)

	// The fault. A must notice B is gone (memberlist drops it), and the
	// learner must go on with C's experience without pausing.
	if err := fault(fc); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now()
	pm := &pauseMeter{}
	var detect time.Duration
	during, _ := fc.watch(d, 150*time.Millisecond, pm, func(st faultStatus) bool {
		if detect == 0 && !slices.Contains(st.Members, "B") {
			detect = time.Since(faultAt)
		}
		return false
	})
	if detect == 0 {
		t.Logf("A did not drop B from its members within the %v fault (members %v)", d, during.Members)
	}
	for name, p := range fc.runners {
		if learnerDone(p) {
			t.Errorf("%s exited during the fault: %v", name, p.Wait())
		}
	}
	cDuring, _ := during.hostRunner("C")
	cBefore, _ := before.hostRunner("C")
	if cDuring.EnvSteps <= cBefore.EnvSteps {
		t.Errorf("C's env steps did not grow during the fault (%d -> %d)", cBefore.EnvSteps, cDuring.EnvSteps)
	}

	// Heal. B rejoins, acts on weights newer than any published before the
	// heal, and its experience flows again.
	if err := heal(fc); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	atHeal := during.WeightsVersion
	bAtHeal, _ := during.hostRunner("B")
	var rejoin, current, flowing time.Duration
	after, ok := fc.watch(60*time.Second, 150*time.Millisecond, pm, func(st faultStatus) bool {
		if rejoin == 0 && slices.Contains(st.Members, "B") {
			rejoin = time.Since(healAt)
		}
		r, _ := st.hostRunner("B")
		if current == 0 && r.WeightsVersion > atHeal && r.LastReport.After(healAt) {
			current = time.Since(healAt)
		}
		if flowing == 0 && r.EnvSteps > bAtHeal.EnvSteps {
			flowing = time.Since(healAt)
		}
		return rejoin > 0 && current > 0 && flowing > 0
	})
	if !ok {
		t.Errorf("60 s after the heal: B rejoined after %v, on current weights after %v, experience flowing after %v (0 = not yet); B's runner: %+v",
			rejoin, current, flowing, func() any { r, _ := after.hostRunner("B"); return r }())
	}
	// Training progresses after: 10 s more, learner updates and env steps grow.
	end, _ := fc.watch(10*time.Second, 150*time.Millisecond, pm, nil)
	if end.Counters.LearnerUpdates <= after.Counters.LearnerUpdates || end.Counters.EnvSteps <= after.Counters.EnvSteps {
		t.Errorf("no progress after recovery: updates %d -> %d, env steps %d -> %d",
			after.Counters.LearnerUpdates, end.Counters.LearnerUpdates, after.Counters.EnvSteps, end.Counters.EnvSteps)
	}
	bEnd, _ := end.hostRunner("B")
	t.Logf("FAULT %s fault=%v detect=%s rejoin=%s current_weights=%s experience_flowing=%s learner_max_pause=%s updates=%d->%d->%d env_steps=%d->%d->%d b_env_steps=%d->%d->%d b_dropped=%d b_lost=%d mean100=%.1f->%.1f",
		scenario, d, ms(detect), ms(rejoin), ms(current), ms(flowing), ms(pm.maxPause),
		before.Counters.LearnerUpdates, after.Counters.LearnerUpdates, end.Counters.LearnerUpdates,
		before.Counters.EnvSteps, after.Counters.EnvSteps, end.Counters.EnvSteps,
		bBefore.EnvSteps, bAtHeal.EnvSteps, bEnd.EnvSteps, bEnd.ExperienceDropped, bEnd.ExperienceLost,
		before.Mean100, end.Mean100)
	if pm.maxPause > 2*time.Second {
		t.Errorf("learner paused %v, want at most 2 s", pm.maxPause)
	}
	if current > 5*time.Second {
		t.Errorf("B acts on current weights %v after the heal, want within 5 s", current)
	}
	checkAccounting(t, scenario, end, end, end)
	fc.stop()
}

// TestFaultRunnerHostStopped (scenario 1): B's process is frozen with
// SIGSTOP for 20 s, then continued. Invariants: A drops (or keeps) B
// without the learner pausing more than 2 s; C keeps running; after SIGCONT
// B rejoins and acts on current weights within 5 s; training progresses;
// experience accounting holds.
func TestFaultRunnerHostStopped(t *testing.T) {
	requireFaults(t)
	isolationStory(t, "runner-host-stopped", 20*time.Second,
		func(fc *faultCluster) error { return fc.runners["B"].Signal(syscall.SIGSTOP) },
		func(fc *faultCluster) error { return fc.runners["B"].Signal(syscall.SIGCONT) })
}

// TestFaultRunnerLinkCut (scenario 2): B's link is cut (packets silently
// dropped) for 20 s, then healed. Same invariants as scenario 1. Without
// -faults the cut lasts 8 s: the fast variant of `make test`.
func TestFaultRunnerLinkCut(t *testing.T) {
	netlab.Require(t)
	d := 8 * time.Second
	if *faultsFull {
		d = 20 * time.Second
	}
	isolationStory(t, "runner-link-cut", d,
		func(fc *faultCluster) error { return fc.lab.CutLink("B") },
		func(fc *faultCluster) error { return fc.lab.HealLink("B") })
}

// versionWatch polls the runner nodes' weights versions and records
// any step backwards (full 64-bit versions: a new term is higher).
type versionWatch struct {
	mu        sync.Mutex
	max       map[string]uint64
	backwards []string
	stop      chan struct{}
	done      chan struct{}
}

func watchRunnerVersions(fc *faultCluster, hosts ...string) *versionWatch {
	w := &versionWatch{max: map[string]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			for _, h := range hosts {
				v, err := fc.runnerVersion(h)
				if err != nil {
					continue // not up yet, or ended
				}
				w.mu.Lock()
				if v < w.max[h] {
					w.backwards = append(w.backwards, fmt.Sprintf("%s: %#x after %#x", h, v, w.max[h]))
				}
				w.max[h] = max(w.max[h], v)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *versionWatch) maxOf(h string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max[h]
}

func (w *versionWatch) close() []string {
	close(w.stop)
	<-w.done
	return w.backwards
}

// TestFaultLearnerHostKilled (scenario 3): A checkpoints every 2 s; after
// two checkpoints A is killed with SIGKILL and restarted with --resume
// (same name, addresses and checkpoint directory). Invariants: B and C see
// A as failed, not left, and keep running; A publishes weights newer than
// any before the kill within 30 s of the restart; the versions the runners
// act on never go backwards; learner updates resume from the checkpoint's;
// the run still reaches 195; experience accounting holds over both lives of
// A.
func TestFaultLearnerHostKilled(t *testing.T) {
	requireFaults(t)
	dir := t.TempDir()
	fc := startFaultCluster(t, faultOpts{target: 195, maxSteps: 400_000, ckptDir: dir, ckptEvery: "2s", runnerHTTP: true})
	vw := watchRunnerVersions(fc, "B", "C")
	var before faultStatus
	pollWhile(t, fc.learner, 30*time.Second, 200*time.Millisecond, "two checkpoints", func() error {
		st, err := fc.status()
		if err == nil {
			before = st
		}
		if _, err := os.Stat(filepath.Join(dir, actors.CheckpointFile+".1")); err != nil {
			return err
		}
		return err
	})
	// Keep A's status as close to the kill as possible.
	if st, err := fc.status(); err == nil {
		before = st
	}
	if err := fc.learner.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-fc.learner.Done()
	ckpt, skipped, err := actors.ReadLatestCheckpoint(dir)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("latest checkpoint: %v (skipped %v)", err, skipped)
	}
	t.Logf("A killed at env steps %d, learner updates %d, weights %#x (term %d, v%d), mean100 %.1f; checkpoint: updates %d, weights %#x",
		before.Counters.EnvSteps, before.Counters.LearnerUpdates, before.WeightsVersion, before.WeightsVersion>>40, publication(before.WeightsVersion),
		before.Mean100, ckpt.GetLearnerUpdates(), ckpt.GetWeightsVersion())

	// B and C see A as failed, not left: they keep running.
	time.Sleep(5 * time.Second)
	for name, p := range fc.runners {
		if learnerDone(p) {
			t.Fatalf("%s ended after A was killed (%v): a failed learner must not end the runners\n%s", name, p.Wait(), p.Output())
		}
	}
	maxBefore := max(before.WeightsVersion, vw.maxOf("B"), vw.maxOf("C"))

	// Restart A with --resume.
	fc.learner = fc.a.Start(t, "A2", fc.bin, append(append([]string(nil), fc.aArgs...), "--resume")...)
	restartAt := time.Now()
	var first faultStatus
	pollWhile(t, fc.learner, 60*time.Second, 150*time.Millisecond, "A to publish weights newer than before the kill", func() error {
		st, err := fc.status()
		if err != nil {
			return err
		}
		if first.WeightsVersion == 0 {
			first = st
		}
		if st.WeightsVersion <= maxBefore {
			return fmt.Errorf("A publishes %#x, not newer than %#x", st.WeightsVersion, maxBefore)
		}
		return nil
	})
	publishing := time.Since(restartAt)
	if first.Counters.LearnerUpdates < ckpt.GetLearnerUpdates() {
		t.Errorf("learner updates after the restart %d < the checkpoint's %d", first.Counters.LearnerUpdates, ckpt.GetLearnerUpdates())
	}
	var runnersCurrent time.Duration
	pollWhile(t, fc.learner, 60*time.Second, 200*time.Millisecond, "B and C to act on the new term", func() error {
		for _, h := range []string{"B", "C"} {
			if v := vw.maxOf(h); v <= maxBefore {
				return fmt.Errorf("%s acts on %#x", h, v)
			}
		}
		return nil
	})
	runnersCurrent = time.Since(restartAt)
	var rejoined time.Duration
	pollWhile(t, fc.learner, 60*time.Second, 200*time.Millisecond, "experience from B and C in the new A", func() error {
		st, err := fc.status()
		if err != nil {
			return err
		}
		for _, h := range []string{"B", "C"} {
			if r, ok := st.hostRunner(h); !ok || r.EnvSteps == 0 {
				return fmt.Errorf("no progress from %s yet", h)
			}
		}
		return nil
	})
	rejoined = time.Since(restartAt)

	// The run goes on to the target.
	last := fc.untilDone(5*time.Minute, 500*time.Millisecond, nil)
	sum := fc.finishSolved(vw)
	t.Logf("FAULT learner-host-killed restart_after_kill=%s publishing_newer=%s runners_on_new_term=%s runners_reporting=%s updates_before_kill=%d checkpoint_updates=%d updates_after_restart=%d updates_lost=%d version_before=%#x version_first_new=%#x final_updates=%d mean100=%.1f->%.1f solved=%v",
		ms(restartAt.Sub(killedAt)), ms(publishing), ms(runnersCurrent), ms(rejoined),
		before.Counters.LearnerUpdates, ckpt.GetLearnerUpdates(), first.Counters.LearnerUpdates,
		int64(before.Counters.LearnerUpdates)-int64(ckpt.GetLearnerUpdates()),
		maxBefore, first.WeightsVersion, last.Counters.LearnerUpdates, before.Mean100, sum.MeanReturn100, sum.Solved)
	if publishing > 30*time.Second {
		t.Errorf("A published newer weights %v after the restart, want within 30 s", publishing)
	}
	// The killed A's replay took its insertions with it: add them back, as
	// last seen, to check that nothing else went unaccounted.
	checkAccounting(t, "learner-host-killed", last, last, last)
}

// TestFaultRunnerHostKilled: B's process is killed with SIGKILL and never
// comes back. Invariants: A drops B within 10 s (the lan profile's bound),
// the learner never pauses more than 2 s for it, C keeps running and
// training progresses; experience accounting holds with B's last report.
// (TestMultiHostElasticRunnerHostKilled tells the elastic-membership side of
// this story; this one adds the accounting.)
func TestFaultRunnerHostKilled(t *testing.T) {
	requireFaults(t)
	fc := startFaultCluster(t, faultOpts{target: 10000, maxSteps: 10_000_000})
	before, _ := fc.watch(3*time.Second, 150*time.Millisecond, nil, nil)
	if err := fc.runners["B"].Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	pm := &pauseMeter{}
	var detect time.Duration
	fc.watch(20*time.Second, 150*time.Millisecond, pm, func(st faultStatus) bool {
		if detect == 0 && !slices.Contains(st.Members, "B") {
			detect = time.Since(killedAt)
		}
		return detect > 0 && time.Since(killedAt) > 10*time.Second
	})
	mid, _ := fc.watch(time.Second, 150*time.Millisecond, pm, nil)
	end, _ := fc.watch(10*time.Second, 150*time.Millisecond, pm, nil)
	if learnerDone(fc.runners["C"]) {
		t.Errorf("C exited after B was killed: %v", fc.runners["C"].Wait())
	}
	cMid, _ := mid.hostRunner("C")
	cEnd, _ := end.hostRunner("C")
	if end.Counters.LearnerUpdates <= mid.Counters.LearnerUpdates || cEnd.EnvSteps <= cMid.EnvSteps {
		t.Errorf("no progress after B died: updates %d -> %d, C's env steps %d -> %d",
			mid.Counters.LearnerUpdates, end.Counters.LearnerUpdates, cMid.EnvSteps, cEnd.EnvSteps)
	}
	// B's runner has left /status's runners for the departed list.
	_, live := end.hostRunner("B")
	bGone, departed := end.Departed["B/runner-0"]
	if live || !departed || bGone.Why != "failed" {
		t.Errorf("B's runner: live %v, departed %v (why %q); want it departed as failed", live, departed, bGone.Why)
	}
	t.Logf("FAULT runner-host-killed detect=%s learner_max_pause=%s updates=%d->%d env_steps=%d->%d b_last_sent=%d b_received=%d lost_departed=%d mean100=%.1f->%.1f",
		ms(detect), ms(pm.maxPause), before.Counters.LearnerUpdates, end.Counters.LearnerUpdates,
		before.Counters.EnvSteps, end.Counters.EnvSteps, bGone.ExperienceSent, bGone.ExperienceReceived,
		end.Counters.ExperienceLostDeparted, before.Mean100, end.Mean100)
	if detect == 0 || detect > 10*time.Second {
		t.Errorf("B dropped from A's members after %v (0: not within 20 s), want within 10 s", detect)
	}
	if pm.maxPause > 2*time.Second {
		t.Errorf("learner paused %v after B died, want at most 2 s", pm.maxPause)
	}
	checkAccounting(t, "runner-host-killed", end, end, end)
	fc.runners["B"] = fc.runners["C"] // B is gone: only C must end with A
	fc.stop()
}

// proxyPort is where a fault proxy listens in front of a node's remote port.
const proxyPort = "7950"

// TestFaultSlowLinkWithLatency: B's link is limited to 2 Mbit/s (tbf) and
// every remote connection to A and to B passes through a toxiproxy that adds
// 100 ± 20 ms each way (C's traffic to A too). Invariants: the run still
// reaches 195; B keeps acting on recent weights (its lag in publications is
// measured); weights versions on B never go backwards; experience accounting
// holds.
func TestFaultSlowLinkWithLatency(t *testing.T) {
	requireFaults(t)
	start := time.Now()
	fc := startFaultCluster(t, faultOpts{target: 195, maxSteps: 400_000, runnerHTTP: true, slowB: "2mbit", latencyMs: 100, jitterMs: 20})
	vw := watchRunnerVersions(fc, "B", "C")
	var maxLag uint64
	last := fc.untilDone(5*time.Minute, 300*time.Millisecond, func(st faultStatus) {
		if b, ok := st.hostRunner("B"); ok && b.WeightsVersion > 0 && publication(st.WeightsVersion) > publication(b.WeightsVersion) {
			maxLag = max(maxLag, publication(st.WeightsVersion)-publication(b.WeightsVersion))
		}
	})
	sum := fc.finishSolved(vw)
	b, _ := last.hostRunner("B")
	c, _ := last.hostRunner("C")
	t.Logf("FAULT slow-link-latency solved=%v env_steps=%d wall=%s learner_updates=%d b_env_steps=%d c_env_steps=%d b_max_lag_publications=%d (polled, publish every %d updates) b_dropped=%d",
		sum.Solved, sum.EnvSteps, ms(time.Since(start)), last.Counters.LearnerUpdates, b.EnvSteps, c.EnvSteps, maxLag, actors.DefaultConfig().PublishEvery, b.ExperienceDropped)
	checkAccounting(t, "slow-link-latency", last, last, last)
}

// TestFaultReplayHostKilled: the replay runs on a host of its own, D, and
// snapshots every 2 s. D is killed with SIGKILL and restarted with --resume
// 5 s later. Invariants: A (learner) and the runners keep running while D is
// gone; the restarted replay starts from its snapshot (not empty); the
// learner trains again; the experience that died with D since its snapshot,
// and what was sent while it was down, is counted lost exactly (the
// accounting holds over both lives of D); training progresses afterwards.
//
// It runs in the default `make test` too (~30 s): replay snapshots across
// real processes are worth checking on every change.
func TestFaultReplayHostKilled(t *testing.T) {
	netlab.Require(t)
	fc := startFaultCluster(t, faultOpts{target: 10000, maxSteps: 10_000_000, replayHost: true})
	// Underway, and D has written a snapshot.
	var before faultStatus
	pollWhile(t, fc.replay, 30*time.Second, 200*time.Millisecond, "a replay snapshot on D", func() error {
		_, err := os.Stat(filepath.Join(fc.dDir, actors.SnapshotFile))
		return err
	})
	before, _ = fc.watch(3*time.Second, 150*time.Millisecond, nil, nil)
	rBefore, err := fc.replayStatus()
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.replay.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-fc.replay.Done()
	var detect time.Duration
	fc.watch(10*time.Second, 150*time.Millisecond, nil, func(st faultStatus) bool {
		if detect == 0 && !slices.Contains(st.Members, "D") {
			detect = time.Since(killedAt)
		}
		return detect > 0 && time.Since(killedAt) > 5*time.Second
	})
	for name, p := range map[string]*netlab.Process{"A": fc.learner, "B": fc.runners["B"], "C": fc.runners["C"]} {
		if learnerDone(p) {
			t.Fatalf("%s ended after the replay host was killed (%v)\n%s", name, p.Wait(), p.Output())
		}
	}
	atRestart, _ := fc.status()
	fc.replay = fc.d.Start(t, "D2", fc.bin, append(append([]string(nil), fc.dArgs...), "--resume")...)
	restartAt := time.Now()
	// D's /status can answer before its replay actor has started; the
	// replay logs (at warn level) once it has restored its snapshot.
	var restored faultStatus
	pollWhile(t, fc.replay, 30*time.Second, 150*time.Millisecond, "the restarted replay to restore its snapshot", func() error {
		if !strings.Contains(fc.replay.Output(), "replay restored from snapshot") {
			return errors.New("no \"replay restored from snapshot\" in D's log yet")
		}
		st, err := fc.replayStatus()
		if err == nil {
			restored = st
		}
		return err
	})
	if restored.Counters.ReplaySize == 0 {
		t.Errorf("the restarted replay is empty: not restored from its snapshot\n%s", fc.replay.Output())
	}
	// The runners send to it again: they see its new incarnation (D's epoch)
	// and write off the credits that died with the old one, instead of
	// waiting out their credit timeout (RELIABILITY.md, finding 3).
	restoredAt := time.Now()
	var inserting time.Duration
	pollWhile(t, fc.replay, 30*time.Second, 50*time.Millisecond, "the runners to send to the restarted replay", func() error {
		st, err := fc.replayStatus()
		if err != nil {
			return err
		}
		if st.Counters.ReplayInserted <= restored.Counters.ReplayInserted {
			return fmt.Errorf("inserted %d, as restored", st.Counters.ReplayInserted)
		}
		inserting = time.Since(restoredAt)
		return nil
	})
	// The learner trains again.
	var training time.Duration
	fc.watch(60*time.Second, 150*time.Millisecond, nil, func(st faultStatus) bool {
		if st.Counters.LearnerUpdates > atRestart.Counters.LearnerUpdates+100 {
			training = time.Since(restartAt)
			return true
		}
		return false
	})
	if training == 0 {
		t.Fatalf("the learner did not train again within 60 s of the replay's restart (updates %d)", atRestart.Counters.LearnerUpdates)
	}
	end, _ := fc.watch(10*time.Second, 200*time.Millisecond, nil, nil)
	if end.Counters.LearnerUpdates <= atRestart.Counters.LearnerUpdates || end.Counters.EnvSteps <= atRestart.Counters.EnvSteps {
		t.Errorf("no progress after the restart: updates %d -> %d, env steps %d -> %d", atRestart.Counters.LearnerUpdates, end.Counters.LearnerUpdates,
			atRestart.Counters.EnvSteps, end.Counters.EnvSteps)
	}
	// The replay's counts, the runners' sent, the replay's counts again.
	rBeforeEnd, err := fc.replayStatus()
	if err != nil {
		t.Fatal(err)
	}
	end, _ = fc.status()
	rEnd, err := fc.replayStatus()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FAULT replay-host-killed detect=%s restored_size=%d size_before_kill=%d inserted_before_kill=%d runners_sending_again=%s learner_training_again=%s updates=%d->%d->%d lost=%d mean100=%.1f->%.1f",
		ms(detect), restored.Counters.ReplaySize, rBefore.Counters.ReplaySize, rBefore.Counters.ReplayInserted, ms(inserting), ms(training),
		before.Counters.LearnerUpdates, atRestart.Counters.LearnerUpdates, end.Counters.LearnerUpdates, rEnd.Counters.ExperienceLost, before.Mean100, end.Mean100)
	if detect == 0 || detect > 10*time.Second {
		t.Errorf("A noticed the replay host's death after %v, want within 10 s", detect)
	}
	fc.stop()
	checkAccounting(t, "replay-host-killed", end, rBeforeEnd, rEnd)
}
