package cli

// Fault-injection scenarios: real `qfleet node` processes in the
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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/netlab"
)

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
// the run still reaches 450 (a target the run cannot reach before the kill:
// the defaults pass 195 in the first seconds); experience accounting holds over both lives of
// A.
func TestFaultLearnerHostKilled(t *testing.T) {
	requireFaults(t)
	dir := t.TempDir()
	fc := startFaultCluster(t, faultOpts{target: 450, maxSteps: 400_000, ckptDir: dir, ckptEvery: "2s", runnerHTTP: true})
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
