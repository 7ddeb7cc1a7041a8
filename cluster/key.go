package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
)

// LoadClusterKey reads a gossip encryption key from a file. The file holds
// either the key as text, hex or base64 (standard or URL alphabet, padded or
// not; surrounding whitespace ignored), or exactly 16, 24 or 32 raw bytes.
// Text forms are tried first: a random raw key that happens to be valid hex or
// base64 of a usable length is astronomically unlikely. Errors wrap
// ErrClusterKey and name the file.
func LoadClusterKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClusterKey, err)
	}
	if key, ok := decodeKeyText(bytes.TrimSpace(raw)); ok {
		return key, nil
	}
	if validKeyLen(len(raw)) {
		return raw, nil
	}
	return nil, fmt.Errorf("%w: %s holds %d bytes that are neither a 16/24/32-byte raw key nor hex or base64 text of one (make one with: head -c 32 /dev/urandom | base64)",
		ErrClusterKey, path, len(raw))
}

func decodeKeyText(text []byte) ([]byte, bool) {
	if len(text) == 0 {
		return nil, false
	}
	s := string(text)
	if k, err := hex.DecodeString(s); err == nil && validKeyLen(len(k)) {
		return k, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && validKeyLen(len(k)) {
			return k, true
		}
	}
	return nil, false
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }
