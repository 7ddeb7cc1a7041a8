package launch

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// socket is one bound socket of a host, from /proc/net/{tcp,tcp6,udp,udp6}.
type socket struct {
	proto string // "tcp" or "udp"
	ip    net.IP
	port  int
}

// tcpListen is the st column of a listening TCP socket in /proc/net/tcp.
const tcpListen = "0A"

// parseSockets reads one /proc/net table (name: tcp, tcp6, udp, udp6) of a
// host whose byte order is order: the listening TCP sockets, or every bound
// UDP socket.
func parseSockets(name string, lines []string, order binary.ByteOrder) ([]socket, error) {
	proto := strings.TrimSuffix(name, "6")
	if proto != "tcp" && proto != "udp" {
		return nil, nil
	}
	var out []socket
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "sl" {
			continue
		}
		if proto == "tcp" && f[3] != tcpListen {
			continue
		}
		hexIP, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("/proc/net/%s: local address %q", name, f[1])
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s: port %q", name, hexPort)
		}
		ip, err := procIP(hexIP, order)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s: %v", name, err)
		}
		out = append(out, socket{proto: proto, ip: ip, port: int(port)})
	}
	return out, nil
}

// procIP decodes /proc/net's address: the hex of 32-bit words as the
// host stores them (on a little-endian host 127.0.0.1 is 0100007F).
func procIP(h string, order binary.ByteOrder) (net.IP, error) {
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, fmt.Errorf("address %q", h)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], order.Uint32(raw[i:]))
	}
	return ip, nil
}

// byteOrder is the byte order of a host whose uname -m is arch.
func byteOrder(arch string) binary.ByteOrder {
	switch arch {
	case "s390x", "ppc64", "ppc", "mips", "mips64", "sparc64":
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// portUse is one port the node needs, for the message when it is taken.
type portUse struct {
	what  string // "gossip", "remote", "http"
	proto string
	ip    net.IP
	port  int
}

// portsNeeded are the sockets h's node binds: gossip on TCP and UDP, the
// remote and the dashboard on TCP.
func portsNeeded(h *Host) []portUse {
	bind := net.ParseIP(h.Bind)
	out := []portUse{{"gossip", "tcp", bind, h.Gossip}, {"gossip", "udp", bind, h.Gossip}, {"remote", "tcp", bind, h.Remote}}
	if h.HTTP != "" {
		host, p, _ := net.SplitHostPort(h.HTTP)
		n, _ := strconv.Atoi(p)
		ip := net.ParseIP(host)
		if ip == nil {
			ip = net.IPv4zero
		}
		out = append(out, portUse{"http", "tcp", ip, n})
	}
	return out
}

// portConflicts lists the needed ports that a socket of the host holds: the
// same port and protocol, on the same address or where either side is a
// wildcard (which covers every address).
func portConflicts(need []portUse, have []socket) []string {
	var out []string
	for _, n := range need {
		for _, s := range have {
			if s.proto != n.proto || s.port != n.port {
				continue
			}
			if s.ip.IsUnspecified() || n.ip.IsUnspecified() || s.ip.Equal(n.ip) {
				out = append(out, fmt.Sprintf("port %d (%s, %s) is in use on the host (%s:%d)", n.port, n.what, strings.ToUpper(n.proto), s.ip, s.port))
				break
			}
		}
	}
	return out
}
