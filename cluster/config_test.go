package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validConfig() Config {
	c := DefaultLocalConfig()
	c.RemoteAddr = "127.0.0.1:7947"
	return c
}

func TestDefaultsValidateOnceRemoteIsSet(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "local": DefaultLocalConfig()} {
		c.RemoteAddr = "10.0.0.1:7947"
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "RemoteAddr") {
		t.Errorf("DefaultConfig without RemoteAddr: %v, want an error naming RemoteAddr", err)
	}
	if b := DefaultConfig().FailureDetectionBound(); b.Seconds() > 10 {
		t.Errorf("WAN bound %v, over the 10 s target", b)
	}
}

// Each rule fails with ErrInvalidConfig and names its field.
func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*Config)
	}{
		{"NodeName", func(c *Config) { c.NodeName = "" }},
		{"Roles", func(c *Config) { c.Roles = []string{"trainer"} }},
		{"Roles", func(c *Config) { c.Roles = []string{RoleRunner, RoleRunner} }},
		{"GossipAddr", func(c *Config) { c.GossipAddr = "localhost:7946" }},
		{"GossipAddr", func(c *Config) { c.GossipAddr = "127.0.0.1" }},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "gateway.example" }},
		{"RemoteAddr", func(c *Config) { c.RemoteAddr = "0.0.0.0:7947" }},
		{"RemoteAddr", func(c *Config) { c.RemoteAddr = "127.0.0.1:0" }},
		{"Join", func(c *Config) { c.Join = []string{"seed-without-port"} }},
		{"Profile", func(c *Config) { c.Profile = "fast" }},
		{"ClusterKey", func(c *Config) { c.ClusterKey = []byte("short") }},
		{"Label", func(c *Config) { c.Label = strings.Repeat("x", 256) }},
	}
	for _, tc := range cases {
		c := validConfig()
		tc.mutate(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming %s", tc.field, err, tc.field)
		}
	}
}

func TestLoadClusterKeyForms(t *testing.T) {
	dir := t.TempDir()
	key32 := bytes.Repeat([]byte{0xA7}, 32)
	key16 := bytes.Repeat([]byte{0x3C}, 16)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, c := range map[string]struct {
		file []byte
		want []byte
	}{
		"raw32":     {key32, key32},
		"hex16":     {[]byte(hex.EncodeToString(key16) + "\n"), key16},
		"base64-32": {[]byte(base64.StdEncoding.EncodeToString(key32) + "\n"), key32},
		"base64url": {[]byte(base64.RawURLEncoding.EncodeToString(key16)), key16},
	} {
		got, err := LoadClusterKey(write(name, c.file))
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %x, %v; want %x", name, got, err, c.want)
		}
	}
	bad := write("bad", []byte("not a key\n"))
	if _, err := LoadClusterKey(bad); !errors.Is(err, ErrClusterKey) || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad key: %v, want ErrClusterKey naming %s", err, bad)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := LoadClusterKey(missing); !errors.Is(err, ErrClusterKey) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want ErrClusterKey naming it", err)
	}
}
