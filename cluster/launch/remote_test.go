package launch

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// sh runs a host script here, as the SSH session would on a host.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("script failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	return string(out)
}

// fakeNode writes a stand-in for the qfleet binary into dir: a shell
// script whose command line (sh BINARY node --config DIR/node.yaml) is what
// alive looks for. With ignoreTerm it ignores SIGTERM, as a node stuck in
// its shutdown would; it also starts a child in its process group, as a
// node's sweep trials and env processes are.
func fakeNode(t *testing.T, dir string, ignoreTerm bool) Paths {
	t.Helper()
	p := pathsIn(dir)
	trap := ""
	if ignoreTerm {
		trap = "trap '' TERM\n"
	}
	body := "#!/bin/sh\n" + trap + "echo 'qfleet node X: roles runner, remote r, gossip g, 1 member(s)' >&2\nsleep 300 &\nwhile :; do sleep 0.05; done\n"
	if err := os.WriteFile(p.Binary, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Config, []byte("name: X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDetachedStartAndStop runs the start, state and stop scripts on this
// machine with a stand-in node: the node outlives the shell that started
// it, its pid file names it, the state script sees its "joined" line, and
// stop ends it: by SIGTERM when it obeys, by SIGKILL after the grace when
// it does not; either way nothing of its process group is left.
func TestDetachedStartAndStop(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run("ignores_term="+strconv.FormatBool(ignore), func(t *testing.T) {
			dir := t.TempDir()
			p := fakeNode(t, dir, ignore)
			out := sh(t, detachedScript(p, []string{"--log-level", "info"}, true))
			pid, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || pid <= 0 {
				t.Fatalf("start printed %q, want the pid", out)
			}
			t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
			// The shell that started it has exited: the node runs on, in a
			// session and process group of its own.
			if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
				t.Fatalf("node pid %d: process group %d (%v), want its own", pid, pgid, err)
			}
			var st nodeState
			testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
				st = parseState(sh(t, stateScript(dir, "X", 2)))
				if st.pid != pid || st.up == "" {
					return fmt.Errorf("state: pid %d (want %d), up %q", st.pid, pid, st.up)
				}
				return nil
			})
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if !strings.Contains(string(cmdline), "--log-level\x00info") {
				t.Errorf("node command line %q lacks the host's args", cmdline)
			}
			grace := 500 * time.Millisecond
			start := time.Now()
			kv, _ := splitProbe(sh(t, stopScript(dir, grace)))
			took := time.Since(start)
			want := "stopped by SIGTERM"
			if ignore {
				want = "killed (SIGKILL) after the 500ms grace"
			}
			if !strings.Contains(kv["result"], want) {
				t.Errorf("stop: %q, want %q", kv["result"], want)
			}
			if ignore && took < grace {
				t.Errorf("a node that ignores SIGTERM was killed after %v, before the %v grace", took, grace)
			}
			if left := groupMembers(pid); len(left) > 0 {
				t.Errorf("processes of the node's group left after stop: %v", left)
			}
			if _, err := os.Stat(p.Pid); !os.IsNotExist(err) {
				t.Errorf("pid file after stop: %v", err)
			}
			if st := parseState(sh(t, stateScript(dir, "X", 1))); st.pid != 0 {
				t.Errorf("state after stop: pid %d", st.pid)
			}
			if kv, _ := splitProbe(sh(t, stopScript(dir, grace))); kv["result"] != "not running" {
				t.Errorf("second stop: %q, want 'not running'", kv["result"])
			}
		})
	}
}

// groupMembers are the live (not zombie) processes whose process group is pgid.
func groupMembers(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// TestProbeHere runs the probe on this machine: it reads the OS, the
// architecture and the directory, and finds a port this test holds (TCP
// listening on loopback) as a conflict for a node on that port, and not for
// a node on another.
func TestProbeHere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	p, err := parseProbe(sh(t, probeScript(dir)))
	if err != nil {
		t.Fatal(err)
	}
	if p.os != "Linux" || goarchOf(p.arch) != runtime.GOARCH || p.dir != dir || p.pid != 0 {
		t.Errorf("probe: os %q arch %q (GOARCH %q) dir %q pid %d", p.os, p.arch, goarchOf(p.arch), p.dir, p.pid)
	}
	h := &Host{Name: "A", Bind: "127.0.0.1", Gossip: port, Remote: port + 1}
	taken := portConflicts(portsNeeded(h), p.sockets)
	if len(taken) != 1 || !strings.Contains(taken[0], "port "+strconv.Itoa(port)+" (gossip, TCP) is in use") {
		t.Errorf("conflicts %v, want the gossip port %d", taken, port)
	}
	h.Bind = "0.0.0.0" // a wildcard bind clashes with a socket on any address
	if taken := portConflicts(portsNeeded(h), p.sockets); len(taken) != 1 {
		t.Errorf("wildcard bind: conflicts %v, want one", taken)
	}
	h.Bind, h.Gossip = "127.0.0.1", port+2
	if taken := portConflicts(portsNeeded(h), p.sockets); slices.ContainsFunc(taken, func(s string) bool { return strings.Contains(s, strconv.Itoa(port)+" ") }) {
		t.Errorf("conflicts %v for free ports", taken)
	}
}

// TestProcIP: /proc/net's hex addresses in both byte orders.
func TestProcIP(t *testing.T) {
	for _, tc := range []struct {
		hex   string
		order binary.ByteOrder
		want  string
	}{
		{"0100007F", binary.LittleEndian, "127.0.0.1"},
		{"7F000001", binary.BigEndian, "127.0.0.1"},
		{"00000000000000000000000000000000", binary.LittleEndian, "::"},
		{"0000000000000000FFFF00000B00090A", binary.LittleEndian, "10.9.0.11"},
	} {
		ip, err := procIP(tc.hex, tc.order)
		if err != nil || ip.String() != tc.want {
			t.Errorf("procIP(%s) = %v, %v; want %s", tc.hex, ip, err, tc.want)
		}
	}
}

// TestSystemdArgv: the systemd path's command line, which the lab hosts
// (no systemd in a network namespace) cannot run.
func TestSystemdArgv(t *testing.T) {
	p := pathsIn("/srv/q")
	got := systemdArgv(unitName("lab", "B"), p, []string{"--log-level", "info"}, 30*time.Second, false)
	want := []string{"systemd-run", "--unit=qfleet-lab-B", "--collect", "--quiet", "--working-directory=/srv/q",
		"--property=KillMode=mixed", "--property=TimeoutStopSec=30",
		"--property=StandardOutput=append:/srv/q/node.log", "--property=StandardError=append:/srv/q/node.log",
		"--", "/srv/q/qfleet", "node", "--config", "/srv/q/node.yaml", "--log-level", "info"}
	if !slices.Equal(got, want) {
		t.Errorf("systemd-run argv:\n got %q\nwant %q", got, want)
	}
	user := systemdArgv("u", p, nil, 1500*time.Millisecond, true)
	if user[1] != "--user" || !slices.Contains(user, "--property=TimeoutStopSec=2") {
		t.Errorf("user unit argv %q: want --user and the grace rounded up to 2 s", user)
	}
	script := systemdScript("qfleet-lab-B", p, nil, 30*time.Second, false)
	for _, want := range []string{"systemctl reset-failed 'qfleet-lab-B'", "'systemd-run' '--unit=qfleet-lab-B'", `> "$D/node.unit"`, "show -p MainPID --value 'qfleet-lab-B'"} {
		if !strings.Contains(script, want) {
			t.Errorf("systemd start script lacks %q:\n%s", want, script)
		}
	}
}

// TestBinaryArch: a binary is matched to a host by its ELF header: this
// test's own binary fits this machine; an arm64 binary does not fit an
// x86_64 host, and the error says what to give.
func TestBinaryArch(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	arm := filepath.Join(t.TempDir(), "qfleet-arm64")
	if err := os.WriteFile(arm, elfHeader(183 /* EM_AARCH64 */), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBinaries(exe)
	h := &Host{Name: "A"}
	if got, err := b.pick(h, "x86_64"); err != nil || got != exe {
		t.Errorf("pick for x86_64: %q, %v; want the running binary", got, err)
	}
	h.Binary = arm
	if _, err := b.pick(h, "x86_64"); err == nil || !strings.Contains(err.Error(), "binary "+arm+" is for arm64") || !strings.Contains(err.Error(), "binaries: {amd64: PATH}") {
		t.Errorf("an arm64 binary for an x86_64 host: %v", err)
	}
	h.Binary, h.Binaries = "", map[string]string{"arm64": arm}
	if got, err := b.pick(h, "aarch64"); err != nil || got != arm {
		t.Errorf("pick for aarch64: %q, %v; want %s", got, err, arm)
	}
	if _, err := b.pick(h, "sun4u"); err == nil {
		t.Error("an unknown architecture was accepted")
	}
	notELF := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	if _, err := elfArch(notELF); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("a script as the binary: %v", err)
	}
}

// elfHeader is a 64-bit little-endian ELF header for machine, enough for
// debug/elf to read.
func elfHeader(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1                     // 64-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2)       // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine) //
	binary.LittleEndian.PutUint32(h[20:], 1)       // version
	binary.LittleEndian.PutUint16(h[52:], 64)      // header size
	return h
}

// TestHereDoc: files written by the install script's here-documents are
// byte for byte what was given, quotes, dollars and backquotes included;
// data that is not newline-ended text is refused.
func TestHereDoc(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml": "x: '$HOME `id` \\n \"q\"'\nQFLEET_EOF\n",
		"b.crt":  "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	}
	var script strings.Builder
	for name, body := range files {
		if err := hereDoc(&script, filepath.Join(dir, name), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, script.String())
	for name, body := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v; want %q", name, got, err, body)
		}
	}
	if err := hereDoc(&script, "x", []byte("no newline")); err == nil {
		t.Error("data without a final newline was accepted")
	}
}
