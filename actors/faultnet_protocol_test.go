//go:build !race

// Two protoactor remotes in one process trip the race detector in
// protoactor itself (remote.Start sets gRPC's global logger): these tests
// are left out of -race builds, as the cluster package's are.

package actors_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster/faultnet"
	"github.com/qfleet/qfleet/envs"
	qtest "github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// Protocol faults between real roles on two actor systems in one process:
// "L" holds the replay (and, where a test says, learner and broadcaster),
// "R" one runner, each system with its remote and guard as in production,
// every connection between them through a faultnet.Network the test cuts.

const runnerName = "r/runner-0" // NodeOptions.Name "r", runner 0

// faultnetConfig is a small, fast run: a tiny network, a learner that never
// holds a runner back on the rate limiter, progress reports every 100
// steps. CreditTimeout is a minute: within a test only a lost link
// (onLinkLost) or a credit can give the runner its window back, so what
// the test sees is that mechanism and no other.
func faultnetConfig() actors.Config {
	cfg := actors.DefaultConfig()
	cfg.Hidden = []int{16}
	cfg.BatchSize = 32
	cfg.MinReplaySize = 500
	cfg.SamplesPerInsert = 0.25
	cfg.RateTolerance = 4096
	cfg.PublishEvery = 10
	cfg.ProgressEverySteps = 100
	cfg.CreditTimeout = time.Minute
	return cfg
}

// pair is the two nodes and the network between them.
type pair struct {
	net  *faultnet.Network
	l, r *actors.Node
	lNet *faultnet.Node
	rNet *faultnet.Node
	cfg  actors.Config
}

// startPair starts L with lRoles and R with one runner; every role finds
// the others on L (LocalDirectory at L's address, a directory per system).
func startPair(t *testing.T, cfg actors.Config, lRoles ...string) *pair {
	t.Helper()
	p := &pair{net: faultnet.New(), cfg: cfg}
	log, mute := qtest.Logger(t, slog.LevelWarn)
	var err error
	if p.lNet, err = p.net.StartNode("L", faultnet.NodeConfig{Logger: log.With("host", "L")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.lNet.Close)
	if p.rNet, err = p.net.StartNode("R", faultnet.NodeConfig{Logger: log.With("host", "R")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.rNet.Close)
	start := func(name string, sys *actor.ActorSystem, roles []string) *actors.Node {
		nd, err := actors.StartNode(actors.NodeOptions{
			Name: name, Roles: roles, EnvID: "CartPole-v1", Seed: 3, Config: cfg, Logger: log.With("node", name),
			Stop:   actors.StopRule{TargetReturn: 1e9}, // never: Done stays open
			System: sys, Directory: actors.LocalDirectory{Address: p.lNet.Address()},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Stop) // before the network nodes' Close (cleanups run last first)
		return nd
	}
	p.l = start("l", p.lNet.System, lRoles)
	p.r = start("r", p.rNet.System, []string{actors.RoleRunner})
	t.Cleanup(p.net.Close) // before the nodes stop: nothing waits on a held dial
	t.Cleanup(mute)        // first: the teardown's broken streams are no news
	return p
}

func (p *pair) inserted() uint64 { return p.l.Metrics.Status().ReplayInserted }

// outstanding is the most a runner can have sent without credit: its
// window, overshot by one batch (it sends a whole batch on the last credit;
// an episode's end adds its n-step tail to a batch).
func (p *pair) outstanding() uint64 {
	return uint64(p.cfg.CreditWindow + p.cfg.SendBatch + p.cfg.NStep)
}

// runnerActsOn is the publication count of the weights the runner acts on.
func (p *pair) runnerActsOn() uint64 {
	return uint64(testutil.ToFloat64(p.r.Metrics.WeightsPublication))
}

// checkClean: nothing refused or duplicated, no role restarted, no guard
// refusal (the network broke streams, it never corrupted one).
func (p *pair) checkClean(t *testing.T) {
	t.Helper()
	st := p.l.Metrics.Status()
	if d := testutil.ToFloat64(p.l.Metrics.ExperienceDuplicates); d != 0 || st.ExperienceRejected != 0 {
		t.Errorf("replay refused %v duplicate and %d malformed transitions", d, st.ExperienceRejected)
	}
	for _, nd := range []*actors.Node{p.l, p.r} {
		if rs := nd.Metrics.Status().Restarts; len(rs) != 0 {
			t.Errorf("roles restarted: %v", rs)
		}
	}
	for _, nd := range []*faultnet.Node{p.lNet, p.rNet} {
		if n := nd.Guard.RejectedTotal(); n != 0 {
			t.Errorf("guard of %s refused %d batches", nd.Name, n)
		}
	}
}

// stableFor waits until f has not changed for quiet, within total.
func stableFor(t *testing.T, quiet, total time.Duration, what string, f func() uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(total)
	last, since := f(), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("%s still moving after %v (at %d)", what, total, last)
		}
		time.Sleep(10 * time.Millisecond)
		if v := f(); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// A partition between the runner's host and the replay's stops experience
// at once; after Heal the runner's stream goes on (same incarnation, no
// restart) and the replay's accounting is exact: what the broken streams
// held is counted lost (at most the one credit window that was
// uncredited), nothing twice, and the runner's own count of what it sent
// equals what the replay received plus what it counted lost. Weights flow
// again too.
func TestFaultnetPartitionRunnerFromReplay(t *testing.T) {
	p := startPair(t, faultnetConfig(), actors.RoleReplay, actors.RoleLearner, actors.RoleBroadcaster)
	qtest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, v := p.inserted(), p.runnerActsOn(); n < 2000 || v < 2 {
			return fmt.Errorf("inserted %d, runner acts on publication %d: want 2000 and 2", n, v)
		}
		return nil
	})
	// The run gets here in tens of milliseconds: the partition may meet a
	// subscription just sent, which the runner retries after
	// resubscribeRetry (2 s) rather than at once; weights must still come
	// back within the 3 s below.

	p.net.Partition("L", "R")
	cut := stableFor(t, 300*time.Millisecond, 2*time.Second, "inserted during the partition", p.inserted)
	weightsAtCut := p.runnerActsOn()
	if st := p.net.Stats("R", "L"); st.Resets == 0 {
		t.Fatalf("the partition reset no connection R→L: %+v", st)
	}

	healed := time.Now()
	p.net.Heal("L", "R")
	qtest.CheckFor(t, 3*time.Second, 5*time.Millisecond, func() error {
		if n := p.inserted(); n < cut+2*uint64(p.cfg.CreditWindow) {
			return fmt.Errorf("inserted %d since Heal, want 2 credit windows (%d)", n-cut, 2*p.cfg.CreditWindow)
		}
		return nil
	})
	resumed := time.Since(healed)
	qtest.CheckFor(t, 3*time.Second, 5*time.Millisecond, func() error {
		if v := p.runnerActsOn(); v <= weightsAtCut {
			st := p.l.Metrics.Status()
			return fmt.Errorf("runner still acts on publication %d (inserted %d, learner updates %d, published %d)", v, p.inserted(), st.LearnerUpdates, st.WeightsVersion&(1<<40-1))
		}
		return nil
	})
	t.Logf("experience resumed %v and weights %v after Heal; R→L %+v", resumed, time.Since(healed), p.net.Stats("R", "L"))

	// Credits stop (L→R blackholed): the runner spends its window and
	// waits (CreditTimeout is a minute), so the counts come to rest.
	p.net.Drop("L", "R")
	stableFor(t, 300*time.Millisecond, 3*time.Second, "inserted without credits", p.inserted)
	var rs actors.RunnerStatus
	qtest.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
		rs = p.l.Metrics.Status().Runners[runnerName]
		arrived := rs.ExperienceReceived + rs.ExperienceLost
		// The last report can miss what the runner sent after it: fewer
		// than ProgressEverySteps steps, plus its outbox and open batch.
		slack := uint64(p.cfg.ProgressEverySteps + p.cfg.OutboxLimit + p.cfg.SendBatch + p.cfg.NStep)
		if rs.ExperienceSent > arrived || arrived > rs.ExperienceSent+slack {
			return fmt.Errorf("runner reports %d sent; replay received %d and counted %d lost (sum %d, want sent ≤ sum ≤ sent+%d)",
				rs.ExperienceSent, rs.ExperienceReceived, rs.ExperienceLost, arrived, slack)
		}
		return nil
	})
	if rs.ExperienceLost > p.outstanding() {
		t.Errorf("replay counted %d transitions lost, more than the uncredited window (%d) the broken stream can have held", rs.ExperienceLost, p.outstanding())
	}
	t.Logf("runner sent %d (last report), replay received %d, lost %d", rs.ExperienceSent, rs.ExperienceReceived, rs.ExperienceLost)
	p.checkClean(t)
}

// weightsFor is a publication of the broadcaster's: term 2, as a learner
// would number it (term in the high 24 bits of the version).
func weightsFor(t *testing.T, cfg actors.Config, count uint64) *messages.Weights {
	t.Helper()
	env, err := envs.Make("CartPole-v1")
	if err != nil {
		t.Fatal(err)
	}
	params := make([]float32, actors.NetSpec(env.Spec(), cfg).NumParams())
	for i := range params {
		params[i] = float32(count) / 100
	}
	return &messages.Weights{Version: 2<<40 | count, Term: 2, Params: params}
}

// With 150 ms on the weights link (broadcaster → runner), a burst of
// publications ends with the runner acting on the newest: it never goes
// back to an older version, it skips most of the burst (one transfer in
// flight, then the newest), and the delay is really there (the first new
// version takes at least one delay).
func TestFaultnetDelayedWeightsLink(t *testing.T) {
	cfg := faultnetConfig()
	// The test publishes in the learner's place: the broadcaster's input
	// is then known exactly.
	p := startPair(t, cfg, actors.RoleReplay, actors.RoleBroadcaster)
	bcast := actor.NewPID(p.lNet.Address(), actors.BroadcasterName)
	qtest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		// Again until it lands: the broadcaster may not be spawned yet
		// (a publication it already has is ignored).
		p.lNet.System.Root.Send(bcast, weightsFor(t, cfg, 1))
		if v := p.runnerActsOn(); v != 1 {
			return fmt.Errorf("runner acts on publication %d, want 1", v)
		}
		return nil
	})

	const delay = 150 * time.Millisecond
	const last = 20
	p.net.Delay("L", "R", delay)
	var mu sync.Mutex
	type seen struct {
		v  uint64
		at time.Time
	}
	var history []seen
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // what the runner acts on, every 2 ms
		defer close(done)
		prev := uint64(1)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if v := p.runnerActsOn(); v != prev {
				mu.Lock()
				history = append(history, seen{v, time.Now()})
				mu.Unlock()
				prev = v
			}
		}
	}()
	first := time.Now()
	for k := uint64(2); k <= last; k++ {
		p.lNet.System.Root.Send(bcast, weightsFor(t, cfg, k))
		time.Sleep(10 * time.Millisecond)
	}
	lastSent := time.Now()
	qtest.CheckFor(t, 3*time.Second, 5*time.Millisecond, func() error {
		if v := p.runnerActsOn(); v != last {
			return fmt.Errorf("runner acts on publication %d, want the newest, %d", v, last)
		}
		return nil
	})
	caughtUp := time.Since(lastSent)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	var trail []string
	for i, s := range history {
		trail = append(trail, fmt.Sprintf("v%d@%v", s.v, s.at.Sub(first).Round(time.Millisecond)))
		if i > 0 && s.v < history[i-1].v {
			t.Errorf("runner went back from publication %d to %d", history[i-1].v, s.v)
		}
	}
	t.Logf("acted on %s; newest %v after it was published", strings.Join(trail, " "), caughtUp.Round(time.Millisecond))
	if len(history) == 0 || history[0].at.Sub(first) < delay {
		t.Errorf("first new weights arrived before one link delay (%v): %s", delay, strings.Join(trail, " "))
	}
	if len(history) > 6 {
		t.Errorf("runner acted on %d of %d publications: the broadcaster should skip to the newest", len(history), last-1)
	}
	if caughtUp > 5*delay {
		t.Errorf("newest weights took %v after publication, want a few link delays", caughtUp)
	}
	p.checkClean(t)
}

// A dropped link loses the runner's window: the batches vanish, no credit
// comes back, and the runner waits (CreditTimeout is a minute). When the
// dead stream is reset (as keepalive would end it), protoactor publishes
// the link's loss and the runner restores its window at once (onLinkLost):
// experience flows again within a second, and the replay counts exactly
// the vanished batches as lost, no more than the window.
func TestFaultnetDroppedLinkRestoresCredit(t *testing.T) {
	p := startPair(t, faultnetConfig(), actors.RoleReplay)
	qtest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := p.inserted(); n < 1000 {
			return fmt.Errorf("inserted %d, want 1000", n)
		}
		return nil
	})
	p.net.Drop("R", "L")
	stalled := stableFor(t, 500*time.Millisecond, 3*time.Second, "inserted across a dropped link", p.inserted)
	if st := p.net.Stats("R", "L"); st.Dropped == 0 {
		t.Fatalf("nothing dropped R→L: %+v", st)
	}
	if lost := p.l.Metrics.Status().ExperienceLost; lost != 0 {
		t.Fatalf("lost %d before any later batch arrived", lost)
	}

	healed := time.Now()
	p.net.Heal("R", "L")
	qtest.CheckFor(t, 2*time.Second, 5*time.Millisecond, func() error {
		if n := p.inserted(); n <= stalled+uint64(p.cfg.CreditWindow) {
			return fmt.Errorf("inserted %d since Heal, want more than a credit window", n-stalled)
		}
		return nil
	})
	t.Logf("experience resumed %v after Heal; R→L %+v", time.Since(healed), p.net.Stats("R", "L"))
	if st := p.net.Stats("R", "L"); st.Terminated == 0 {
		t.Errorf("no connection was reset for its lost bytes: %+v", st)
	}
	lost := p.l.Metrics.Status().ExperienceLost
	if lost == 0 || lost > p.outstanding() {
		t.Errorf("replay counted %d transitions lost, want the vanished window: 1..%d", lost, p.outstanding())
	}
	p.checkClean(t)
}

// Credits lost on the way back (L→R dropped) lose no experience: every batch
// arrives, the replay counts nothing lost, and the runner, without credit,
// stops at its window instead of sending on.
func TestFaultnetLostCreditsLoseNoExperience(t *testing.T) {
	p := startPair(t, faultnetConfig(), actors.RoleReplay)
	qtest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := p.inserted(); n < 1000 {
			return fmt.Errorf("inserted %d, want 1000", n)
		}
		return nil
	})
	before := p.inserted()
	p.net.Drop("L", "R")
	after := stableFor(t, 300*time.Millisecond, 3*time.Second, "inserted without credits", p.inserted)
	if after-before > p.outstanding() {
		t.Errorf("runner sent %d transitions after its credits stopped, more than its window (%d)", after-before, p.outstanding())
	}
	if st := p.net.Stats("L", "R"); st.Dropped == 0 {
		t.Fatalf("nothing dropped L→R: %+v", st)
	}
	st := p.l.Metrics.Status()
	if st.ExperienceLost != 0 {
		t.Errorf("replay counted %d lost; every batch arrived", st.ExperienceLost)
	}
	if got := st.Runners[runnerName].ExperienceReceived; got != after {
		t.Errorf("replay received %d of the runner's transitions, inserted %d", got, after)
	}
	p.checkClean(t)
}
