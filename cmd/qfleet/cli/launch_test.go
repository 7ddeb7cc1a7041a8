package cli

// 'qfleet launch' across hosts, as stories. Every host is a network
// namespace running a real sshd (launchlab_test.go); the qfleet binary,
// built once, runs the commands on a control host and is the binary the
// launch copies. The hosts have no systemd, so nodes start detached.
//
//   - refusals: a wrong host key, a refused SSH key, an unreachable host, a
//     port in use and a binary of another architecture each end the launch
//     with one line naming the host and the problem, exit 1, and nothing
//     started or written on any host (no qfleet process, no node directory,
//     no credentials).
//   - train: a three-host cluster (A: replay, learner, broadcaster; B, C:
//     runners) comes up, trains CartPole-v1 to mean100 >= 100, and its nodes
//     end by themselves; the learner's summary says solved.
//   - run, relaunch, status, logs, restart, down: launching a running
//     cluster again leaves its nodes alone (same pids), and starts again
//     only a node that died (kill -9), which joins the running learner;
//     status shows the members from the learner's /status; logs -f follows;
//     --restart replaces every node; down stops them all, the learner's by
//     SIGTERM first, the runners' by SIGTERM or on their own once it left,
//     none killed, and no qfleet process is left in any namespace. Host C
//     also has the trials role, passed through as any.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/internal/testutil"
)

func TestLaunch(t *testing.T) {
	l := newSSHLab(t, "A", "B", "C")
	t.Run("refusals", func(t *testing.T) { testLaunchRefusals(t, l) })
	t.Run("train", func(t *testing.T) { testLaunchTrain(t, l) })
	t.Run("run-restart-down", func(t *testing.T) { testLaunchRunRestartDown(t, l) })
}

// refusal runs a launch that must be refused before it touches any host.
func (l *sshLab) refusal(t *testing.T, spec, wantHost, want string) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := l.qfleet(t, time.Minute, "launch", spec)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "qfleet launch: host "+wantHost+" (") || !strings.Contains(lines[0], want) {
		t.Errorf("launch: exit %d, stderr %q; want exit 1 and one line 'qfleet launch: host %s (...)' with %q", code, stderr, wantHost, want)
	}
	if strings.TrimSpace(stdout) != "" {
		t.Errorf("a refused launch printed:\n%s", stdout)
	}
	t.Logf("refused in %v: %s", time.Since(start).Round(10*time.Millisecond), strings.TrimSpace(stderr))
	l.requireNothing(t)
}

// requireNothing: no qfleet process in any host's namespace, no node
// directory, no credentials made.
func (l *sshLab) requireNothing(t *testing.T) {
	t.Helper()
	for _, h := range []string{"A", "B", "C"} {
		if procs := l.nodeProcs(t, h); len(procs) > 0 {
			t.Errorf("qfleet processes on %s: %v", h, procs)
		}
		if _, err := os.Stat(l.nodeDir(h)); !os.IsNotExist(err) {
			t.Errorf("%s's node directory %s exists (%v)", h, l.nodeDir(h), err)
		}
	}
	if _, err := os.Stat(filepath.Join(l.dir, "credentials")); !os.IsNotExist(err) {
		t.Errorf("credentials made by a refused launch (%v)", err)
	}
}

const trainSettings = "{env: CartPole-v1, seed: 1, target_return: 100, max_steps: 200000, profile: lan}"

func testLaunchRefusals(t *testing.T, l *sshLab) {
	hosts := []string{"A", "B", "C"}
	t.Run("wrong-host-key", func(t *testing.T) {
		_, other := testutil.WriteSSHKey(t, t.TempDir(), "k")
		kh, err := os.ReadFile(l.knownHosts)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(kh), string(ssh.MarshalAuthorizedKey(l.hostKeys["B"])), string(ssh.MarshalAuthorizedKey(other)), 1)
		khPath := testutil.WriteFile(t, t.TempDir(), "known_hosts", bad)
		spec := l.clusterFile(t, "hostkey.yaml", trainSettings, "", map[string]string{"B": "ssh: {known_hosts: " + khPath + "}"}, hosts...)
		l.refusal(t, spec, "B", "host key mismatch: the host shows ssh-ed25519 "+ssh.FingerprintSHA256(l.hostKeys["B"]))
	})
	t.Run("wrong-fingerprint", func(t *testing.T) {
		_, other := testutil.WriteSSHKey(t, t.TempDir(), "k")
		spec := l.clusterFile(t, "fingerprint.yaml", trainSettings, "",
			map[string]string{"A": "ssh: {host_key_fingerprint: '" + ssh.FingerprintSHA256(other) + "'}"}, hosts...)
		l.refusal(t, spec, "A", "host key mismatch")
	})
	t.Run("wrong-ssh-key", func(t *testing.T) {
		spec := l.clusterFile(t, "userkey.yaml", trainSettings, "", map[string]string{"B": "ssh: {key: " + l.otherKey + "}"}, hosts...)
		l.refusal(t, spec, "B", "SSH login as root refused")
	})
	t.Run("unreachable", func(t *testing.T) {
		if err := l.lab.CutLink("C"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.lab.HealLink("C"); err != nil {
				t.Fatal(err)
			}
		}()
		spec := l.clusterFile(t, "unreachable.yaml", trainSettings, "", map[string]string{"C": "ssh: {timeout: 2s}"}, hosts...)
		l.refusal(t, spec, "C", "unreachable: i/o timeout")
	})
	t.Run("port-in-use", func(t *testing.T) {
		// sshd holds port 22 on A's address.
		spec := l.clusterFile(t, "port.yaml", trainSettings, "", map[string]string{"A": "ports: {gossip: 22}"}, hosts...)
		l.refusal(t, spec, "A", "port 22 (gossip, TCP) is in use on the host")
	})
	t.Run("binary-for-another-arch", func(t *testing.T) {
		arm := testutil.WriteFile(t, t.TempDir(), "qfleet-arm64", string(elfHeaderFor(183 /* EM_AARCH64 */)))
		spec := l.clusterFile(t, "arch.yaml", trainSettings, "", map[string]string{"C": "binary: " + arm}, hosts...)
		l.refusal(t, spec, "C", "but the binary "+arm+" is for arm64")
	})
}

// elfHeaderFor is the header of a 64-bit little-endian ELF executable for
// machine: what the launch reads of a binary to know its architecture.
func elfHeaderFor(machine byte) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16], h[18], h[20], h[52] = 2, machine, 1, 64 // ET_EXEC, e_machine, version, header size
	return h
}

func testLaunchTrain(t *testing.T, l *sshLab) {
	runDir := filepath.Join(l.nodeDir("A"), "run")
	spec := l.clusterFile(t, "train.yaml", trainSettings, "", map[string]string{"A": "settings: {run_dir: " + runDir + "}"}, "A", "B", "C")
	start := time.Now()
	code, stdout, stderr := l.qfleet(t, 2*time.Minute, "launch", spec)
	if code != 0 || !strings.Contains(stdout, "cluster up: 3 members (A, B, C)") {
		t.Fatalf("launch: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("launched in %v:\n%s", time.Since(start).Round(10*time.Millisecond), stdout)
	for _, h := range []string{"A", "B", "C"} {
		if pid := l.nodePid(h); pid == 0 || !l.inNamespace(pid, h) {
			t.Errorf("%s's node (pid %d) is not running in %s's namespace", h, pid, h)
		}
	}
	// The run ends on A when mean100 reaches 100; B and C end by themselves.
	testutil.CheckFor(t, 100*time.Second, 250*time.Millisecond, func() error {
		for _, h := range []string{"A", "B", "C"} {
			if procs := l.nodeProcs(t, h); len(procs) > 0 {
				return fmt.Errorf("%s still runs %v", h, procs)
			}
		}
		return nil
	})
	var sum qfleet.Summary
	data, err := os.ReadFile(filepath.Join(runDir, "summary.json"))
	if err != nil {
		t.Fatalf("A's summary: %v", err)
	}
	if err := json.Unmarshal(data, &sum); err != nil || !sum.Solved || sum.MeanReturn100 < 100 {
		t.Errorf("A's summary: solved %v, mean100 %.1f (%v); want solved with >= 100\n%s", sum.Solved, sum.MeanReturn100, err, data)
	}
	t.Logf("solved at %d env steps, mean100 %.1f; %v from the launch to every node's end", sum.SolvedAtEnvSteps, sum.MeanReturn100, time.Since(start).Round(100*time.Millisecond))
	code, stdout, _ = l.qfleet(t, time.Minute, "logs", spec, "B")
	if code != 0 || !strings.Contains(stdout, "the learner node A left the cluster: run over") {
		t.Errorf("logs B: exit %d, want the end of the run in:\n%s", code, stdout)
	}
	code, stdout, _ = l.qfleet(t, time.Minute, "status", spec)
	if code != 3 || strings.Count(stdout, "not running; its log ends: ") != 3 || !strings.Contains(stdout, "A's node does not run") {
		t.Errorf("status after the run: exit %d, want 3 and three nodes not running and their logs' last lines:\n%s", code, stdout)
	}
	t.Logf("status after the run:\n%s", stdout)
}

func testLaunchRunRestartDown(t *testing.T, l *sshLab) {
	// No target within reach: the cluster runs until it is stopped. C
	// also takes sweep trials.
	spec := l.clusterFile(t, "run.yaml", "{env: CartPole-v1, target_return: 100000, max_steps: 100000000, profile: lan}", "",
		map[string]string{"C": "roles: [runner, trials]"}, "A", "B", "C")
	launchOK := func(args ...string) string {
		t.Helper()
		start := time.Now()
		code, stdout, stderr := l.qfleet(t, 2*time.Minute, append([]string{"launch", spec}, args...)...)
		if code != 0 || !strings.Contains(stdout, "cluster up: 3 members (A, B, C)") {
			t.Fatalf("launch %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
		t.Logf("launch %v in %v:\n%s", args, time.Since(start).Round(10*time.Millisecond), stdout)
		return stdout
	}
	pids := func() map[string]int {
		return map[string]int{"A": l.nodePid("A"), "B": l.nodePid("B"), "C": l.nodePid("C")}
	}
	launchOK()
	first := pids()

	// Again: every node is left alone.
	out := launchOK()
	if again := pids(); again["A"] != first["A"] || again["B"] != first["B"] || again["C"] != first["C"] {
		t.Errorf("pids after launching again %v, want %v", again, first)
	}
	for _, h := range []string{"A", "B", "C"} {
		if !strings.Contains(out, h+": running (pid ") {
			t.Errorf("the second launch does not say %s runs and is left alone", h)
		}
	}

	// A node that died (kill -9) is started again, joining the running
	// learner; the others are left alone.
	if err := syscall.Kill(first["B"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if procs := l.nodeProcs(t, "B"); len(procs) > 0 {
			return fmt.Errorf("B's node still runs after kill -9: %v", procs)
		}
		return nil
	})
	if code, _, stderr := l.qfleet(t, time.Minute, "status", spec); code != 3 || !strings.Contains(stderr, "1 of 3 nodes do not run: B") {
		t.Errorf("status with B dead: exit %d, want 3 naming B:\n%s", code, stderr)
	}
	out = launchOK()
	again := pids()
	if again["A"] != first["A"] || again["C"] != first["C"] || again["B"] == first["B"] || !l.inNamespace(again["B"], "B") {
		t.Errorf("pids after B died and a launch %v, before %v: want A and C the same, B new", again, first)
	}
	if !strings.Contains(out, "B: started") || strings.Contains(out, "A: started") {
		t.Errorf("the launch after B died should start B alone")
	}
	first = again

	code, stdout, stderr := l.qfleet(t, time.Minute, "status", spec)
	if code != 0 || !strings.Contains(stdout, "A's /status: members A, B, C") || strings.Count(stdout, "running (pid") != 3 {
		t.Errorf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("status:\n%s", stdout)
	if code, stdout, _ := l.qfleet(t, time.Minute, "logs", spec, "C", "-n", "500"); code != 0 || !strings.Contains(stdout, "qfleet node C: roles runner,trials") {
		t.Errorf("logs C: exit %d, want its start line with both roles:\n%s", code, stdout)
	}

	l.followLog(t, spec, "C")

	// --restart replaces every node.
	if out := launchOK("--restart"); !gracefulStops(out) {
		t.Errorf("--restart did not stop every node gracefully:\n%s", out)
	}
	restarted := pids()
	for h, pid := range restarted {
		if pid == 0 || pid == first[h] || !l.inNamespace(pid, h) {
			t.Errorf("%s after --restart: pid %d (was %d), want a new node in %s's namespace", h, pid, first[h], h)
		}
	}

	start := time.Now()
	code, stdout, stderr = l.qfleet(t, time.Minute, "down", spec)
	if code != 0 || !gracefulStops(stdout) {
		t.Errorf("down: exit %d, want A stopped by SIGTERM and B and C by SIGTERM or on their own\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("down in %v:\n%s", time.Since(start).Round(10*time.Millisecond), stdout)
	for _, h := range []string{"A", "B", "C"} {
		if procs := l.nodeProcs(t, h); len(procs) > 0 {
			t.Errorf("after down, qfleet processes on %s: %v", h, procs)
		}
	}
	if code, stdout, stderr := l.qfleet(t, time.Minute, "status", spec); code != 3 || strings.Count(stdout, "not running") != 3 ||
		!strings.Contains(stderr, "3 of 3 nodes do not run: A, B, C") {
		t.Errorf("status after down: exit %d, want 3 and every node not running:\n%s%s", code, stdout, stderr)
	}
}

// followLog: 'qfleet logs -f' shows what is appended to the node's log
// while it runs, ends on Ctrl-C with exit 0, and leaves no tail behind on
// the host.
func (l *sshLab) followLog(t *testing.T, spec, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := l.lab.Host("ctl").Command(ctx, l.bin, "logs", spec, host, "-f", "-n", "1")
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("a line appended at %d", time.Now().UnixNano())
	testutil.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		// Appended until it shows: tail -F may open the file after a write.
		f, err := os.OpenFile(filepath.Join(l.nodeDir(host), "node.log"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if strings.Contains(out.String(), marker) {
			return nil
		}
		if _, err := f.WriteString(marker + "\n"); err != nil {
			return err
		}
		return fmt.Errorf("logs -f has not shown the appended line yet: %q", out.String())
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after Ctrl-C: %v, want exit 0; output:\n%s", err, out.String())
	}
	testutil.CheckFor(t, 5*time.Second, 100*time.Millisecond, func() error {
		if tails := l.procsNamed(t, host, "tail"); len(tails) > 0 {
			return fmt.Errorf("tail still runs on %s after logs -f ended: %v", host, tails)
		}
		return nil
	})
}

// gracefulStops: the stop lines of a down or a --restart say that A's node
// was stopped by SIGTERM, and that B's and C's were, or ended on their own
// when A's left; none was killed or missing.
func gracefulStops(out string) bool {
	ok := strings.Contains(out, "A: stopped by SIGTERM")
	for _, h := range []string{"B", "C"} {
		ok = ok && (strings.Contains(out, h+": stopped by SIGTERM") || strings.Contains(out, h+": ended by itself when the learner's node left"))
	}
	return ok && !strings.Contains(out, "killed") && !strings.Contains(out, "not running")
}
