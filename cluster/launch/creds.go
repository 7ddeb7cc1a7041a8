package launch

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qfleet/qfleet/cluster"
)

// certHosts are the names a host's node certificate must hold: the IP its
// peers dial (TLS checks it, and so does the remote's guard), and the
// address SSH dials when it is another.
func certHosts(h *Host) []string {
	out := []string{h.PeerIP()}
	if h.Address != h.PeerIP() {
		out = append(out, h.Address)
	}
	return out
}

// ensureCredentials makes what the cluster's credentials directory lacks,
// as 'qfleet certs' does: the CA, the gossip key, and a certificate for
// each node. A node certificate that does not name the node's addresses
// (the host moved) or was not signed by the CA is made again, if the CA's
// key is there to sign it. It returns what it made, for the user.
func ensureCredentials(s *Spec) ([]string, error) {
	dir := s.Credentials
	var made []string
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	caCert, caKey := filepath.Join(dir, cluster.CACertFile), filepath.Join(dir, cluster.CAKeyFile)
	switch _, err := os.Stat(caCert); {
	case errors.Is(err, os.ErrNotExist):
		if _, err := cluster.GenerateCA(dir); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		made = append(made, "CA")
	case err != nil:
		return nil, fmt.Errorf("credentials: %w", err)
	}
	_, err := os.Stat(caKey)
	haveCAKey := err == nil
	keyPath := filepath.Join(dir, cluster.ClusterKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if err := cluster.GenerateClusterKey(keyPath); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		made = append(made, "gossip key")
	} else if _, err := cluster.LoadClusterKey(keyPath); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	pool, err := loadPool(caCert)
	if err != nil {
		return nil, err
	}
	for _, h := range s.Hosts {
		cert, key := filepath.Join(dir, h.Name+".crt"), filepath.Join(dir, h.Name+".key")
		why := certProblem(cert, key, certHosts(h), pool)
		if why == "" {
			continue
		}
		if !haveCAKey {
			return nil, fmt.Errorf("credentials: node certificate %s %s, and %s is not there to make one", cert, why, caKey)
		}
		for _, f := range []string{cert, key} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("credentials: %w", err)
			}
		}
		if _, err := cluster.GenerateNodeCert(dir, h.Name, certHosts(h)); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		made = append(made, "certificate of "+h.Name+" ("+strings.Join(certHosts(h), ", ")+")")
	}
	return made, nil
}

func loadPool(caCert string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caCert)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("credentials: %s holds no PEM certificate", caCert)
	}
	return pool, nil
}

// certProblem says why the node certificate at cert (with its key) does
// not do for a node dialled at hosts; "" when it does.
func certProblem(cert, key string, hosts []string, pool *x509.CertPool) string {
	data, err := os.ReadFile(cert)
	if errors.Is(err, os.ErrNotExist) {
		return "does not exist"
	}
	if err != nil {
		return fmt.Sprintf("cannot be read (%v)", err)
	}
	if _, err := os.Stat(key); err != nil {
		return "has no key beside it"
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return "holds no PEM certificate"
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Sprintf("does not parse (%v)", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Sprintf("is not valid under the cluster's CA (%v)", err)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return "does not name " + h
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return "does not name " + h
		}
	}
	return ""
}
