package launch

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/qfleet/qfleet/internal/testutil"
)

// sshServer is an SSH server in this process (x/crypto's): it speaks the
// real protocol, so dial's host key check and login run against it as
// against sshd; it accepts one user key and opens no sessions.
type sshServer struct {
	addr     string
	hostKeys []ssh.Signer // ECDSA first, ed25519 second: what a Debian sshd has
}

func newSigner(t *testing.T, ecdsaKey bool) ssh.Signer {
	t.Helper()
	var key any
	var err error
	if ecdsaKey {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startSSHServer(t *testing.T, user ssh.PublicKey) *sshServer {
	t.Helper()
	srv := &sshServer{hostKeys: []ssh.Signer{newSigner(t, true), newSigner(t, false)}}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(user.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	for _, k := range srv.hostKeys {
		cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no sessions here")
				}
			}()
		}
	}()
	return srv
}

func testHost(t *testing.T, addr, key string) *Host {
	t.Helper()
	host, ps, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(ps)
	return &Host{Name: "B", Address: host, SSH: SSH{User: "qf", Port: port, Keys: []string{key}, Timeout: 2 * time.Second}}
}

// TestDialHostKeys: the host key checks as a user meets them. known_hosts
// with only the host's ed25519 key (what OpenSSH records) passes although
// the server also has an ECDSA key, which x/crypto would ask for first; a
// fingerprint of the ed25519 key passes; a changed key, an unknown host, a
// refused login and a closed port each end in one line saying so.
func TestDialHostKeys(t *testing.T) {
	dir := t.TempDir()
	key, pub := testutil.WriteSSHKey(t, dir, "id")
	srv := startSSHServer(t, pub)
	ed := srv.hostKeys[1].PublicKey()
	ctx := context.Background()
	knownHosts := func(name string, keys ...ssh.PublicKey) string {
		path := filepath.Join(dir, name)
		var b strings.Builder
		for _, k := range keys {
			host, port, _ := net.SplitHostPort(srv.addr)
			b.WriteString("[" + host + "]:" + port + " " + string(ssh.MarshalAuthorizedKey(k)))
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	h := testHost(t, srv.addr, key)
	h.SSH.KnownHosts = knownHosts("kh-ed25519", ed)
	c, err := dial(ctx, h)
	if err != nil {
		t.Fatalf("known_hosts with the ed25519 key: %v", err)
	}
	c.Close()

	h = testHost(t, srv.addr, key)
	h.SSH.Fingerprint = ssh.FingerprintSHA256(ed)
	if c, err = dial(ctx, h); err != nil {
		t.Fatalf("the ed25519 fingerprint: %v", err)
	}
	c.Close()

	other := newSigner(t, false).PublicKey()
	otherKey, _ := testutil.WriteSSHKey(t, dir, "id_other")
	for _, tc := range []struct {
		name string
		set  func(h *Host)
		want string
	}{
		{"changed key", func(h *Host) { h.SSH.KnownHosts = knownHosts("kh-other", other) }, "host key mismatch: the host shows ssh-ed25519 " + ssh.FingerprintSHA256(ed)},
		{"wrong fingerprint", func(h *Host) { h.SSH.Fingerprint = ssh.FingerprintSHA256(other) }, "host key mismatch"},
		{"unknown host", func(h *Host) { h.SSH.KnownHosts = knownHosts("kh-empty") }, "host key unknown"},
		{"no known_hosts", func(h *Host) { h.SSH.KnownHosts = filepath.Join(dir, "nope") }, "does not exist"},
		{"wrong user key", func(h *Host) { h.SSH.Fingerprint = ssh.FingerprintSHA256(ed); h.SSH.Keys = []string{otherKey} }, "SSH login as qf refused"},
		{"nothing listening", func(h *Host) {
			h.SSH.Fingerprint = ssh.FingerprintSHA256(ed)
			h.SSH.Port = closedPort(t)
		}, "unreachable: connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost(t, srv.addr, key)
			tc.set(h)
			c, err := dial(ctx, h)
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded; want %q", tc.want)
			}
			var he *HostError
			msg := err.Error()
			if !errors.As(err, &he) || he.Host != "B" || !strings.HasPrefix(msg, "host B (") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line 'host B (...)' with %q", msg, tc.want)
			}
		})
	}
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestDialSilentPort: a port that accepts and says nothing (not an SSH
// server) fails at the timeout instead of hanging the launch.
func TestDialSilentPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dir := t.TempDir()
	key, _ := testutil.WriteSSHKey(t, dir, "id")
	h := testHost(t, ln.Addr().String(), key)
	h.SSH.Fingerprint, h.SSH.Timeout = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", 300*time.Millisecond
	start := time.Now()
	_, err = dial(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "no SSH server answered") || time.Since(start) > 3*time.Second {
		t.Fatalf("dial to a silent port: %v after %v; want 'no SSH server answered' within the timeout", err, time.Since(start))
	}
}
