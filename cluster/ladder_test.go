package cluster

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/qfleet/qfleet/internal/testutil"
)

func runnerMember(name string, runners int, state MemberState, roles ...string) Member {
	return Member{Name: name, Roles: append([]string{RoleRunner}, roles...), Runners: runners, State: state}
}

// RunnerLadder orders the runner nodes by name (whatever the input order),
// gives each an offset of the runners before it, counts only live runner
// members that advertise runners, and shifts the others when one goes.
func TestRunnerLadderPositions(t *testing.T) {
	learner := Member{Name: "a-learner", Roles: []string{RoleReplay, RoleLearner, RoleBroadcaster}, State: StateAlive}
	b := runnerMember("b", 2, StateAlive)
	c := runnerMember("c", 3, StateAlive)
	d := runnerMember("d", 1, StateAlive, RoleReplay)
	old := Member{Name: "bb-old", Roles: []string{RoleRunner}, State: StateAlive} // an older node: no runner count
	all := []Member{d, c, learner, old, b}                                        // not in name order

	for _, tc := range []struct {
		name    string
		members []Member
		self    string
		want    LadderPosition
		ok      bool
	}{
		{"first", all, "b", LadderPosition{0, 6}, true},
		{"middle", all, "c", LadderPosition{2, 6}, true},
		{"last", all, "d", LadderPosition{5, 6}, true},
		{"not a runner", all, "a-learner", LadderPosition{}, false},
		{"no runner count", all, "bb-old", LadderPosition{}, false},
		{"not listed", all, "zz", LadderPosition{}, false},
		// b leaves: c and d move down by b's 2 runners.
		{"b left: c", []Member{learner, c, d}, "c", LadderPosition{0, 4}, true},
		{"b left: d", []Member{learner, c, d}, "d", LadderPosition{3, 4}, true},
		// A leaving member gives up its rungs; a leaving self keeps its own.
		{"b leaving: c", []Member{learner, runnerMember("b", 2, StateLeaving), c, d}, "c", LadderPosition{0, 4}, true},
		{"self leaving", []Member{learner, runnerMember("b", 2, StateLeaving), c, d}, "b", LadderPosition{0, 6}, true},
		// Alone: the ladder is the node's own runners.
		{"alone", []Member{learner, runnerMember("x", 1, StateAlive)}, "x", LadderPosition{0, 1}, true},
	} {
		got, ok := RunnerLadder(tc.members, tc.self)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: RunnerLadder(%s) = %+v, %v; want %+v, %v", tc.name, tc.self, got, ok, tc.want, tc.ok)
		}
	}
}

// The runner count travels in the metadata under a short key, and a
// metadata without it (an older node) decodes as 0.
func TestMetaRunners(t *testing.T) {
	m := nodeMeta{Version: metaVersion, Roles: AllRoles, Remote: "203.0.113.10:7947", Epoch: 1 << 62, Runners: 12}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["n"] != float64(12) {
		t.Fatalf("metadata %s: no runner count under \"n\" (%v)", b, err)
	}
	if len(b) > memberlist.MetaMaxSize/3 {
		t.Fatalf("metadata with every role is %d bytes: %s", len(b), b)
	}
	got, err := decodeMeta(b)
	if err != nil || got.Runners != 12 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	got, err = decodeMeta([]byte(`{"v":1,"r":["runner"],"a":"h:1","e":2}`))
	if err != nil || got.Runners != 0 {
		t.Fatalf("older metadata decoded %+v, %v", got, err)
	}
}

// Three real members: two runner nodes and a learner node. Each runner
// node's watcher places it by name among the runner nodes, a third runner
// node joining in the middle moves the later one, and a graceful leave
// shifts the others down.
func TestWatchRunnerLadder(t *testing.T) {
	t.Parallel()
	runners := func(n int) func(*Config) { return func(c *Config) { c.Runners = n } }
	a, _ := testNode(t, "a", []string{RoleReplay, RoleLearner, RoleBroadcaster}, "127.0.0.1:10101", nil, nil)
	seed := []string{a.LocalMember().GossipAddr}
	b, _ := testNode(t, "b", []string{RoleRunner}, "127.0.0.1:10102", seed, runners(2))
	d, _ := testNode(t, "d", []string{RoleRunner}, "127.0.0.1:10104", seed, runners(2))

	var mu sync.Mutex
	seen := map[string]LadderPosition{}
	watch := func(m *Membership) {
		name := m.LocalMember().Name
		stop := m.WatchRunnerLadder(func(p LadderPosition) {
			mu.Lock()
			seen[name] = p
			mu.Unlock()
		})
		t.Cleanup(stop)
	}
	expect := func(want map[string]LadderPosition) {
		t.Helper()
		testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			mu.Lock()
			defer mu.Unlock()
			for name, p := range want {
				if seen[name] != p {
					return fmt.Errorf("positions %v, want %v", seen, want)
				}
			}
			return nil
		})
	}
	watch(a) // not a runner node: never called
	watch(b)
	watch(d)
	expect(map[string]LadderPosition{"b": {0, 4}, "d": {2, 4}})

	c, _ := testNode(t, "c", []string{RoleRunner}, "127.0.0.1:10103", seed, runners(3))
	watch(c)
	expect(map[string]LadderPosition{"b": {0, 7}, "c": {2, 7}, "d": {5, 7}})

	if err := b.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	expect(map[string]LadderPosition{"c": {0, 5}, "d": {3, 5}})
	mu.Lock()
	_, called := seen["a"]
	mu.Unlock()
	if called {
		t.Fatalf("the learner node got a ladder position: %v", seen["a"])
	}
	for _, m := range []*Membership{c, d} {
		for _, mem := range m.Members() {
			if want, ok := map[string]int{"a": 0, "c": 3, "d": 2}[mem.Name]; ok && mem.Runners != want {
				t.Errorf("%s sees %s with %d runners, want %d", m.LocalMember().Name, mem.Name, mem.Runners, want)
			}
		}
	}
}
