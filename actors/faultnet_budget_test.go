//go:build !race

package actors_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	qtest "github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// With weights_max_rate 20000, a runner on another host gets 20,000 B/s of
// weights (within 10% over 20 s) from a broadcaster that is handed a new
// version every 50 ms, far more than the budget carries, and it still acts
// on new versions all along, each the newest when it started. The learner's
// node books the link per runner (what /status shows): the weights rate,
// the experience coming back, the lag.
func TestFaultnetWeightsBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of weights at a budget")
	}
	const rate, window = 20_000, 20 * time.Second
	cfg := faultnetConfig()
	// 17,410 parameters: random ones pack to ~60 kB, about 3 s a version at
	// the budget in chunks of 32 KiB (the default), each 1.6 s' worth: a
	// wake-up that comes late on a loaded machine loses little.
	cfg.Hidden = []int{128, 128}
	cfg.WeightsMaxRate = rate
	p := startPair(t, cfg, actors.RoleReplay, actors.RoleBroadcaster)
	bcast := actor.NewPID(p.lNet.Address(), actors.BroadcasterName)

	env, err := envs.Make("CartPole-v1")
	if err != nil {
		t.Fatal(err)
	}
	n := actors.NetSpec(env.Spec(), cfg).NumParams()
	rng := rand.New(rand.NewPCG(7, 8))
	var count uint64
	publish := func() {
		// Random parameters: constant ones compress to nothing, and a delta
		// of random ones is no smaller than they are.
		params := make([]float32, n)
		for i := range params {
			params[i] = rng.Float32()*0.2 - 0.1
		}
		count++
		p.lNet.System.Root.Send(bcast, &messages.Weights{Version: 2<<40 | count, Term: 2, Params: params})
	}
	// The first version reaches the runner: the link is up.
	qtest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		publish()
		if v := p.runnerActsOn(); v == 0 {
			return fmt.Errorf("runner acts on no weights yet")
		}
		return nil
	})

	stopWatch := watchSends(p.l.Metrics)
	start := time.Now()
	changes, prev := 0, p.runnerActsOn()
	expRate := 0.0 // the experience rate at its highest (the replay stops granting credit once full enough: no learner samples)
	for time.Since(start) < window+2*time.Second {
		publish()
		time.Sleep(50 * time.Millisecond)
		expRate = max(expRate, p.l.Metrics.Status().Runners[runnerName].ExperienceBytesPerS)
		if v := p.runnerActsOn(); v != prev {
			if v < prev {
				t.Errorf("runner went back from publication %d to %d", prev, v)
			}
			changes, prev = changes+1, v
		}
	}
	sends := stopWatch()
	// Over 20 s from the first send: the bytes of the sends from it to the
	// last one within the 20 s, that one left out (it is paid after it
	// went), over the time between the two.
	if len(sends) < 3 {
		t.Fatalf("%d sends seen", len(sends))
	}
	first, last := sends[0], sends[0]
	for _, s := range sends[1:] {
		if s.at.Sub(first.at) <= window {
			last = s
		}
	}
	span, bytes := last.at.Sub(first.at), last.before-first.before
	perS := float64(bytes) / span.Seconds()
	t.Logf("%d bytes of weights in %v: %.0f B/s (%d sends); %d publications, the runner took %d versions (acts on %d); experience up to %.0f B/s",
		bytes, span.Round(time.Millisecond), perS, len(sends), count, changes, p.runnerActsOn(), expRate)
	if span < window*8/10 || perS < 0.9*rate || perS > 1.1*rate {
		t.Errorf("weights at %.0f B/s over %v, want within 10%% of %d over about %v", perS, span.Round(time.Millisecond), rate, window)
	}
	if changes < 4 {
		t.Errorf("the runner took %d new versions in %v, want >= 4 (one per version's time at the budget)", changes, window)
	}
	if behind := count - p.runnerActsOn(); behind > 160 { // 8 s of publications: two versions' time
		t.Errorf("at the end the runner acts on publication %d, %d behind the newest", p.runnerActsOn(), behind)
	}

	// The link as the broadcaster's and replay's node books it, in the
	// runner's status there (the replay knows the runner).
	rs, ok := p.l.Metrics.Status().Runners[runnerName]
	if !ok {
		t.Fatalf("no status of %s on the broadcaster's node", runnerName)
	}
	if rs.WeightsBytesPerS < 0.8*rate || rs.WeightsBytesPerS > 1.2*rate {
		t.Errorf("status: weights_bytes_per_s %.0f, want about %d", rs.WeightsBytesPerS, rate)
	}
	if expRate <= 0 || rs.ExperienceBytesReceived == 0 {
		t.Errorf("status: experience %d bytes, at most %.0f B/s: the replay books none", rs.ExperienceBytesReceived, expRate)
	}
	if rs.WeightsAckedTerm != 2 || rs.WeightsAckedPublication == 0 || rs.WeightsLagPublications > 160 || rs.WeightsLagSeconds > 8 {
		t.Errorf("status: acked t%d/v%d, lag %d publications, %.1f s", rs.WeightsAckedTerm, rs.WeightsAckedPublication, rs.WeightsLagPublications, rs.WeightsLagSeconds)
	}
	if st := p.net.Stats("L", "R"); st.Delivered > 0 {
		t.Logf("L→R wire bytes (weights, credits, gRPC): %d in all", st.Delivered)
	}
	p.checkClean(t)
}

// sendAt is one send of weights to the runner, as its link books see it.
type sendAt struct {
	at     time.Time
	before uint64 // bytes sent in all before this send
}

// watchSends records the bytes m books for the runner each time they grow
// (a chunk sent), watched every 2 ms, until the returned stop.
func watchSends(m *actors.Metrics) (stop func() []sendAt) {
	var sends []sendAt
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		prev := m.Links()[runnerName].WeightsBytesSent
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if b := m.Links()[runnerName].WeightsBytesSent; b != prev {
				sends, prev = append(sends, sendAt{time.Now(), prev}), b
			}
		}
	}()
	return func() []sendAt {
		close(done)
		<-watched
		return sends
	}
}
