package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGenerateCertsAndLoadTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := GenerateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(ca.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v, %v; want 0600", st.Mode(), err)
	}
	node, err := GenerateNodeCert(dir, "learner-1", []string{"10.1.2.3", "learner.example", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(node.Cert)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"learner.example"}) || len(cert.IPAddresses) != 2 ||
		!cert.IPAddresses[0].Equal(net.ParseIP("10.1.2.3")) {
		t.Fatalf("SANs: DNS %v IP %v", cert.DNSNames, cert.IPAddresses)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Fatalf("node certificate must serve as client and server: %v", cert.ExtKeyUsage)
	}

	tc, err := LoadTLS(node.Cert, node.Key, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !tc.Mutual || tc.Server.ClientCAs == nil || tc.Client.RootCAs == nil || tc.Server.MinVersion != 0x0304 {
		t.Fatalf("LoadTLS with a CA: mutual %v, want mutual TLS 1.3", tc.Mutual)
	}
	if plain, err := LoadTLS(node.Cert, node.Key, ""); err != nil || plain.Mutual {
		t.Fatalf("LoadTLS without a CA: %v, mutual %v", err, plain != nil && plain.Mutual)
	}

	// Never overwrite: the CA key signs every node certificate.
	if _, err := GenerateCA(dir); !errors.Is(err, ErrCertExists) {
		t.Fatalf("second GenerateCA: %v, want ErrCertExists", err)
	}
	if _, err := GenerateNodeCert(dir, "learner-1", []string{"10.1.2.3"}); !errors.Is(err, ErrCertExists) {
		t.Fatalf("second GenerateNodeCert: %v, want ErrCertExists", err)
	}
	if _, err := GenerateNodeCert(dir, "../escape", []string{"10.1.2.3"}); err == nil {
		t.Fatal("a node name with a path separator was accepted")
	}
}

func TestLoadTLSErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca, err := GenerateCA(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateCA(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := GenerateNodeCert(filepath.Join(dir, "a"), "n", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope.crt")
	for name, c := range map[string]struct {
		cert, key, ca, mention string
	}{
		"missing cert":  {missing, node.Key, "", missing},
		"missing CA":    {node.Cert, node.Key, missing, missing},
		"key mismatch":  {node.Cert, ca.Key, "", node.Cert},
		"wrong CA":      {node.Cert, node.Key, other.Cert, other.Cert},
		"CA not a cert": {node.Cert, node.Key, node.Key, node.Key},
	} {
		_, err := LoadTLS(c.cert, c.key, c.ca)
		if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: %v, want ErrTLS naming %s", name, err, c.mention)
		}
	}
}

// TestGenerateClusterKey: the key 'qfleet certs' and 'qfleet launch' make
// loads as a 32-byte gossip key, is private to its owner, and is never
// replaced: a second call refuses.
func TestGenerateClusterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), ClusterKeyFile)
	if err := GenerateClusterKey(path); err != nil {
		t.Fatal(err)
	}
	key, err := LoadClusterKey(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("LoadClusterKey: %d bytes, %v; want 32", len(key), err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	before, _ := os.ReadFile(path)
	if err := GenerateClusterKey(path); !errors.Is(err, ErrCertExists) {
		t.Fatalf("second GenerateClusterKey: %v, want ErrCertExists", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the second call changed the key")
	}
}
