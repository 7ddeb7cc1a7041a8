package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// Each profile detects a silent node within its documented bound, and a
// graceful leave is seen at once. Five members per profile: one leaves, then
// one dies, watched by the three that stay (so suspicion confirmations come
// into play as they would in a real cluster). The numbers are logged: they
// are the ones README.md reports (go test -run FailureDetection -v).
func TestFailureDetectionTimes(t *testing.T) {
	t.Parallel()
	for _, profile := range []string{ProfileLocal, ProfileLAN, ProfileWAN} {
		t.Run("profile="+profile, func(t *testing.T) {
			t.Parallel()
			setProfile := func(c *Config) { c.Profile = profile }
			var nodes []*Membership
			var logs []*eventLog
			var seed []string
			for i := 0; i < 5; i++ {
				name := fmt.Sprintf("%s-%d", profile, i)
				n, l := testNode(t, name, []string{RoleRunner}, fmt.Sprintf("127.0.0.1:%d", 14000+i), seed, setProfile)
				if i == 0 {
					seed = []string{n.LocalMember().GossipAddr}
				}
				nodes, logs = append(nodes, n), append(logs, l)
			}
			for _, n := range nodes {
				testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
					if n.NumMembers() != len(nodes) {
						return fmt.Errorf("%s sees %d members", n.LocalMember().Name, n.NumMembers())
					}
					return nil
				})
			}
			watchers := logs[:3]

			leaver := nodes[4].LocalMember().Name
			left := time.Now()
			if err := nodes[4].Leave(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if err := nodes[4].Shutdown(); err != nil {
				t.Fatal(err)
			}
			var leaveMax time.Duration
			for _, l := range watchers {
				e := l.waitFor(t, Left, leaver, 5*time.Second)
				leaveMax = max(leaveMax, e.at.Sub(left))
			}

			victim := nodes[3].LocalMember().Name
			bound := Config{Profile: profile}.FailureDetectionBound()
			died := time.Now()
			if err := nodes[3].Shutdown(); err != nil {
				t.Fatal(err)
			}
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for _, l := range watchers {
				e := l.waitFor(t, Failed, victim, bound+5*time.Second)
				d := e.at.Sub(died)
				lo, hi = min(lo, d), max(hi, d)
			}
			t.Logf("profile %s: failure seen by all 3 watchers after %v–%v (bound %v); graceful leave seen by all after %v",
				profile, lo.Round(10*time.Millisecond), hi.Round(10*time.Millisecond), bound, leaveMax.Round(time.Millisecond))
			if hi > bound {
				t.Errorf("profile %s: failure detection took %v, over its bound %v", profile, hi, bound)
			}
		})
	}
}
