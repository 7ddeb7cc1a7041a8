package launch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// nodeArgv is the command line of a node: its binary and config, then the
// host's extra flags.
func nodeArgv(p Paths, extra []string) []string {
	return append([]string{p.Binary, "node", "--config", p.Config}, extra...)
}

func shqAll(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shq(a)
	}
	return strings.Join(q, " ")
}

// rotateLog keeps the previous start's log as node.log.1, so that the log
// of this start begins empty and its "joined" line is this start's.
const rotateLog = `cd "$D" || exit 1
if [ -f node.log ]; then mv -f node.log node.log.1; fi
rm -f node.pid node.unit
`

// detachedScript starts the node so that it outlives the SSH session: in
// a session of its own (setsid: no signal sent to the login's process
// group reaches it), SIGHUP ignored (nohup), stdin from /dev/null and its
// output appended to node.log, so that no descriptor holds the session
// open. The shell writes its own pid to node.pid and then execs the node,
// so the pid is the node's and the node leads its own process group (which
// Down kills last). The script waits for the pid file and prints the pid.
func detachedScript(p Paths, args []string, setsid bool) string {
	pre := "nohup"
	if setsid {
		pre = "setsid nohup"
	}
	return prologue(p.Dir) + rotateLog + pre + ` sh -c 'echo $$ > "$0/node.pid" && exec "$@"' "$D" ` + shqAll(nodeArgv(p, args)) +
		` </dev/null >>"$D/node.log" 2>&1 &
n=0
while [ ! -s "$D/node.pid" ] && [ "$n" -lt 100 ]; do sleep 0.05; n=$((n+1)); done
cat "$D/node.pid"
`
}

// unitName is the systemd unit of a node: one per cluster and node, so two
// clusters can share a host.
func unitName(cluster, node string) string { return "qfleet-" + cluster + "-" + node }

// systemdArgv is the systemd-run command line that runs the node as a
// transient service: it outlives the SSH session by construction (the
// service manager owns it), --collect unloads it when it ends (so the name
// is free for the next launch), stop sends SIGTERM to the node and, after
// the grace, SIGKILL to everything left in its cgroup (KillMode=mixed), and
// its output is appended to node.log as the detached start's is. A
// non-root login gets a user service (--user), which outlives the login
// only with lingering on (loginctl enable-linger).
func systemdArgv(unit string, p Paths, args []string, grace time.Duration, user bool) []string {
	argv := []string{"systemd-run"}
	if user {
		argv = append(argv, "--user")
	}
	argv = append(argv, "--unit="+unit, "--collect", "--quiet", "--working-directory="+p.Dir,
		"--property=KillMode=mixed",
		"--property=TimeoutStopSec="+strconv.Itoa(int((grace+time.Second-1)/time.Second)),
		"--property=StandardOutput=append:"+p.Log,
		"--property=StandardError=append:"+p.Log,
		"--")
	return append(argv, nodeArgv(p, args)...)
}

// systemdScript starts the node with systemdArgv, after clearing a failed
// unit of the same name, and records the unit and its main pid.
func systemdScript(unit string, p Paths, args []string, grace time.Duration, user bool) string {
	uf := ""
	if user {
		uf = " --user"
	}
	return prologue(p.Dir) + rotateLog + `systemctl` + uf + ` reset-failed ` + shq(unit) + ` >/dev/null 2>&1
` + shqAll(systemdArgv(unit, p, args, grace, user)) + ` || exit 1
echo ` + shq(unit) + ` > "$D/node.unit"
systemctl` + uf + ` show -p MainPID --value ` + shq(unit) + ` > "$D/node.pid"
cat "$D/node.pid"
`
}

// install puts what the node needs into its directory, in one SSH session
// (each session costs a login shell on the host, which may read a slow
// .bashrc): the credentials and the config as here-documents in the
// script, and the binary, unless the host has this one already, on the
// session's stdin. Every file is written beside its place and renamed over
// it, so a binary that a running node executes is replaced, not rewritten
// in place (which Linux refuses: text file busy), and a copy cut short
// leaves the old file.
func (l *launcher) install(ctx context.Context, pl *plan) error {
	p, cd := pl.paths, l.spec.Credentials
	var script strings.Builder
	script.WriteString(prologue(p.Dir) + `umask 077
mkdir -p "$D" && chmod 700 "$D" || exit 1
`)
	for _, f := range []struct{ local, remote string }{
		{filepath.Join(cd, "ca.crt"), p.CA},
		{filepath.Join(cd, "cluster.key"), p.Key},
		{filepath.Join(cd, pl.h.Name+".crt"), p.Cert},
		{filepath.Join(cd, pl.h.Name+".key"), p.CertKey},
	} {
		data, err := os.ReadFile(f.local)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		if err := hereDoc(&script, f.remote, data); err != nil {
			return hostErr(pl.h, "%v", err)
		}
	}
	if err := hereDoc(&script, p.Config, pl.config); err != nil {
		return hostErr(pl.h, "%v", err)
	}
	sum, err := l.bins.sum(pl.binary)
	if err != nil {
		return err
	}
	what := "binary unchanged"
	var stdin io.Reader
	if sum != pl.probe.binarySHA256 {
		f, err := os.Open(pl.binary)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		stdin = f
		what = fmt.Sprintf("binary copied, %.1f MB", float64(st.Size())/1e6)
		tmp := p.Binary + ".part"
		fmt.Fprintf(&script, "cat > %s && chmod 755 %s && mv -f %s %s || exit 1\n", shq(tmp), shq(tmp), shq(tmp), shq(p.Binary))
	}
	start := time.Now()
	if _, err := pl.conn.run(ctx, script.String(), stdin); err != nil {
		return hostErr(pl.h, "installing into %s: %v", p.Dir, err)
	}
	l.out.host(pl.h, "installed in %s in %.1f s (%s; credentials and node.yaml written)", p.Dir, time.Since(start).Seconds(), what)
	return nil
}

// hereDoc adds to script the writing of data to the file dst (0600). The
// data must be text ending in a newline, as credentials and configs are;
// the delimiter is random, and checked not to be in it.
func hereDoc(script *strings.Builder, dst string, data []byte) error {
	if len(data) == 0 || data[len(data)-1] != '\n' || bytes.IndexByte(data, 0) >= 0 {
		return fmt.Errorf("%s: not text ending in a newline", path.Base(dst))
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	eof := "QFLEET_EOF_" + hex.EncodeToString(r[:])
	if bytes.Contains(data, []byte(eof)) {
		return fmt.Errorf("%s: holds the here-document's delimiter", path.Base(dst))
	}
	tmp := dst + ".part"
	fmt.Fprintf(script, "cat > %s <<'%s' || exit 1\n%s%s\nmv -f %s %s || exit 1\n", shq(tmp), eof, data, eof, shq(tmp), shq(dst))
	return nil
}

// start starts the node of pl, as its mode says.
func (l *launcher) start(ctx context.Context, pl *plan) error {
	var script string
	if pl.mode == StartSystemd {
		script = systemdScript(unitName(l.spec.Name, pl.h.Name), pl.paths, pl.h.Args, l.spec.StopGrace, !pl.probe.root)
	} else {
		script = detachedScript(pl.paths, pl.h.Args, pl.probe.setsid)
	}
	out, err := pl.conn.run(ctx, script, nil)
	if err != nil {
		return hostErr(pl.h, "starting the node (%s): %v", pl.mode, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return hostErr(pl.h, "starting the node (%s): no pid (%q); see %s", pl.mode, strings.TrimSpace(out), pl.paths.Log)
	}
	pl.pid = pid
	l.out.host(pl.h, "started: pid %d (%s), log %s", pid, pl.mode, pl.paths.Log)
	return nil
}

// waitJoined waits until the node of every plan in pls has printed the
// line a node prints once it is in the cluster, printing each as it comes.
// A node whose process ends first is an error with its log's last line.
func (l *launcher) waitJoined(ctx context.Context, pls []*plan, deadline time.Time) error {
	return oneLine(forEach(hostsOf(pls), func(h *Host) error {
		pl := planOf(pls, h)
		for {
			st, err := readState(ctx, pl.conn, 3)
			if err != nil {
				return err
			}
			switch {
			case st.up != "":
				l.out.host(h, "joined: %s", st.up)
				return nil
			case st.pid == 0:
				return hostErr(h, "the node ended at start: %s (qfleet logs %s %s)", lastOf(st.log), l.spec.Path, h.Name)
			case time.Now().After(deadline):
				return hostErr(h, "the node did not join the cluster within %v: %s", l.wait, lastOf(st.log))
			}
			if err := sleep(ctx, l.poll); err != nil {
				return err
			}
		}
	}))
}

func lastOf(lines []string) string {
	if len(lines) == 0 {
		return "its log is empty"
	}
	return "its log ends: " + strings.TrimSpace(lines[len(lines)-1])
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
