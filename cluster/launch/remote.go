package launch

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Paths are where a node's files are on its host, in Dir.
type Paths struct {
	Dir     string // absolute
	Binary  string // the qfleet binary
	Config  string // the node's config file (node.yaml)
	Log     string // the node's stdout and stderr (node.log; the previous start's is node.log.1)
	Pid     string // the node's pid (node.pid)
	Unit    string // the systemd unit's name, when systemd runs the node (node.unit)
	CA      string // the cluster CA's certificate
	Key     string // the gossip key
	Cert    string // the node's certificate
	CertKey string // the node's private key
}

func pathsIn(dir string) Paths {
	j := func(f string) string { return path.Join(dir, f) }
	return Paths{Dir: dir, Binary: j("qfleet"), Config: j("node.yaml"), Log: j("node.log"), Pid: j("node.pid"),
		Unit: j("node.unit"), CA: j("ca.crt"), Key: j("cluster.key"), Cert: j("node.crt"), CertKey: j("node.key")}
}

// prologue starts every script: D is the node's directory, absolute (a
// relative dir is under the login's home), and alive prints the node's pid
// if its process runs. A pid alone could be another process's by now: the
// process must also be a qfleet node of this directory's config (and not a
// zombie, which kill -0 still finds).
func prologue(dir string) string {
	return `D=` + shq(dir) + `
case "$D" in /*) ;; *) D="$HOME/$D" ;; esac
alive() {
  p=$(cat "$D/node.pid" 2>/dev/null) || return 1
  case "$p" in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$p" 2>/dev/null || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null && return 1
  tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$D/node.yaml" || return 1
  echo "$p"
}
`
}

// probeScript prints what the pre-flight needs to know of a host, as
// key=value lines, then its sockets (/proc/net, which is per network
// namespace) after a [tcp] / [udp] marker. It changes nothing.
func probeScript(dir string) string {
	return prologue(dir) + `echo "os=$(uname -s)"
echo "arch=$(uname -m)"
echo "dir=$D"
echo "uid=$(id -u)"
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null 2>&1; then
  echo "systemd=$(systemctl is-system-running 2>/dev/null)"
fi
command -v setsid >/dev/null 2>&1 && echo "setsid=yes"
if p=$(alive); then echo "pid=$p"; fi
if [ -f "$D/node.unit" ]; then echo "unit=$(cat "$D/node.unit")"; fi
if [ -f "$D/qfleet" ]; then echo "binary_sha256=$(sha256sum "$D/qfleet" 2>/dev/null | cut -d' ' -f1)"; fi
if [ -f "$D/node.yaml" ]; then echo "config_sha256=$(sha256sum "$D/node.yaml" 2>/dev/null | cut -d' ' -f1)"; fi
for f in tcp tcp6 udp udp6; do echo "[$f]"; cat "/proc/net/$f" 2>/dev/null; done
`
}

// probe is what probeScript found on a host.
type probe struct {
	os, arch     string
	dir          string // absolute
	root         bool
	systemd      bool // systemd is PID 1 and answers
	setsid       bool
	pid          int    // the running node's, 0 for none
	unit         string // the systemd unit it was started as
	binarySHA256 string
	configSHA256 string
	sockets      []socket
}

func parseProbe(out string) (probe, error) {
	var p probe
	kv, sections := splitProbe(out)
	p.os, p.arch, p.dir = kv["os"], kv["arch"], kv["dir"]
	p.root = kv["uid"] == "0"
	// "degraded" (a unit failed) and "starting" still run units; "offline"
	// is systemd installed but not running the machine.
	switch kv["systemd"] {
	case "running", "degraded", "starting", "maintenance":
		p.systemd = true
	}
	p.setsid = kv["setsid"] == "yes"
	if s := kv["pid"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, fmt.Errorf("probe: pid %q", s)
		}
		p.pid = n
	}
	p.unit, p.binarySHA256, p.configSHA256 = kv["unit"], kv["binary_sha256"], kv["config_sha256"]
	if p.os == "" || p.arch == "" || !strings.HasPrefix(p.dir, "/") {
		return p, fmt.Errorf("probe: unexpected answer from the host's shell: %q", firstLines(out, 3))
	}
	for name, lines := range sections {
		socks, err := parseSockets(name, lines, byteOrder(p.arch))
		if err != nil {
			return p, err
		}
		p.sockets = append(p.sockets, socks...)
	}
	return p, nil
}

// splitProbe splits key=value lines from the [section] blocks after them.
func splitProbe(out string) (map[string]string, map[string][]string) {
	kv := map[string]string{}
	sections := map[string][]string{}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			sections[section] = nil
			continue
		}
		if section != "" {
			sections[section] = append(sections[section], line)
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv, sections
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, `\n`)
}

// doProbe runs the probe on c's host.
func doProbe(ctx context.Context, c *conn) (probe, error) {
	out, err := c.run(ctx, probeScript(c.h.Dir), nil)
	if err != nil {
		return probe{}, hostErr(c.h, "probing the host: %v", err)
	}
	p, err := parseProbe(out)
	if err != nil {
		return p, hostErr(c.h, "%v", err)
	}
	return p, nil
}

// stateScript prints the node's pid (empty when it does not run), its
// systemd unit, the line it printed when it joined the cluster (from this
// start's log), and the last lines of its log.
func stateScript(dir, name string, tail int) string {
	return prologue(dir) + `echo "pid=$(alive)"
if [ -f "$D/node.unit" ]; then echo "unit=$(cat "$D/node.unit")"; fi
echo "up=$(grep -m1 -F -- ` + shq("qfleet node "+name+": roles ") + ` "$D/node.log" 2>/dev/null)"
echo "[log]"
tail -n ` + strconv.Itoa(tail) + ` "$D/node.log" 2>/dev/null
`
}

// nodeState is what stateScript found.
type nodeState struct {
	pid  int
	unit string
	up   string   // the node's "qfleet node NAME: roles ..." line; "" before it joined
	log  []string // the log's last lines
}

func parseState(out string) nodeState {
	kv, sections := splitProbe(out)
	var s nodeState
	s.pid, _ = strconv.Atoi(kv["pid"])
	s.unit, s.up = kv["unit"], kv["up"]
	for _, l := range sections["log"] {
		if strings.TrimSpace(l) != "" {
			s.log = append(s.log, l)
		}
	}
	return s
}

func readState(ctx context.Context, c *conn, tail int) (nodeState, error) {
	out, err := c.run(ctx, stateScript(c.h.Dir, c.h.Name, tail), nil)
	if err != nil {
		return nodeState{}, hostErr(c.h, "reading the node's state: %v", err)
	}
	return parseState(out), nil
}

// notRunning is the stop script's result when there was no node to stop.
const notRunning = "not running"

// stopScript stops the node: systemctl stop for a systemd unit (its
// TimeoutStopSec is the grace, KillMode=mixed; a user unit when the login
// is not root); otherwise SIGTERM to the node, up to grace for it to end,
// then SIGKILL, and SIGKILL to whatever is left of its process group (its
// sweep trials and env processes, which a node that ended by itself has
// stopped already). It prints how, as result=....
func stopScript(dir string, grace time.Duration) string {
	tenths := int(grace / (100 * time.Millisecond))
	return prologue(dir) + `p=$(alive) || { rm -f "$D/node.pid"; echo "result=` + notRunning + `"; exit 0; }
UF=; [ "$(id -u)" = 0 ] || UF=--user
if [ -f "$D/node.unit" ] && systemctl $UF is-active --quiet "$(cat "$D/node.unit")" 2>/dev/null; then
  systemctl $UF stop "$(cat "$D/node.unit")" || exit 1
  rm -f "$D/node.pid"
  echo "result=stopped by systemctl stop (pid $p)"
  exit 0
fi
kill -TERM "$p" 2>/dev/null
n=0
while alive >/dev/null && [ "$n" -lt ` + strconv.Itoa(tenths) + ` ]; do sleep 0.1; n=$((n+1)); done
if alive >/dev/null; then
  kill -KILL "$p" 2>/dev/null
  r="killed (SIGKILL) after the ` + grace.String() + ` grace"
else
  r="stopped by SIGTERM in $((n/10)).$((n%10)) s"
fi
kill -9 "-$p" 2>/dev/null
n=0
while alive >/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n+1)); done
if alive >/dev/null; then echo "pid $p still runs after SIGKILL" >&2; exit 1; fi
rm -f "$D/node.pid"
echo "result=$r (pid $p)"
`
}
