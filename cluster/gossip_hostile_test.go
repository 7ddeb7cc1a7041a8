package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// lineCounter is a log sink that keeps the lines for assertions.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.lines = append(c.lines, strings.TrimRight(string(p), "\n"))
	c.mu.Unlock()
	return len(p), nil
}

func (c *lineCounter) matching(sub string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// Garbage on the gossip port, over TCP and UDP, from hundreds of
// connections: the member stays in the cluster, a new member can still
// join, and memberlist's complaints are a few lines, not one per
// connection.
func TestGossipGarbageFloodLogsFewLines(t *testing.T) {
	t.Parallel()
	sink := &lineCounter{}
	n1, _ := testNode(t, "n1", []string{RoleReplay}, "127.0.0.1:10101", nil, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	seed := []string{n1.LocalMember().GossipAddr}
	n2, _ := testNode(t, "n2", []string{RoleRunner}, "127.0.0.1:10102", seed, nil)
	addr := n1.LocalMember().GossipAddr
	const conns = 300
	garbage := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x01garbage")
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		_, _ = c.Write(garbage)
		c.Close()
		u, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = u.Write(garbage)
		u.Close()
	}
	// The member still works: a third one joins through it and all agree.
	n3, _ := testNode(t, "n3", []string{RoleLearner}, "127.0.0.1:10103", seed, nil)
	for _, n := range []*Membership{n1, n2, n3} {
		testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			if n.NumMembers() != 3 {
				return fmt.Errorf("%s sees %d members after the flood", n.LocalMember().Name, n.NumMembers())
			}
			return nil
		})
	}
	lines := sink.matching("component=memberlist")
	// One line per kind of complaint (TCP and UDP each have one or two).
	if len(lines) == 0 || len(lines) > 6 {
		t.Fatalf("%d memberlist log lines for %d garbage connections and packets, want 1..6:\n%s",
			len(lines), 2*conns, strings.Join(lines, "\n"))
	}
}
