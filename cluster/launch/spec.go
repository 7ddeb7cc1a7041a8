package launch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/yamlstrict"
)

// Spec is a parsed, checked cluster file: what Load and Parse return and
// what Launch, Down, Status and Logs act on. Paths in it are absolute on
// this machine (local files) or as the host's login shell sees them (Dir).
type Spec struct {
	Path        string        // the cluster file, for messages
	Name        string        // the cluster's name: default directories, systemd unit names
	Credentials string        // local directory of the CA, the gossip key and the node certificates
	StopGrace   time.Duration // SIGTERM, then SIGKILL after this
	Hosts       []*Host       // in the file's order
}

// Host is one machine of the cluster and the one node it runs.
type Host struct {
	Name    string   // node name, unique in the cluster
	Address string   // what SSH dials (host name or IP)
	Roles   []string // the node's roles (qfleet node --roles)
	SSH     SSH

	// Where the node listens and how peers reach it.
	Bind      string // IP the gossip and remote ports bind (0.0.0.0 behind NAT)
	Advertise string // IP peers dial; "" when Bind is it
	Gossip    int    // memberlist port, TCP and UDP
	Remote    int    // protoactor remote port, TCP
	HTTP      string // the node's dashboard and /status (host:port); "" for none

	Dir      string            // the node's directory on the host: absolute, or relative to the login's home
	Binary   string            // local qfleet binary for this host; "" to pick from Binaries or the running one
	Binaries map[string]string // GOARCH → local qfleet binary
	Start    string            // StartAuto, StartSystemd or StartDetached
	Settings map[string]any    // the node's config keys: config files, then settings
	Args     []string          // extra 'qfleet node' flags
}

// SSH is how to log in to a host.
type SSH struct {
	User        string
	Port        int
	Keys        []string // private key files (unencrypted; encrypted keys go through the agent)
	Agent       bool     // also offer the keys of ssh-agent (SSH_AUTH_SOCK)
	KnownHosts  string   // known_hosts file checked when Fingerprint is ""
	Fingerprint string   // SHA256:... of the host key, instead of KnownHosts
	Timeout     time.Duration
}

// Start modes of a node.
const (
	StartAuto     = "auto"     // systemd when the host runs it as PID 1 and the login is root, else detached
	StartSystemd  = "systemd"  // a transient unit (systemd-run)
	StartDetached = "detached" // setsid + nohup, a pid file and a log file in the node's directory
)

// Defaults of a cluster file.
const (
	DefaultGossipPort = 7946
	DefaultRemotePort = 7947
	DefaultHTTPPort   = 9090
	DefaultStopGrace  = 30 * time.Second
	DefaultSSHTimeout = 10 * time.Second
)

// Addr is the host's SSH address, host:port.
func (h *Host) Addr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.SSH.Port)) }

// PeerIP is the IP other nodes dial this node at.
func (h *Host) PeerIP() string {
	if h.Advertise != "" {
		return h.Advertise
	}
	return h.Bind
}

// HasRole reports whether the host's node has role r.
func (h *Host) HasRole(r string) bool { return slices.Contains(h.Roles, r) }

// Host returns the host named name, or nil.
func (s *Spec) Host(name string) *Host {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Names are the node names, in the file's order.
func (s *Spec) Names() []string {
	out := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		out[i] = h.Name
	}
	return out
}

// Seed is the host every other node joins: the learner's, else the first.
// It starts first, with no one to join.
func (s *Spec) Seed() *Host {
	for _, h := range s.Hosts {
		if h.HasRole(actors.RoleLearner) {
			return h
		}
	}
	return s.Hosts[0]
}

// StatusHost is the host whose /status lists the members: the learner's,
// when it serves HTTP; nil when none does.
func (s *Spec) StatusHost() *Host {
	for _, h := range s.Hosts {
		if h.HasRole(actors.RoleLearner) && h.HTTP != "" {
			return h
		}
	}
	return nil
}

// The file as written.
type specFile struct {
	Name        string            `yaml:"name"`
	Credentials string            `yaml:"credentials"`
	Binary      string            `yaml:"binary"`
	Binaries    map[string]string `yaml:"binaries"`
	Dir         string            `yaml:"dir"`
	Start       string            `yaml:"start"`
	StopGrace   string            `yaml:"stop_grace"`
	SSH         sshFile           `yaml:"ssh"`
	Ports       portsFile         `yaml:"ports"`
	Config      string            `yaml:"config"`
	Settings    map[string]any    `yaml:"settings"`
	Args        []string          `yaml:"args"`
	Hosts       []hostFile        `yaml:"hosts"`
}

type hostFile struct {
	Name      string         `yaml:"name"`
	Address   string         `yaml:"address"`
	Roles     roleList       `yaml:"roles"`
	SSH       sshFile        `yaml:"ssh"`
	Ports     portsFile      `yaml:"ports"`
	Bind      string         `yaml:"bind"`
	Advertise string         `yaml:"advertise"`
	HTTP      string         `yaml:"http"`
	Dir       string         `yaml:"dir"`
	Binary    string         `yaml:"binary"`
	Start     string         `yaml:"start"`
	Config    string         `yaml:"config"`
	Settings  map[string]any `yaml:"settings"`
	Args      []string       `yaml:"args"`
}

type sshFile struct {
	User               string   `yaml:"user"`
	Port               int      `yaml:"port"`
	Key                string   `yaml:"key"`
	Keys               []string `yaml:"keys"`
	Agent              *bool    `yaml:"agent"`
	KnownHosts         string   `yaml:"known_hosts"`
	HostKeyFingerprint string   `yaml:"host_key_fingerprint"`
	Timeout            string   `yaml:"timeout"`
}

type portsFile struct {
	Gossip int `yaml:"gossip"`
	Remote int `yaml:"remote"`
	HTTP   int `yaml:"http"`
}

// roleList takes roles as a YAML list or as 'qfleet node --roles' does, a
// comma-separated string.
type roleList []string

func (r *roleList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		for _, p := range strings.Split(n.Value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*r = append(*r, p)
			}
		}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*r = l
		return nil
	}
	return fmt.Errorf("line %d: roles: want a list of roles", n.Line)
}

// Keys a file may hold, for the message about one it may not.
const (
	topKeys  = "name, credentials, binary, binaries, dir, start, stop_grace, ssh, ports, config, settings, args, hosts"
	hostKeys = "name, address, roles, ssh, ports, bind, advertise, http, dir, binary, start, config, settings, args"
	sshKeys  = "user, port, key, keys, agent, known_hosts, host_key_fingerprint, timeout"
	portKeys = "gossip, remote, http"
)

// launchOwnKeys are the config keys the launch writes itself, from the
// host's entry: a setting of them would be overwritten, so it is refused
// with where the value comes from.
var launchOwnKeys = map[string]string{
	"name":             "the host's name",
	"roles":            "the host's roles",
	"join":             "the seed host's address (the learner's host, else the first)",
	"gossip_addr":      "the host's bind address and ports.gossip",
	"remote_addr":      "the host's bind address and ports.remote",
	"advertise":        "the host's advertise",
	"http":             "the host's http (or ports.http on the learner's host)",
	"cluster_key_file": "the credentials",
	"tls_cert":         "the credentials",
	"tls_key":          "the credentials",
	"tls_ca":           "the credentials",
	"insecure":         "the credentials (a launched cluster is always secured)",
}

var (
	clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	goarchs     = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x"}
)

// Load reads and checks a cluster file. Relative local paths in it
// (credentials, binaries, config files, keys) are relative to its directory.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster file: %w", err)
	}
	return Parse(data, path)
}

// Parse checks cluster file data; path names it in errors and locates its
// relative paths. Every error is one line, "cluster file PATH: FIELD: ...",
// naming the field at fault (hosts[i] (NAME) for a host's).
func Parse(data []byte, path string) (*Spec, error) {
	bad := func(err error) (*Spec, error) { return nil, fmt.Errorf("cluster file %s: %w", path, err) }
	var f specFile
	if err := decode(data, &f); err != nil {
		return bad(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return bad(err)
	}
	p := parser{dir: filepath.Dir(abs)}
	s := &Spec{Path: path, Name: f.Name, StopGrace: DefaultStopGrace}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if !clusterName.MatchString(s.Name) {
		return bad(fmt.Errorf("name = %q: want letters, digits, '.', '_' and '-' (it names directories and systemd units)", s.Name))
	}
	s.Credentials = p.local(f.Credentials)
	if f.Credentials == "" {
		s.Credentials = filepath.Join(p.dir, s.Name+"-credentials")
	}
	if f.StopGrace != "" {
		if s.StopGrace, err = time.ParseDuration(f.StopGrace); err != nil || s.StopGrace <= 0 {
			return bad(fmt.Errorf("stop_grace = %q: want a positive duration such as 30s", f.StopGrace))
		}
	}
	top, err := p.topDefaults(&f, s.Name)
	if err != nil {
		return bad(err)
	}
	if len(f.Hosts) == 0 {
		return bad(errors.New("hosts: none listed (want at least one host with name, address and roles)"))
	}
	for i := range f.Hosts {
		h, err := p.host(&f.Hosts[i], top)
		if err != nil {
			where := fmt.Sprintf("hosts[%d]", i)
			if f.Hosts[i].Name != "" {
				where += " (" + f.Hosts[i].Name + ")"
			}
			return bad(fmt.Errorf("%s: %w", where, err))
		}
		s.Hosts = append(s.Hosts, h)
	}
	if err := checkTogether(s); err != nil {
		return bad(err)
	}
	return s, nil
}

// places says yaml's Go types in the file's words.
var places = map[string]yamlstrict.Place{
	"launch.specFile":  {Keys: "keys: " + topKeys, Into: "a map"},
	"launch.hostFile":  {Keys: "host keys: " + hostKeys, Into: "a map"},
	"launch.sshFile":   {Keys: "ssh keys: " + sshKeys, Into: "a map"},
	"launch.portsFile": {Keys: "ports keys: " + portKeys, Into: "a map"},
}

// decode reads the file strictly: an unknown key is an error naming it and
// the keys its place takes, on one line.
func decode(data []byte, f *specFile) error {
	err := yamlstrict.Decode(data, f, places)
	if errors.Is(err, io.EOF) {
		return errors.New("empty (want name, hosts and the rest; see 'qfleet launch --help')")
	}
	return err
}

// parser resolves the file's values; dir is the file's directory.
type parser struct{ dir string }

// local makes a local path absolute: ~/ is the home directory, and a
// relative path is relative to the cluster file.
func (p parser) local(path string) string {
	if path == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.dir, path)
}

// defaults are the top level's values that a host's entry may override.
type defaults struct {
	ssh      SSH
	ports    portsFile
	dir      string
	binary   string
	binaries map[string]string
	start    string
	settings map[string]any
	args     []string
}

func (p parser) topDefaults(f *specFile, name string) (defaults, error) {
	d := defaults{dir: "qfleet-" + name, start: StartAuto, args: f.Args,
		ports: portsFile{Gossip: DefaultGossipPort, Remote: DefaultRemotePort, HTTP: DefaultHTTPPort}}
	if u, err := user.Current(); err == nil {
		d.ssh.User = u.Username
	}
	d.ssh.Port, d.ssh.Timeout = 22, DefaultSSHTimeout
	home, _ := os.UserHomeDir()
	d.ssh.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	var err error
	if d.ssh, err = p.ssh(f.SSH, d.ssh, "ssh"); err != nil {
		return d, err
	}
	if d.ports, err = ports(f.Ports, d.ports, "ports"); err != nil {
		return d, err
	}
	if f.Dir != "" {
		d.dir = f.Dir
	}
	if f.Start != "" {
		d.start = f.Start
	}
	if err := checkStart(d.start, "start"); err != nil {
		return d, err
	}
	if f.Binary != "" {
		if d.binary, err = p.file(f.Binary, "binary"); err != nil {
			return d, err
		}
	}
	d.binaries = map[string]string{}
	for arch, path := range f.Binaries {
		if !slices.Contains(goarchs, arch) {
			return d, fmt.Errorf("binaries: %q: not a GOARCH (want one of %s)", arch, strings.Join(goarchs, ", "))
		}
		if d.binaries[arch], err = p.file(path, "binaries."+arch); err != nil {
			return d, err
		}
	}
	d.settings = map[string]any{}
	if err := p.addSettings(d.settings, f.Config, f.Settings, ""); err != nil {
		return d, err
	}
	return d, nil
}

// file checks that a local file exists and returns its absolute path.
func (p parser) file(path, field string) (string, error) {
	abs := p.local(path)
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%s: %s is a directory, want a file", field, abs)
	}
	return abs, nil
}

// ssh overrides base with the values f gives; field names f in errors.
func (p parser) ssh(f sshFile, base SSH, field string) (SSH, error) {
	s := base
	s.Keys = slices.Clone(base.Keys)
	if f.User != "" {
		s.User = f.User
	}
	if f.Port != 0 {
		if f.Port < 1 || f.Port > 65535 {
			return s, fmt.Errorf("%s.port = %d: want 1..65535", field, f.Port)
		}
		s.Port = f.Port
	}
	if f.Key != "" || len(f.Keys) > 0 {
		s.Keys = nil
		for _, k := range append([]string{f.Key}, f.Keys...) {
			if k == "" {
				continue
			}
			path, err := p.file(k, field+".key")
			if err != nil {
				return s, err
			}
			s.Keys = append(s.Keys, path)
		}
	}
	if f.Agent != nil {
		s.Agent = *f.Agent
	}
	if f.KnownHosts != "" {
		s.KnownHosts = p.local(f.KnownHosts)
	}
	if f.HostKeyFingerprint != "" {
		if err := checkFingerprint(f.HostKeyFingerprint); err != nil {
			return s, fmt.Errorf("%s.host_key_fingerprint = %q: %v", field, f.HostKeyFingerprint, err)
		}
		s.Fingerprint = f.HostKeyFingerprint
	}
	if f.Timeout != "" {
		d, err := time.ParseDuration(f.Timeout)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("%s.timeout = %q: want a positive duration such as 10s", field, f.Timeout)
		}
		s.Timeout = d
	}
	return s, nil
}

// checkFingerprint: the form ssh-keygen -l prints, SHA256 and unpadded
// base64 of 32 bytes.
func checkFingerprint(fp string) error {
	b64, ok := strings.CutPrefix(fp, "SHA256:")
	if !ok {
		return errors.New("want SHA256:... as 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' prints it")
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(raw) != 32 {
		return errors.New("not SHA256: and the base64 of 32 bytes")
	}
	return nil
}

func ports(f, base portsFile, field string) (portsFile, error) {
	out := base
	for _, p := range []struct {
		name string
		v    int
		dst  *int
	}{{"gossip", f.Gossip, &out.Gossip}, {"remote", f.Remote, &out.Remote}, {"http", f.HTTP, &out.HTTP}} {
		if p.v == 0 {
			continue
		}
		if p.v < 1 || p.v > 65535 {
			return out, fmt.Errorf("%s.%s = %d: want 1..65535", field, p.name, p.v)
		}
		*p.dst = p.v
	}
	return out, nil
}

func checkStart(mode, field string) error {
	switch mode {
	case StartAuto, StartSystemd, StartDetached:
		return nil
	}
	return fmt.Errorf("%s = %q: want %s, %s or %s", field, mode, StartAuto, StartSystemd, StartDetached)
}

// addSettings reads a config file (local path) and then inline settings
// into dst, later keys over earlier ones, refusing the keys the launch sets
// itself. where prefixes the field names in errors.
func (p parser) addSettings(dst map[string]any, configFile string, inline map[string]any, where string) error {
	if configFile != "" {
		path, err := p.file(configFile, where+"config")
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%sconfig: %v", where, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%sconfig %s: %s", where, path, strings.ReplaceAll(err.Error(), "\n", `\n`))
		}
		if err := mergeSettings(dst, m, where+"config "+path); err != nil {
			return err
		}
	}
	return mergeSettings(dst, inline, where+"settings")
}

func mergeSettings(dst, src map[string]any, where string) error {
	for k, v := range src {
		if from, ok := launchOwnKeys[k]; ok {
			return fmt.Errorf("%s: %s: set by launch from %s", where, k, from)
		}
		dst[k] = v
	}
	return nil
}
