package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Certificate lifetimes. A training cluster lives for days to months; an
// expired certificate stops it cold, so node certificates outlive any run
// and the CA outlives its nodes. Regenerate with `qfleet certs`.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 2 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a host whose clock is a little
	// behind accepts a certificate made a moment ago elsewhere.
	clockSkew = time.Hour
)

// File names inside a certificate directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ClusterKeyFile = "cluster.key" // the shared gossip key
)

// CertFiles names a certificate and its private key on disk.
type CertFiles struct {
	Cert string
	Key  string
}

var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// GenerateCA creates a new cluster CA in dir (created 0700 if missing):
// ca.crt and ca.key (ECDSA P-256, key file 0600). It refuses to overwrite
// either file (ErrCertExists): replacing a CA invalidates every node
// certificate signed by it. Copy ca.crt to every node; keep ca.key where
// certificates are made.
func GenerateCA(dir string) (CertFiles, error) {
	out := CertFiles{Cert: filepath.Join(dir, CACertFile), Key: filepath.Join(dir, CAKeyFile)}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CertFiles{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return CertFiles{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "qfleet cluster CA", Organization: []string{"qfleet"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // signs node certificates only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return CertFiles{}, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writePair(dir, out, der, key); err != nil {
		return CertFiles{}, err
	}
	return out, nil
}

// GenerateNodeCert creates <name>.crt and <name>.key in dir, signed by the CA
// in dir (ca.crt, ca.key). hosts are the IP addresses and DNS names other
// nodes use to dial this node's remote (its advertised address, public IP
// behind NAT): each becomes a SAN, and TLS checks the dialled host against
// them. The certificate serves both as server and as client certificate
// (mutual TLS). It refuses to overwrite existing files (ErrCertExists).
func GenerateNodeCert(dir, name string, hosts []string) (CertFiles, error) {
	if !certName.MatchString(name) {
		return CertFiles{}, fmt.Errorf("node certificate name %q: use letters, digits, '.', '_' and '-' (a file name)", name)
	}
	if len(hosts) == 0 {
		return CertFiles{}, fmt.Errorf("node certificate %s: no hosts: list the IPs or DNS names peers dial", name)
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return CertFiles{}, err
	}
	out := CertFiles{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CertFiles{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return CertFiles{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"qfleet"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(NodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return CertFiles{}, fmt.Errorf("create node certificate %s: %w", name, err)
	}
	if err := writePair(dir, out, der, key); err != nil {
		return CertFiles{}, err
	}
	return out, nil
}

// GenerateClusterKey writes a new shared gossip key to path: 32 random
// bytes as base64 text, file mode 0600. It refuses to overwrite an existing
// file (ErrCertExists): nodes holding the old key could no longer gossip
// with nodes given the new one.
func GenerateClusterKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return writeNew(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

// CertNameOK reports whether name can name a node certificate (and so its
// files): letters, digits, '.', '_' and '-', at most 64, not starting with
// a punctuation mark.
func CertNameOK(name string) bool { return certName.MatchString(name) }

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA certificate: %v (run GenerateCA first)", ErrTLS, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA key: %v", ErrTLS, err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrTLS, certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrTLS, certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%w: %s holds no PEM key", ErrTLS, keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrTLS, keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: %s is not the key of %s", ErrTLS, keyPath, certPath)
	}
	return cert, key, nil
}

// writePair writes the key (0600) and the certificate (0644), refusing to
// replace existing files and removing what it wrote if the second write fails.
func writePair(dir string, f CertFiles, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, p := range []string{f.Cert, f.Key} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrCertExists, p)
		}
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := writeNew(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		if rmErr := os.Remove(f.Key); rmErr != nil {
			return errors.Join(err, rmErr)
		}
		return err
	}
	return nil
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrCertExists, path)
		}
		return err
	}
	if _, err := fh.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, errors.Join(err, fh.Close()))
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}
