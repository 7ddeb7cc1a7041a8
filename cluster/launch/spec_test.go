package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// specDir is a directory with what a cluster file refers to: a key file, a
// config file and a binary (contents irrelevant to parsing).
func specDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"id_test":    "not parsed before a login",
		"train.yaml": "env: CartPole-v1\nlearning_rate: 0.001\ntarget_return: 150\n",
		"qfleet":     "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodSpec = `name: lab
ssh: {user: root, key: id_test, known_hosts: kh}
config: train.yaml
settings: {profile: lan}
hosts:
  - name: A
    address: 10.9.0.10
    roles: [replay, learner, broadcaster]
    settings: {target_return: 100}
  - name: B
    address: 10.9.0.11
    roles: runner
    ssh: {port: 2222, host_key_fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}
  - name: C
    address: node-c.example
    bind: 0.0.0.0
    advertise: 198.51.100.7
    roles: [runner, evaluator]
    ports: {gossip: 8000, remote: 8001}
    dir: /srv/qfleet
    args: [--log-level, info]
`

func parseIn(t *testing.T, dir, text string) (*Spec, error) {
	t.Helper()
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

// TestParseSpec: a good file resolves every default and override as the
// help says: paths relative to the file, a host's ssh over the top's, the
// learner's dashboard on loopback, NAT binds 0.0.0.0, settings merged
// config file < top settings < host settings.
func TestParseSpec(t *testing.T) {
	dir := specDir(t)
	s, err := parseIn(t, dir, goodSpec)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "lab" || s.Credentials != filepath.Join(dir, "lab-credentials") || s.StopGrace != DefaultStopGrace {
		t.Errorf("name %q credentials %q grace %v", s.Name, s.Credentials, s.StopGrace)
	}
	a, b, c := s.Host("A"), s.Host("B"), s.Host("C")
	if a.SSH.User != "root" || a.SSH.Port != 22 || len(a.SSH.Keys) != 1 || a.SSH.Keys[0] != filepath.Join(dir, "id_test") ||
		a.SSH.KnownHosts != filepath.Join(dir, "kh") || a.SSH.Timeout != DefaultSSHTimeout {
		t.Errorf("A's ssh: %+v", a.SSH)
	}
	if b.SSH.Port != 2222 || b.SSH.User != "root" || b.SSH.Fingerprint == "" || b.Addr() != "10.9.0.11:2222" {
		t.Errorf("B's ssh: %+v", b.SSH)
	}
	if a.Bind != "10.9.0.10" || a.PeerIP() != "10.9.0.10" || a.HTTP != "127.0.0.1:9090" || a.Gossip != 7946 || a.Remote != 7947 {
		t.Errorf("A: bind %s http %s ports %d/%d", a.Bind, a.HTTP, a.Gossip, a.Remote)
	}
	if b.HTTP != "" || strings.Join(b.Roles, ",") != "runner" {
		t.Errorf("B: http %q roles %v", b.HTTP, b.Roles)
	}
	if c.Bind != "0.0.0.0" || c.PeerIP() != "198.51.100.7" || c.Gossip != 8000 || c.Dir != "/srv/qfleet" || strings.Join(c.Args, " ") != "--log-level info" {
		t.Errorf("C: %+v", c)
	}
	if a.Dir != "qfleet-lab" {
		t.Errorf("A's dir %q, want qfleet-lab (relative to the home)", a.Dir)
	}
	if a.Settings["target_return"] != 100 || b.Settings["target_return"] != 150 || a.Settings["profile"] != "lan" || a.Settings["learning_rate"] != 0.001 {
		t.Errorf("settings: A %v, B %v", a.Settings, b.Settings)
	}
	if s.Seed() != a || s.StatusHost() != a {
		t.Errorf("seed %s, status host %v; want A", s.Seed().Name, s.StatusHost())
	}
}

// TestParseSpecErrors: every bad field is refused with one line that names
// it (and the host it is in).
func TestParseSpecErrors(t *testing.T) {
	dir := specDir(t)
	host := func(extra string) string {
		return "ssh: {key: id_test}\nhosts:\n  - name: A\n    address: 10.9.0.10\n    roles: [learner, replay, broadcaster]\n" + extra
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"empty", "", "empty"},
		{"unknown top key", "hostz: []\n", "unknown key hostz"},
		{"unknown host key", host("    adress: x\n"), "unknown key adress"},
		{"unknown ssh key", host("    ssh: {usr: x}\n"), "unknown key usr"},
		{"bad name", "name: a/b\n" + host(""), `name = "a/b"`},
		{"no hosts", "ssh: {key: id_test}\n", "hosts: none listed"},
		{"host without name", "ssh: {key: id_test}\nhosts:\n  - address: 10.9.0.10\n    roles: [runner]\n", "hosts[0]: name: missing"},
		{"bad host name", "ssh: {key: id_test}\nhosts:\n  - name: 'a b'\n    address: 10.9.0.10\n    roles: [runner]\n", `name = "a b"`},
		{"no address", "ssh: {key: id_test}\nhosts:\n  - name: A\n    roles: [runner]\n", "hosts[0] (A): address: missing"},
		{"address with port", "ssh: {key: id_test}\nhosts:\n  - name: A\n    address: 10.9.0.10:22\n    roles: [runner]\n", `address = "10.9.0.10:22"`},
		{"no roles", "ssh: {key: id_test}\nhosts:\n  - name: A\n    address: 10.9.0.10\n", "hosts[0] (A): roles: missing"},
		{"unknown role", host("  - name: B\n    address: 10.9.0.11\n    roles: [runer]\n"), `hosts[1] (B): roles: unknown role "runer"`},
		{"role twice", "ssh: {key: id_test}\nhosts:\n  - name: A\n    address: 10.9.0.10\n    roles: [runner, runner]\n", "roles: runner listed twice"},
		{"no key", "ssh: {agent: false}\nhosts:\n  - name: A\n    address: 10.9.0.10\n    roles: [runner]\n", "ssh: no key"},
		{"missing key file", host("    ssh: {key: nope}\n"), "hosts[0] (A): ssh.key: stat"},
		{"bad ssh port", host("    ssh: {port: 70000}\n"), "ssh.port = 70000"},
		{"bad fingerprint", host("    ssh: {host_key_fingerprint: 'MD5:ab'}\n"), "ssh.host_key_fingerprint"},
		{"short fingerprint", host("    ssh: {host_key_fingerprint: 'SHA256:abcd'}\n"), "ssh.host_key_fingerprint"},
		{"bad timeout", "ssh: {key: id_test, timeout: soon}\nhosts:\n  - name: A\n    address: 10.9.0.10\n    roles: [runner]\n", `ssh.timeout = "soon"`},
		{"bad port", host("    ports: {gossip: 0x10000}\n"), "ports.gossip = 65536"},
		{"same ports", host("    ports: {gossip: 7000, remote: 7000}\n"), "ports: gossip and remote are both 7000"},
		{"name address without bind", "ssh: {key: id_test}\nhosts:\n  - name: A\n    address: a.example\n    roles: [runner]\n", "address a.example is a name: give bind"},
		{"bad bind", host("    bind: eth0\n"), `bind = "eth0"`},
		{"wildcard without advertise", host("    bind: 0.0.0.0\n"), "give advertise"},
		{"bad advertise", host("    advertise: public.example\n"), `advertise = "public.example"`},
		{"bad http", host("    http: localhost\n"), `http = "localhost"`},
		{"http on the gossip port", host("    http: 127.0.0.1:7946\n"), "port 7946 is the node's gossip or remote port"},
		{"http on trials node", "ssh: {key: id_test}\nhosts:\n  - name: T\n    address: 10.9.0.10\n    roles: [trials]\n    http: 127.0.0.1:9000\n", "a node with the trials role alone serves no HTTP"},
		{"bad start", "start: forever\n" + host(""), `start = "forever"`},
		{"bad stop_grace", "stop_grace: -1s\n" + host(""), `stop_grace = "-1s"`},
		{"bad dir", host("    dir: /\n"), `dir = "/"`},
		{"missing binary", "binary: nope\n" + host(""), "binary: stat"},
		{"bad binaries arch", "binaries: {x86: qfleet}\n" + host(""), `binaries: "x86": not a GOARCH`},
		{"missing config", "config: nope.yaml\n" + host(""), "config: stat"},
		{"launch's own key", "settings: {gossip_addr: 1.2.3.4:5}\n" + host(""), "settings: gossip_addr: set by launch"},
		{"launch's own key in a host", host("    settings: {tls_cert: x}\n"), "hosts[0] (A): settings: tls_cert: set by launch"},
		{"unknown setting", host("    settings: {learning_rat: 0.1}\n"), "settings: learning_rat: unknown config key"},
		{"bad setting value", host("    settings: {gamma: 1.5}\n"), "gamma = 1.5"},
		{"bad setting type", host("    settings: {batch_size: many}\n"), "settings: batch_size: cannot unmarshal"},
		{"bad profile", host("    settings: {profile: moon}\n"), `profile = "moon"`},
		{"config in args", host("    args: [--config, x.yaml]\n"), "args: --config"},
		{"duplicate name", host("  - name: A\n    address: 10.9.0.11\n    roles: [runner]\n"), "hosts: A listed twice"},
		{"same dir on one machine", host("  - name: B\n    address: 10.9.0.10\n    roles: [runner]\n    ports: {gossip: 8000, remote: 8001}\n"), "hosts A and B: both on 10.9.0.10 with dir"},
		{"same port on one machine", host("  - name: B\n    address: 10.9.0.10\n    roles: [runner]\n    dir: other\n    ports: {gossip: 7947, remote: 8001}\n"), "use port 7947"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseIn(t, dir, tc.spec)
			if err == nil {
				t.Fatalf("parsed; want an error with %q", tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "cluster file ") {
				t.Errorf("error %q: want one line starting 'cluster file' with %q", msg, tc.want)
			}
		})
	}
}

// TestParseSpecDefaults: a minimal file: the name from the file, defaults
// for ports, dir, grace, start; roles as a comma-separated string.
func TestParseSpecDefaults(t *testing.T) {
	dir := specDir(t)
	s, err := parseIn(t, dir, "ssh: {key: id_test}\nstop_grace: 5s\nhosts:\n  - {name: T, address: 10.9.0.10, roles: 'trials'}\n")
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hosts[0]
	if s.Name != "lab" || s.StopGrace != 5*time.Second || h.Start != StartAuto || h.Dir != "qfleet-lab" || h.HTTP != "" || h.Gossip != DefaultGossipPort {
		t.Errorf("spec %+v host %+v", s, h)
	}
	if s.StatusHost() != nil || s.Seed() != h {
		t.Errorf("a trials-only cluster: status host %v (want none), seed %v", s.StatusHost(), s.Seed())
	}
}

// TestExampleClusterFile: the README's example file parses, and says what
// the README says of it.
func TestExampleClusterFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load("../../docs/cluster/three-hosts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "cartpole" || len(s.Hosts) != 3 || s.Seed().Name != "A" || s.StatusHost().HTTP != "127.0.0.1:9090" {
		t.Errorf("example: %+v", s)
	}
	if c := s.Host("C"); c.Bind != "0.0.0.0" || c.PeerIP() != "198.51.100.7" || c.SSH.Port != 2222 || c.SSH.User != "ubuntu" {
		t.Errorf("example's C: %+v", c)
	}
}
