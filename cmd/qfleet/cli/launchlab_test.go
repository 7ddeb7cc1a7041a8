package cli

// What the 'qfleet launch' tests stand on: hosts of a cluster/netlab Lab,
// each running a real OpenSSH server (Debian's sshd, -D in the host's
// network namespace, with host keys, authorized keys and config of the
// test's own), and a control host "ctl" where the qfleet binary runs the
// launch, status, logs and down commands as a user would. The hosts share
// the machine's file system, so each node gets a directory of its own.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/qfleet/qfleet/cluster/netlab"
	"github.com/qfleet/qfleet/internal/testutil"
)

const sshdPath = "/usr/sbin/sshd" // sshd re-executes itself: it wants its absolute path

var sshdOnce struct {
	sync.Mutex
	ok bool
}

// requireSSHD fails the test unless OpenSSH's server is installed, after
// installing Debian's openssh-server if it is not. It never skips. It also
// makes sshd's privilege separation directory, which Debian's service
// makes at boot and a hand-run sshd refuses to start without.
func requireSSHD(t *testing.T) {
	t.Helper()
	sshdOnce.Lock()
	defer sshdOnce.Unlock()
	if sshdOnce.ok {
		return
	}
	if _, err := os.Stat(sshdPath); err != nil {
		apt := func(args ...string) ([]byte, error) {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return cmd.CombinedOutput()
		}
		out, err := apt("install", "-y", "-qq", "openssh-server")
		if err != nil { // a fresh machine has no package lists yet
			if uout, uerr := apt("update", "-qq"); uerr != nil {
				out = append(out, uout...)
			} else {
				out, err = apt("install", "-y", "-qq", "openssh-server")
			}
		}
		if _, serr := os.Stat(sshdPath); serr != nil {
			t.Fatalf("launch tests need OpenSSH's sshd at %s: `apt-get install -y openssh-server` did not provide it (%v); install it by hand. apt-get output:\n%s", sshdPath, err, out)
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd's privilege separation directory: %v", err)
	}
	sshdOnce.ok = true
}

// sshLab is a lab whose hosts run sshd, with the keys a cluster file needs.
type sshLab struct {
	lab        *netlab.Lab
	dir        string // the test's files: keys, cluster files, the nodes' directories
	bin        string
	userKey    string // private key file authorized on every host
	otherKey   string // a key no host authorizes
	knownHosts string // every host's key
	hostKeys   map[string]ssh.PublicKey
	sshd       map[string]*netlab.Process
}

// newSSHLab makes a lab of a control host "ctl" and hosts, each host with
// sshd listening on its address, port 22.
func newSSHLab(t *testing.T, hosts ...string) *sshLab {
	t.Helper()
	requireSSHD(t)
	// Before the lab: its cleanup (which kills what the launch started)
	// must run before this directory is removed.
	l := &sshLab{dir: t.TempDir(), bin: qfleetBinary(t), hostKeys: map[string]ssh.PublicKey{}, sshd: map[string]*netlab.Process{}}
	l.lab = netlab.New(t, append([]string{"ctl"}, hosts...)...)
	t.Cleanup(func() { // before the directory goes: the nodes' logs say what went wrong
		if !t.Failed() {
			return
		}
		for _, h := range hosts {
			for _, f := range []string{"node.log.1", "node.log"} {
				if data, err := os.ReadFile(filepath.Join(l.nodeDir(h), f)); err == nil {
					t.Logf("%s's %s:\n%s", h, f, tailLines(string(data), 40))
				}
			}
		}
	})
	var pub ssh.PublicKey
	l.userKey, pub = testutil.WriteSSHKey(t, l.dir, "id_user")
	l.otherKey, _ = testutil.WriteSSHKey(t, l.dir, "id_other")
	authorized := filepath.Join(l.dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	var kh strings.Builder
	for _, name := range hosts {
		h := l.lab.Host(name)
		hdir := filepath.Join(l.dir, "sshd-"+name)
		if err := os.Mkdir(hdir, 0o700); err != nil {
			t.Fatal(err)
		}
		hostKey, hostPub := testutil.WriteSSHKey(t, hdir, "ssh_host_ed25519_key")
		l.hostKeys[name] = hostPub
		kh.WriteString(h.Addr() + " " + string(ssh.MarshalAuthorizedKey(hostPub)))
		cfg := fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
LogLevel INFO
`, h.Addr(), hostKey, authorized, filepath.Join(hdir, "sshd.pid"))
		cfgPath := filepath.Join(hdir, "sshd_config")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		l.sshd[name] = h.Start(t, "sshd-"+name, sshdPath, "-D", "-e", "-f", cfgPath)
	}
	l.knownHosts = filepath.Join(l.dir, "known_hosts")
	if err := os.WriteFile(l.knownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, p := range l.sshd {
		if err := p.WaitOutput("Server listening on", 10*time.Second); err != nil {
			t.Fatalf("sshd on %s: %v", name, err)
		}
	}
	return l
}

// nodeDir is host's node directory in the test's cluster files.
func (l *sshLab) nodeDir(host string) string { return filepath.Join(l.dir, "hosts", host) }

// qfleet runs the qfleet binary with args on the control host and returns
// its exit code and output.
func (l *sshLab) qfleet(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := l.lab.Host("ctl").Command(ctx, l.bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		code = ee.ExitCode()
	default:
		t.Fatalf("qfleet %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

// nodeProcs lists the qfleet processes (pid: command line) in host's
// network namespace. Zombies have no command line and are not listed.
func (l *sshLab) nodeProcs(t *testing.T, host string) []string {
	t.Helper()
	return l.procsNamed(t, host, "qfleet")
}

// procsNamed lists the processes of program name in host's namespace.
func (l *sshLab) procsNamed(t *testing.T, host, name string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", l.lab.Host(host).Namespace()).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", host, err)
	}
	var procs []string
	for _, f := range strings.Fields(string(out)) {
		cmdline, err := os.ReadFile("/proc/" + f + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(argv[0]) == name {
			procs = append(procs, f+": "+strings.Join(argv, " "))
		}
	}
	return procs
}

// nodePid is the pid in host's node.pid; 0 when there is none.
func (l *sshLab) nodePid(host string) int {
	data, err := os.ReadFile(filepath.Join(l.nodeDir(host), "node.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// inNamespace reports whether pid runs in host's network namespace (the
// one its sshd runs in).
func (l *sshLab) inNamespace(pid int, host string) bool {
	a, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	b, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", l.sshd[host].Pid()))
	return err1 == nil && err2 == nil && a == b
}

// clusterFile writes a cluster file of the lab's hosts, A the learner's
// (replay, learner, broadcaster) and the others runners, with settings (a
// YAML flow map) for every node and extra (YAML lines) at the top level;
// hostExtra adds flow-map keys to a host's entry.
func (l *sshLab) clusterFile(t *testing.T, name, settings, extra string, hostExtra map[string]string, hosts ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "name: lab\nbinary: %s\ncredentials: %s\nstop_grace: 10s\n", l.bin, filepath.Join(l.dir, "credentials"))
	fmt.Fprintf(&b, "ssh: {user: root, key: %s, known_hosts: %s, timeout: 5s}\n", l.userKey, l.knownHosts)
	fmt.Fprintf(&b, "settings: %s\n%s", settings, extra)
	b.WriteString("hosts:\n")
	for _, h := range hosts {
		roles := "[runner]"
		if h == "A" {
			roles = "[replay, learner, broadcaster]"
		}
		more := ""
		if e := hostExtra[h]; strings.HasPrefix(e, "roles:") {
			roles, more = strings.TrimSpace(strings.TrimPrefix(e, "roles:")), ""
		} else if e != "" {
			more = ", " + e
		}
		fmt.Fprintf(&b, "  - {name: %s, address: %s, roles: %s, dir: %s%s}\n", h, l.lab.Host(h).Addr(), roles, l.nodeDir(h), more)
	}
	return testutil.WriteFile(t, l.dir, name, b.String())
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
