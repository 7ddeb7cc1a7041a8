package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// TLS holds the two sides of a node's remote transport security: the gRPC
// server that receives messages and the client that dials peers.
type TLS struct {
	Server *tls.Config
	Client *tls.Config
	// Mutual is true when a CA was given: the server then requires a client
	// certificate signed by it, and the client trusts only servers signed by
	// it. Without a CA, peers are verified against the system roots and
	// clients are not authenticated.
	Mutual bool
}

// LoadTLS reads a node certificate and key (PEM) and, optionally, the
// cluster CA (caFile "" for none). TLS 1.3 only. With a CA, both sides
// authenticate each other (mutual TLS): a node whose certificate another CA
// signed can neither connect nor send. The certificate must name, as an IP or
// DNS SAN, the host other nodes dial (the advertised remote address).
// Errors wrap ErrTLS and name the file.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: both a certificate and a key file are needed (got cert %q, key %q)", ErrTLS, certFile, keyFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrTLS, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %v", ErrTLS, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s with key %s: %v", ErrTLS, certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s: %v", ErrTLS, certFile, err)
	}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("%w: certificate %s is valid only from %s to %s", ErrTLS, certFile,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	cert.Leaf = leaf

	t := &TLS{
		Server: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		Client: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
	}
	if caFile == "" {
		return t, nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CA: %v", ErrTLS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrTLS, caFile)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		// Caught here rather than as a handshake failure on every peer.
		return nil, fmt.Errorf("%w: certificate %s is not signed by CA %s: %v", ErrTLS, certFile, caFile, err)
	}
	t.Mutual = true
	t.Server.ClientCAs = pool
	t.Server.ClientAuth = tls.RequireAndVerifyClientCert
	t.Client.RootCAs = pool
	return t, nil
}
