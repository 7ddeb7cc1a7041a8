package launch

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyCheck is how one host's key is checked: a callback for the SSH
// handshake, and the host key algorithms to ask for, so that the server
// shows the key the check knows (see algorithmsFor).
type hostKeyCheck struct {
	callback   ssh.HostKeyCallback
	algorithms []string
}

// preferredHostKeyAlgorithms is OpenSSH's order: ed25519 first. x/crypto's
// own default puts ECDSA and RSA before ed25519, so a Debian host (which
// has all three keys) would show its ECDSA key to a check that was given
// the ed25519 fingerprint, the one people copy.
var preferredHostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// newHostKeyCheck builds the check of h's key: its host_key_fingerprint,
// else its known_hosts file. A mismatch is an error that says which key
// the host showed and what was expected; an unknown host, how to add it.
func newHostKeyCheck(h *Host) (hostKeyCheck, error) {
	if fp := h.SSH.Fingerprint; fp != "" {
		return hostKeyCheck{algorithms: preferredHostKeyAlgorithms, callback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != strings.TrimRight(fp, "=") {
				return fmt.Errorf("host key mismatch: the host shows %s %s, host_key_fingerprint is %s: the host was reinstalled, or someone is in between",
					key.Type(), got, fp)
			}
			return nil
		}}, nil
	}
	file := h.SSH.KnownHosts
	cb, err := knownhosts.New(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return hostKeyCheck{}, fmt.Errorf("known_hosts %s does not exist: add the host's key to it (ssh-keyscan, then check the fingerprint) or give ssh.host_key_fingerprint", file)
		}
		return hostKeyCheck{}, fmt.Errorf("known_hosts %s: %v", file, err)
	}
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return fmt.Errorf("host key unknown: %s %s is not in known_hosts %s: check it, then add it (ssh-keyscan -p %d %s >> %s) or give ssh.host_key_fingerprint",
				key.Type(), ssh.FingerprintSHA256(key), file, h.SSH.Port, h.Address, file)
		case errors.As(err, &ke):
			w := ke.Want[0]
			return fmt.Errorf("host key mismatch: the host shows %s %s, known_hosts %s:%d has %s %s: the host was reinstalled, or someone is in between",
				key.Type(), ssh.FingerprintSHA256(key), w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
		case errors.As(err, &re):
			return fmt.Errorf("host key revoked: %s %s is marked @revoked in %s:%d", key.Type(), ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line)
		}
		return err
	}
	return hostKeyCheck{callback: check, algorithms: algorithmsFor(cb, h)}, nil
}

// algorithmsFor lists the host key algorithms of the keys known_hosts has
// for h, so that the server shows one of those: otherwise x/crypto asks
// for ECDSA first, and a host known by its ed25519 key (what OpenSSH
// records) fails as a mismatch although nothing is wrong. The known keys
// are found by asking the callback about a key that cannot be among them:
// its KeyError lists the keys it wanted. None known: the preferred order.
func algorithmsFor(cb ssh.HostKeyCallback, h *Host) []string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return preferredHostKeyAlgorithms
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return preferredHostKeyAlgorithms
	}
	remote := &net.TCPAddr{IP: net.ParseIP(h.Address), Port: h.SSH.Port}
	if remote.IP == nil {
		remote.IP = net.IPv4zero
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(net.JoinHostPort(h.Address, strconv.Itoa(h.SSH.Port)), remote, probe), &ke) || len(ke.Want) == 0 {
		return preferredHostKeyAlgorithms
	}
	var out []string
	add := func(algos ...string) {
		for _, a := range algos {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	for _, w := range ke.Want {
		if t := w.Key.Type(); t == ssh.KeyAlgoRSA {
			// An RSA key signs with SHA-2 today; ssh-rsa (SHA-1) last.
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return out
}
