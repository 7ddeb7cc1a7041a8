package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/internal/testutil"
)

// A start that fails leaves nothing that blocks the next one: the run
// directory and the summary file it made are removed, and the same command
// runs once the cause is gone. Each way a node's start can fail: its
// gossip, remote or HTTP port in use, an unreadable certificate, a bad key
// file.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	junk := testutil.WriteFile(t, dir, "junk.pem", "not a certificate\n")
	cases := []struct {
		name  string
		busy  string // "gossip", "remote" or "http": that port is taken
		extra []string
		want  string
	}{
		{name: "gossip port in use", busy: "gossip", want: "gossip"},
		{name: "remote port in use", busy: "remote", want: "remote"},
		{name: "http port in use", busy: "http", want: "--http"},
		{name: "unreadable certificate", extra: []string{"--tls-cert", filepath.Join(dir, "missing.crt"), "--tls-key", junk}, want: "missing.crt"},
		{name: "bad key file", extra: []string{"--cluster-key-file", junk}, want: "cluster-key-file"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addrs := map[string]string{"gossip": testutil.FreeAddr(t), "remote": testutil.FreeAddr(t), "http": testutil.FreeAddr(t)}
			runDir := filepath.Join(dir, "run-"+string(rune('a'+i)))
			summary := filepath.Join(dir, "summary-"+string(rune('a'+i))+".json")
			args := []string{"node", "--name", "n", "--roles", "runner,replay,learner,broadcaster", "--profile", "local",
				"--gossip-addr", addrs["gossip"], "--remote-addr", addrs["remote"], "--http", addrs["http"],
				"--run-dir", runDir, "--summary", summary, "--max-steps", "1500", "--progress", "0"}
			var busy net.Listener
			if c.busy != "" {
				var err error
				if busy, err = net.Listen("tcp", addrs[c.busy]); err != nil {
					t.Fatal(err)
				}
			}
			code, _, stderr := runQfleet(t, append(args, c.extra...)...)
			if busy != nil {
				busy.Close()
			}
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %q", code, stderr, c.want)
			}
			for _, p := range []string{runDir, summary} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("the failed start left %s behind (%v)", p, err)
				}
			}
			if len(c.extra) > 0 {
				return // the cause is in the command itself
			}
			code, _, stderr = runQfleet(t, args...)
			t.Logf("rerun: exit %d: %s", code, stderr)
			if code != 0 {
				t.Fatalf("the same command once the port is free: exit %d\n%s", code, stderr)
			}
		})
	}
}
