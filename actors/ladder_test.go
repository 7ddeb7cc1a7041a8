package actors

import (
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// ε_i = ε^(1 + α·i/(N−1)): the ends of the ladder are ε and ε^(1+α); a
// single runner (N = 1) and α = 0 give ε_end.
func TestLadderEpsilon(t *testing.T) {
	for _, tc := range []struct {
		end, alpha   float64
		index, count int
		want         float64
	}{
		{0.4, 7, 0, 1, 0.4},
		{0.05, 7, 0, 1, 0.05},
		{0.4, 0, 3, 4, 0.4},
		{0.4, 7, 0, 4, 0.4},
		{0.4, 7, 1, 4, math.Pow(0.4, 1+7.0/3)},
		{0.4, 7, 2, 4, math.Pow(0.4, 1+14.0/3)},
		{0.4, 7, 3, 4, math.Pow(0.4, 8)},
		{0.4, 7, 1, 2, math.Pow(0.4, 8)},
	} {
		if got := LadderEpsilon(tc.end, tc.alpha, tc.index, tc.count); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("LadderEpsilon(%v, %v, %d, %d) = %v, want %v", tc.end, tc.alpha, tc.index, tc.count, got, tc.want)
		}
	}
}

// A RunnerLadder message moves a running runner to another rung: it reports
// the new rung at once, its ε (reported and acted on) follows, and it is not
// restarted for it. A position outside the ladder is refused.
func TestRunnerTakesLadderPosition(t *testing.T) {
	sys := newTestSystem(t)
	dir := LocalDirectory{Address: sys.Address()}
	spawnProbe(t, sys, ReplayName) // never credits: the runner drops its oldest experience and keeps stepping
	spawnProbe(t, sys, BroadcasterName)
	statsCh := spawnProbe(t, sys, StatsName)
	cfg := DefaultConfig()
	cfg.EpsilonEnd, cfg.EpsilonLadder, cfg.EpsilonDecaySteps = 0.4, 7, 0
	cfg.DropWhenFull, cfg.ProgressEverySteps = true, 200
	m := NewMetrics()
	spec := RunnerSpec{Name: "r0", Index: 0, Count: 2, EnvID: "CartPole-v1", Seed: 1, Net: testNet()}
	r := sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, cfg, dir, m, slog.New(slog.DiscardHandler))))

	p := next[*messages.RunnerProgress](t, statsCh)
	if p.GetLadderIndex() != 0 || p.GetLadderCount() != 2 || p.GetEpsilon() != 0.4 || p.GetLadderEpsilon() != 0.4 {
		t.Fatalf("first report: rung %d of %d, ε %v (end %v), want rung 0 of 2 at ε 0.4", p.GetLadderIndex(), p.GetLadderCount(), p.GetEpsilon(), p.GetLadderEpsilon())
	}
	incarnation := p.GetRunnerIncarnation()

	want := math.Pow(0.4, 8)
	sys.Root.Send(r, &RunnerLadder{Index: 3, Count: 4})
	sys.Root.Send(r, &RunnerLadder{Index: 4, Count: 4}) // outside the ladder: ignored
	for {
		p = next[*messages.RunnerProgress](t, statsCh)
		if p.GetLadderCount() == 4 {
			break
		}
	}
	if p.GetLadderIndex() != 3 || math.Abs(p.GetEpsilon()-want) > 1e-15 || math.Abs(p.GetLadderEpsilon()-want) > 1e-15 {
		t.Fatalf("after RunnerLadder{3, 4}: rung %d of %d, ε %v (end %v), want rung 3 of 4 at ε %v", p.GetLadderIndex(), p.GetLadderCount(), p.GetEpsilon(), p.GetLadderEpsilon(), want)
	}
	// Episodes started after the move are played at the new ε.
	for range 100 {
		e := next[*messages.EpisodeStats](t, statsCh)
		if math.Abs(e.GetMaxEpsilon()-want) < 1e-15 {
			break
		}
		if e.GetMaxEpsilon() != 0.4 {
			t.Fatalf("episode at ε %v, want 0.4 (before the move) or %v", e.GetMaxEpsilon(), want)
		}
	}
	p = next[*messages.RunnerProgress](t, statsCh)
	if p.GetLadderIndex() != 3 || p.GetLadderCount() != 4 || p.GetRunnerIncarnation() != incarnation {
		t.Fatalf("later report: rung %d of %d, incarnation %x (was %x)", p.GetLadderIndex(), p.GetLadderCount(), p.GetRunnerIncarnation(), incarnation)
	}
	if n := len(m.Status().Restarts); n != 0 {
		t.Fatalf("runner restarted: %v", m.Status().Restarts)
	}
}

// Node.SetRunnerLadder reaches every runner of the node, even when called
// as soon as the node starts, and the stats show each runner's rung and ε in
// the run status (/status).
func TestNodeSetRunnerLadderShowsInStatus(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Runners, cfg.EpsilonEnd, cfg.EpsilonLadder, cfg.EpsilonDecaySteps = 2, 0.4, 7, 0
	cfg.ProgressEverySteps = 100
	d, err := StartDev(NodeOptions{EnvID: "CartPole-v1", Seed: 1, Config: cfg, Stop: StopRule{MaxEnvSteps: 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	check := func(offset, total int) {
		t.Helper()
		testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			st := d.Metrics.Status()
			for i := range 2 {
				name := fmt.Sprintf("dev/runner-%d", i)
				r, ok := st.Runners[name]
				want := LadderEpsilon(0.4, 7, offset+i, total)
				if !ok || r.LadderIndex != offset+i || r.LadderCount != total || math.Abs(r.Epsilon-want) > 1e-15 || math.Abs(r.LadderEpsilon-want) > 1e-15 {
					return fmt.Errorf("%s: %+v (reported %v), want rung %d of %d at ε %v", name, r, ok, offset+i, total, want)
				}
			}
			return nil
		})
	}
	// Straight after StartNode, before the supervisor has spawned the
	// runners: the position must still reach them.
	d.SetRunnerLadder(2, 4)
	check(2, 4)
	d.SetRunnerLadder(0, 2) // back to dev mode's ladder, the node's own runners
	check(0, 2)
}
