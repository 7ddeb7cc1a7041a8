package cli

// 'qfleet sweep' across hosts: network namespaces of a cluster/netlab Lab,
// each node a real 'qfleet node --roles trials' process of the built binary,
// the coordinator a 'qfleet sweep --join' process on a host of its own.
//
//   - TestSweepTwoNodes: four short trials over nodes B and C; the results
//     table records both nodes, and every trial once, finished.
//   - TestSweepNodeKilled: kill -9 node B mid-trial; its trial runs again
//     on C and is recorded once, finished, on C (attempt 2); B's trial
//     process died with B.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/netlab"
	"github.com/qfleet/qfleet/cluster/sweep"
	"github.com/qfleet/qfleet/internal/testutil"
)

// sweepLab is a lab with trial nodes and a coordinator host S.
type sweepLab struct {
	lab   *netlab.Lab
	bin   string
	nodes map[string]*netlab.Process
	dir   string // shared by every host (one file system)
	seed  string // the first node's gossip address
}

func startSweepLab(t *testing.T, nodes ...string) *sweepLab {
	t.Helper()
	bin := qfleetBinary(t)
	l := &sweepLab{lab: netlab.New(t, append(slices.Clone(nodes), "S")...), bin: bin, nodes: map[string]*netlab.Process{}, dir: t.TempDir()}
	seed := net.JoinHostPort(l.lab.Host(nodes[0]).Addr(), gossipPort)
	l.seed = seed
	for i, name := range nodes {
		h := l.lab.Host(name)
		args := nodeArgs(h, "trials", "lan", "--insecure", "--trials-dir", filepath.Join(l.dir, "node-"+name))
		if i > 0 {
			args = append(args, "--join", seed)
		}
		p := h.Start(t, name, bin, args...)
		if err := p.WaitOutput("qfleet node "+name+":", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		l.nodes[name] = p
	}
	return l
}

// sweep starts the coordinator in S on spec (written to the shared dir).
func (l *sweepLab) sweep(t *testing.T, spec string, extra ...string) (*netlab.Process, string) {
	t.Helper()
	specPath := filepath.Join(l.dir, "spec.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(l.dir, "out")
	s := l.lab.Host("S")
	args := append([]string{"sweep", specPath, "--out", out, "--join", l.seed,
		"--gossip-addr", net.JoinHostPort(s.Addr(), "7948"), "--remote-addr", net.JoinHostPort(s.Addr(), "7949"),
		"--profile", "lan", "--insecure", "--name", "S"}, extra...)
	return s.Start(t, "S", l.bin, args...), out
}

func waitExit(t *testing.T, p *netlab.Process, d time.Duration) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Wait()
	case <-time.After(d):
		t.Fatalf("the sweep did not end within %v:\n%s", d, p.Output())
		return nil
	}
}

// onceEach checks that every trial has exactly one row, ok.
func onceEach(t *testing.T, rows []sweep.Row, trials int) map[string]sweep.Row {
	t.Helper()
	by := map[string]sweep.Row{}
	for _, r := range rows {
		if _, dup := by[r.Trial]; dup {
			t.Errorf("trial %s recorded twice", r.Trial)
		}
		by[r.Trial] = r
		if r.Status != sweep.StatusOK {
			t.Errorf("trial %s: %s %s", r.Trial, r.Status, r.Error)
		}
	}
	if len(by) != trials {
		t.Errorf("%d trials recorded, want %d", len(by), trials)
	}
	return by
}

func TestSweepTwoNodes(t *testing.T) {
	l := startSweepLab(t, "B", "C")
	spec := strings.Replace(tinySweepSpec, "max_steps: 4000", "seeds: [1, 2]\nmax_steps: 4000", 1)
	start := time.Now()
	p, out := l.sweep(t, spec)
	if err := waitExit(t, p, 120*time.Second); err != nil {
		t.Fatalf("sweep exited with %v:\n%s", err, p.Output())
	}
	wall := time.Since(start)
	rows := readRows(t, out)
	by := onceEach(t, rows, 4)
	nodes := map[string]int{}
	for _, r := range by {
		nodes[r.Node]++
		if r.EnvSteps < 4000 || r.FinalMean100 == nil {
			t.Errorf("%s on %s: %d env steps, final mean100 %v", r.Trial, r.Node, r.EnvSteps, r.FinalMean100)
		}
		// The run directory is on the node; its files came back with the result.
		if !strings.HasPrefix(r.RunDir, filepath.Join(l.dir, "node-"+r.Node)) {
			t.Errorf("%s: run_dir %s is not under node %s's trials dir", r.Trial, r.RunDir, r.Node)
		}
		for _, f := range []string{qfleet.RunSummaryFile, qfleet.RunConfigFile, qfleet.RunScalarsFile} {
			if _, err := os.Stat(filepath.Join(out, sweep.TrialsDir, r.Trial, f)); err != nil {
				t.Errorf("%s: the sweep's copy: %v", r.Trial, err)
			}
		}
	}
	if nodes["B"] == 0 || nodes["C"] == 0 || len(nodes) != 2 {
		t.Errorf("trials by node %v: want both B and C", nodes)
	}
	tsv, _ := os.ReadFile(filepath.Join(out, sweep.TableFile))
	for _, n := range []string{"\tB\tok\t", "\tC\tok\t"} {
		if !strings.Contains(string(tsv), n) {
			t.Errorf("results.tsv lacks a row with %q:\n%s", n, tsv)
		}
	}
	if !strings.Contains(p.Output(), "| B |") || !strings.Contains(p.Output(), "| C |") {
		t.Errorf("the Markdown table lacks node B or C:\n%s", p.Output())
	}
	t.Logf("SWEEP two nodes: 4 trials in %.1fs, by node %v", wall.Seconds(), nodes)
}

var startedOn = regexp.MustCompile(`\] (t\d+-[0-9a-f]+) started on (\w+) \(attempt (\d+)`)

// sweepWithTrialOnB starts nodes B and C and a sweep of two trials of
// steps env steps each, long enough (several seconds) to hit one mid-way,
// one on each node, and returns once a trial has started on B: the victim.
func sweepWithTrialOnB(t *testing.T, steps int) (l *sweepLab, p *netlab.Process, out string, victim string) {
	t.Helper()
	l = startSweepLab(t, "B", "C")
	spec := strings.Replace(tinySweepSpec, "max_steps: 4000", fmt.Sprintf("max_steps: %d", steps), 1)
	p, out = l.sweep(t, spec)
	pollWhile(t, p, 60*time.Second, 100*time.Millisecond, "a trial to start on B", func() error {
		for _, m := range startedOn.FindAllStringSubmatch(p.Output(), -1) {
			if m[2] == "B" {
				victim = m[1]
				return nil
			}
		}
		return fmt.Errorf("no trial started on B yet")
	})
	return l, p, out, victim
}

func TestSweepNodeKilled(t *testing.T) {
	l, p, out, victim := sweepWithTrialOnB(t, 30_000)
	// Let it run a moment (a heartbeat), then kill B alone: its trial
	// process must die with it (Pdeathsig), not run on as an orphan.
	time.Sleep(2 * time.Second)
	b := l.nodes["B"]
	if err := b.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-b.Done()
	var requeuedAfter time.Duration
	pollWhile(t, p, 30*time.Second, 50*time.Millisecond, "the sweep to requeue "+victim, func() error {
		if strings.Contains(p.Output(), victim+" (attempt 1 on B)") && strings.Contains(p.Output(), "it will run again") {
			requeuedAfter = time.Since(killed)
			return nil
		}
		return fmt.Errorf("no requeue of %s yet", victim)
	})
	testutil.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		pids, err := exec.Command("ip", "netns", "pids", l.lab.Host("B").Namespace()).Output()
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(pids)); s != "" {
			return fmt.Errorf("processes still in B's namespace after B was killed: %s", s)
		}
		return nil
	})
	if err := waitExit(t, p, 120*time.Second); err != nil {
		t.Fatalf("sweep exited with %v:\n%s", err, p.Output())
	}
	finishedAfter := time.Since(killed)
	rows := readRows(t, out)
	by := onceEach(t, rows, 2)
	r := by[victim]
	if r.Node != "C" || r.Attempt != 2 {
		t.Errorf("the killed node's trial %s: node %s attempt %d, want C, attempt 2", victim, r.Node, r.Attempt)
	}
	if r.EnvSteps < 30000 {
		t.Errorf("%s: %d env steps, want the full 30000 of its rerun", victim, r.EnvSteps)
	}
	if n := strings.Count(p.Output(), " "+victim+" finished on "); n != 1 {
		t.Errorf("%s reported finished %d times, want once", victim, n)
	}
	t.Logf("SWEEP node killed: %s requeued %v after kill -9 of B, finished on C %.1fs after the kill", victim,
		requeuedAfter.Round(time.Millisecond), finishedAfter.Seconds())
}

// TestFaultSweepNodeFrozen (-faults, `make faults`): SIGSTOP node B with its
// trial process mid-trial. Gossip declares B failed and the sweep hands the
// trial to C; after SIGCONT, B's stale attempt is cancelled by the sweep (or,
// if it ends first, its result is taken and C's attempt cancelled): either
// way the trial is recorded once.
func TestFaultSweepNodeFrozen(t *testing.T) {
	requireFaults(t)
	// Trials long enough that the attempt requeued to C still runs when B
	// thaws and its heartbeat reaches the sweep (every 2 s): at 30k steps C
	// could finish, and the sweep exit, before B was heard from again.
	l, p, out, victim := sweepWithTrialOnB(t, 80_000)
	time.Sleep(2 * time.Second)
	b := l.nodes["B"]
	pgid := b.Pid() // netlab starts each process in a group of its own; the trial is in it
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var requeuedAfter time.Duration
	pollWhile(t, p, 60*time.Second, 100*time.Millisecond, "the sweep to requeue "+victim, func() error {
		if strings.Contains(p.Output(), victim+" (attempt 1 on B)") {
			requeuedAfter = time.Since(stopped)
			return nil
		}
		return fmt.Errorf("no requeue of %s yet", victim)
	})
	time.Sleep(time.Second)
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, p, 180*time.Second); err != nil {
		t.Fatalf("sweep exited with %v:\n%s", err, p.Output())
	}
	by := onceEach(t, readRows(t, out), 2)
	r := by[victim]
	if n := strings.Count(p.Output(), " "+victim+" finished on "); n != 1 {
		t.Errorf("%s reported finished %d times, want once", victim, n)
	}
	// B's attempt was stopped by the sweep, unless it finished first.
	cancelled := strings.Contains(b.Output(), victim+" (attempt 1) cancelled by the sweep")
	if !cancelled && !(r.Node == "B" && r.Attempt == 1) {
		t.Errorf("B's stale attempt of %s was neither cancelled nor the one recorded (recorded: %s attempt %d)\nB:\n%s", victim, r.Node, r.Attempt, b.Output())
	}
	why := ""
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, victim+" (attempt 1 on B)") {
			why = line
		}
	}
	t.Logf("FAULT scenario=sweep-node-frozen requeued_after=%s recorded_on=%s attempt=%d stale_attempt_cancelled=%v (%s)",
		ms(requeuedAfter), r.Node, r.Attempt, cancelled, why)
}
