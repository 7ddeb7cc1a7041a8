package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/internal/testutil"
)

// TestLaunchUsage: the four commands refuse a missing or bad cluster file,
// a missing or unknown node, with one line and exit 2, before any SSH; and
// their help explains the file's keys.
func TestLaunchUsage(t *testing.T) {
	dir := t.TempDir()
	key := testutil.WriteFile(t, dir, "id", "key")
	good := testutil.WriteFile(t, dir, "c.yaml", "ssh: {key: "+key+"}\nhosts:\n  - {name: A, address: 10.9.0.10, roles: [runner]}\n")
	bad := testutil.WriteFile(t, dir, "bad.yaml", "hosts:\n  - {name: A, address: 10.9.0.10, roles: [runer]}\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"launch"}, "want CLUSTER.yaml"},
		{[]string{"launch", good, good}, "want CLUSTER.yaml"},
		{[]string{"launch", filepath.Join(dir, "none.yaml")}, "cluster file: open"},
		{[]string{"launch", bad, "--restart"}, `hosts[0] (A): roles: unknown role "runer"`},
		{[]string{"status", bad}, "unknown role"},
		{[]string{"down", bad}, "unknown role"},
		{[]string{"logs", good}, "want CLUSTER.yaml NODE"},
		{[]string{"logs", good, "Z"}, `no node "Z" in`},
		{[]string{"logs", "-n", "-1", good, "A"}, "-n -1: must be >= 0"},
		{[]string{"launch", "--wait", "soon", good}, "invalid value"},
	} {
		code, _, stderr := runQfleet(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(stderr, tc.want) || (len(lines) != 1 && !strings.Contains(stderr, "Usage:")) {
			t.Errorf("qfleet %v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
	code, stdout, _ := runQfleet(t, "launch", "--help")
	for _, key := range []string{"credentials", "binaries", "stop_grace", "host_key_fingerprint", "known_hosts", "advertise", "bind", "ports", "settings", "args", "start"} {
		if code != 0 || !strings.Contains(stdout, key) {
			t.Errorf("qfleet launch --help (exit %d) does not explain %s", code, key)
		}
	}
	for _, cmd := range []string{"status", "logs", "down"} {
		if code, stdout, _ := runQfleet(t, "help", cmd); code != 0 || !strings.Contains(stdout, "qfleet "+cmd+" ") {
			t.Errorf("qfleet help %s: exit %d\n%s", cmd, code, stdout)
		}
	}
}
