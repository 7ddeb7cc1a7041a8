package launch

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
)

// host resolves one host's entry over the top level's values.
func (p parser) host(f *hostFile, top defaults) (*Host, error) {
	if f.Name == "" {
		return nil, errors.New("name: missing (the node's name, unique in the cluster)")
	}
	if !cluster.CertNameOK(f.Name) {
		return nil, fmt.Errorf("name = %q: want letters, digits, '.', '_' and '-' (it names the node's certificate)", f.Name)
	}
	if f.Address == "" {
		return nil, errors.New("address: missing (the host name or IP that SSH dials)")
	}
	if strings.ContainsAny(f.Address, " /@") || strings.Count(f.Address, ":") == 1 {
		return nil, fmt.Errorf("address = %q: want a host name or IP without user or port (ssh.user and ssh.port set those)", f.Address)
	}
	h := &Host{Name: f.Name, Address: f.Address, Dir: top.dir, Binary: top.binary, Binaries: top.binaries,
		Start: top.start, Args: slices.Concat(top.args, f.Args)}
	if err := checkRoles(f.Roles); err != nil {
		return nil, err
	}
	h.Roles = f.Roles
	var err error
	if h.SSH, err = p.ssh(f.SSH, top.ssh, "ssh"); err != nil {
		return nil, err
	}
	if len(h.SSH.Keys) == 0 && !h.SSH.Agent {
		return nil, errors.New("ssh: no key: give ssh.key (a private key file) or ssh.agent: true (ssh-agent's keys)")
	}
	pf, err := ports(f.Ports, top.ports, "ports")
	if err != nil {
		return nil, err
	}
	if pf.Gossip == pf.Remote {
		return nil, fmt.Errorf("ports: gossip and remote are both %d: want two ports", pf.Gossip)
	}
	h.Gossip, h.Remote = pf.Gossip, pf.Remote
	if err := p.addresses(h, f); err != nil {
		return nil, err
	}
	if err := h.setHTTP(f.HTTP, pf.HTTP); err != nil {
		return nil, err
	}
	if ps := h.ports(); len(ps) == 3 && (ps[2] == ps[0] || ps[2] == ps[1]) {
		return nil, fmt.Errorf("http %s: port %d is the node's gossip or remote port", h.HTTP, ps[2])
	}
	if f.Dir != "" {
		h.Dir = f.Dir
	}
	if h.Dir, err = remoteDir(h.Dir); err != nil {
		return nil, err
	}
	if f.Binary != "" {
		if h.Binary, err = p.file(f.Binary, "binary"); err != nil {
			return nil, err
		}
	}
	if f.Start != "" {
		h.Start = f.Start
	}
	if err := checkStart(h.Start, "start"); err != nil {
		return nil, err
	}
	for _, a := range h.Args {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "config" {
			return nil, fmt.Errorf("args: %s: the launch gives the node its config file; use config or settings", a)
		}
	}
	h.Settings = maps.Clone(top.settings)
	if err := p.addSettings(h.Settings, f.Config, f.Settings, ""); err != nil {
		return nil, err
	}
	if _, err := nodeConfig(h, nil, Paths{}); err != nil {
		return nil, err
	}
	return h, nil
}

func checkRoles(roles []string) error {
	known := append(actors.KnownRoles(), cluster.RoleTrials)
	if len(roles) == 0 {
		return fmt.Errorf("roles: missing (some of %s)", strings.Join(known, ", "))
	}
	for i, r := range roles {
		if !slices.Contains(known, r) {
			return fmt.Errorf("roles: unknown role %q (roles: %s)", r, strings.Join(known, ", "))
		}
		if slices.Contains(roles[:i], r) {
			return fmt.Errorf("roles: %s listed twice", r)
		}
	}
	return nil
}

// addresses sets Bind and Advertise: the node binds the address SSH dials
// unless told otherwise; behind NAT (advertise given) it binds every
// interface and peers dial the advertised IP. Gossip binds and advertises
// IPs only, so names are refused here rather than by the node.
func (p parser) addresses(h *Host, f *hostFile) error {
	if f.Advertise != "" {
		if ip := net.ParseIP(f.Advertise); ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("advertise = %q: want the IP other nodes dial this one at", f.Advertise)
		}
		h.Advertise = f.Advertise
	}
	h.Bind = f.Bind
	switch {
	case h.Bind != "":
		if net.ParseIP(h.Bind) == nil {
			return fmt.Errorf("bind = %q: want an IP of the host (or 0.0.0.0 with advertise)", h.Bind)
		}
	case h.Advertise != "":
		h.Bind = "0.0.0.0"
	case net.ParseIP(h.Address) != nil:
		h.Bind = h.Address
	default:
		return fmt.Errorf("address %s is a name: give bind, the IP the node listens on (or advertise, the IP peers dial, to listen on every interface)", h.Address)
	}
	if net.ParseIP(h.Bind).IsUnspecified() && h.Advertise == "" {
		return fmt.Errorf("bind = %s listens on every interface: give advertise, the IP other nodes dial", h.Bind)
	}
	return nil
}

// setHTTP: an explicit http address, else the learner's dashboard on the
// host's loopback at ports.http (Status reads it through SSH, so it need
// not be reachable from anywhere else).
func (h *Host) setHTTP(explicit string, port int) error {
	trialsOnly := len(h.Roles) == 1 && h.Roles[0] == cluster.RoleTrials
	switch {
	case explicit != "" && trialsOnly:
		return fmt.Errorf("http = %q: a node with the trials role alone serves no HTTP", explicit)
	case explicit != "":
		host, ps, err := net.SplitHostPort(explicit)
		if n, perr := strconv.Atoi(ps); err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
			return fmt.Errorf("http = %q: want IP:PORT (e.g. 127.0.0.1:9090)", explicit)
		}
		h.HTTP = explicit
	case h.HasRole(actors.RoleLearner):
		h.HTTP = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	return nil
}

// remoteDir cleans a remote directory: ~/x is x relative to the home.
func remoteDir(d string) (string, error) {
	d = strings.TrimPrefix(d, "~/")
	if d == "" || d == "~" || strings.ContainsAny(d, "\n\x00") {
		return "", fmt.Errorf("dir = %q: want a directory for the node's files (absolute, or relative to the login's home)", d)
	}
	clean := filepath.Clean(d)
	if clean == "/" || clean == "." || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("dir = %q: want a directory of its own for the node's files", d)
	}
	return clean, nil
}

// checkTogether checks what no host's entry can alone: unique names, and
// two nodes on one machine not sharing a port or a directory.
func checkTogether(s *Spec) error {
	for i, a := range s.Hosts {
		for _, b := range s.Hosts[:i] {
			if a.Name == b.Name {
				return fmt.Errorf("hosts: %s listed twice (node names are unique)", a.Name)
			}
			if a.Address != b.Address || a.SSH.Port != b.SSH.Port {
				continue
			}
			if a.Dir == b.Dir {
				return fmt.Errorf("hosts %s and %s: both on %s with dir %s: give each a dir of its own", b.Name, a.Name, a.Address, a.Dir)
			}
			for _, pa := range a.ports() {
				if slices.Contains(b.ports(), pa) {
					return fmt.Errorf("hosts %s and %s: both on %s use port %d", b.Name, a.Name, a.Address, pa)
				}
			}
		}
	}
	return nil
}

// ports are the ports the node listens on.
func (h *Host) ports() []int {
	out := []int{h.Gossip, h.Remote}
	if h.HTTP != "" {
		_, p, _ := net.SplitHostPort(h.HTTP)
		n, _ := strconv.Atoi(p)
		out = append(out, n)
	}
	return out
}
