package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
	"github.com/qfleet/qfleet/nets"
)

// countEnv is a deterministic env whose observations say where they come
// from: [k, t, episode, 0] for env k at step t of its episode-th episode.
// The reward of step s (1-based) is 100·k + s; an episode lasts 2+k steps
// and ends terminated for even k, truncated (time limit) for odd k. So a
// vector of them ends episodes at different steps, and every transition's
// n-step return, discount and next observation follow from its observation.
type countEnv struct {
	k, t, ep int
	obs      [4]float32
}

func (e *countEnv) length() int { return 2 + e.k }

func (e *countEnv) Spec() envs.Spec {
	return envs.Spec{ID: "Count-v0", ObsShape: []int{4}, NumActions: 2, MaxEpisodeSteps: 1000}
}

func (e *countEnv) Reset(int64) []float32 {
	e.t = 0
	e.ep++
	return e.observe()
}

func (e *countEnv) Step(int) ([]float32, float64, bool, bool) {
	e.t++
	end := e.t == e.length()
	return e.observe(), float64(100*e.k + e.t), end && e.k%2 == 0, end && e.k%2 == 1
}

func (e *countEnv) observe() []float32 {
	e.obs = [4]float32{float32(e.k), float32(e.t), float32(e.ep), 0}
	return e.obs[:]
}

// countVec makes vectors of countEnvs numbered 0..n−1.
func countVec(n int) (envs.VecEnv, error) {
	k := 0
	return envs.NewVec(n, func() (envs.Env, error) {
		k++
		return &countEnv{k: k - 1}, nil
	})
}

// batchRecorder stands in for the replay: it passes every batch on and
// credits it at once.
type batchRecorder struct {
	got chan *messages.ExperienceBatch
}

func (s *batchRecorder) Receive(ctx actor.Context) {
	if b, ok := ctx.Message().(*messages.ExperienceBatch); ok {
		s.got <- b
		ctx.Send(PIDOf(b.GetReplyTo()), &messages.Credit{Transitions: b.GetCount(), Seq: b.GetSeq()})
	}
}

// A runner of 8 envs whose episodes end at different steps (2 to 9 steps,
// terminated or truncated) keeps each env's n-step returns, discounts and
// next observations its own, sends every transition of every finished
// episode exactly once, and reports each env's episodes with that env's
// return, length and ε rung.
func TestRunnerVectorKeepsEachEnvsReturns(t *testing.T) {
	const (
		n     = 8
		nstep = 3
		gamma = 0.9
		alpha = 7.0
	)
	sys := newTestSystem(t)
	got := make(chan *messages.ExperienceBatch, 10_000)
	if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &batchRecorder{got: got} }), ReplayName); err != nil {
		t.Fatal(err)
	}
	spawnProbe(t, sys, BroadcasterName)
	statsCh := spawnProbe(t, sys, StatsName)
	cfg := DefaultConfig()
	cfg.EnvsPerRunner, cfg.NStep, cfg.Gamma = n, nstep, gamma
	cfg.EpsilonEnd, cfg.EpsilonLadder, cfg.EpsilonDecaySteps = 0.4, alpha, 0
	cfg.SendBatch, cfg.CreditWindow, cfg.OutboxLimit, cfg.StepsPerChunk = 7, 70, 70, 24 // batches cut across envs and episodes
	spec := RunnerSpec{Name: "r0", Count: 1, EnvID: "Count-v0", Seed: 1, Net: testNet(), NewEnv: countVec}
	r := sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, cfg, LocalDirectory{Address: sys.Address()}, NewMetrics(), slog.New(slog.DiscardHandler))))

	type key struct{ k, ep, t int }
	seen := map[key]bool{}
	maxEp := map[int]int{}
	var total uint64
	for total < 5000 {
		var b *messages.ExperienceBatch
		select {
		case b = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("no batch within 5 s after %d transitions", total)
		}
		if b.GetCount() != uint32(cfg.SendBatch) || b.GetSentBefore() != total {
			t.Fatalf("batch of %d after %d sent (sent_before %d), want %d", b.GetCount(), total, b.GetSentBefore(), cfg.SendBatch)
		}
		total += uint64(b.GetCount())
		for j := range int(b.GetCount()) {
			o, nx := b.Observations[4*j:4*j+4], b.NextObservations[4*j:4*j+4]
			k, st, ep := int(o[0]), int(o[1]), int(o[2])
			id := key{k, ep, st}
			if seen[id] {
				t.Fatalf("env %d episode %d step %d sent twice", k, ep, st)
			}
			seen[id] = true
			maxEp[k] = max(maxEp[k], ep)
			length := 2 + k
			m := min(nstep, length-st)
			var ret float64
			for i := range m {
				ret += math.Pow(gamma, float64(i)) * float64(100*k+st+i+1)
			}
			disc := math.Pow(gamma, float64(m))
			if st+m == length && k%2 == 0 {
				disc = 0
			}
			want := []float32{float32(k), float32(st + m), float32(ep), 0}
			if math.Abs(float64(b.Rewards[j])-ret) > 1e-4*ret || math.Abs(float64(b.Discounts[j])-disc) > 1e-6 || fmt.Sprint(nx) != fmt.Sprint(want) {
				t.Fatalf("env %d episode %d step %d: reward %v discount %v next %v, want %v, %v, %v",
					k, ep, st, b.Rewards[j], b.Discounts[j], nx, ret, disc, want)
			}
		}
	}
	sys.Root.Stop(r)
	// Every episode before an env's newest sent one is complete: its last
	// transitions went out before the next episode's first.
	for k := range n {
		if maxEp[k] < 3 {
			t.Fatalf("env %d: only %d episodes seen", k, maxEp[k])
		}
		for ep := 1; ep < maxEp[k]; ep++ {
			for st := range 2 + k {
				if !seen[key{k, ep, st}] {
					t.Fatalf("env %d episode %d step %d never sent", k, ep, st)
				}
			}
		}
	}

	// Each episode report is one env's: its return, length, end and rung.
	episodes := map[int]int{}
	for len(episodes) < n || episodes[n-1] < 3 {
		e := next[*messages.EpisodeStats](t, statsCh)
		length := int(e.GetLength())
		k := length - 2
		if k < 0 || k >= n {
			t.Fatalf("episode of length %d", length)
		}
		want := float64(100*k*length + length*(length+1)/2)
		if e.GetReturn() != want || e.GetTruncated() != (k%2 == 1) || e.GetRunnerEnvSteps()%n != 0 {
			t.Fatalf("env %d episode: return %v truncated %v at runner step %d, want %v, %v, a multiple of %d",
				k, e.GetReturn(), e.GetTruncated(), e.GetRunnerEnvSteps(), want, k%2 == 1, n)
		}
		if eps := LadderEpsilon(0.4, alpha, k, n); math.Abs(e.GetMaxEpsilon()-eps) > 1e-15 {
			t.Fatalf("env %d episode at ε %v, want its rung's %v", k, e.GetMaxEpsilon(), eps)
		}
		episodes[k]++
	}
}

// failingVec is a vector env whose Step fails after a few steps.
type failingVec struct {
	envs.VecEnv
	steps  int
	closed *atomic.Int32
}

func (v *failingVec) Step(a []int32) (*envs.VecStep, error) {
	if v.steps++; v.steps > 50 {
		return nil, errors.New("env process gone")
	}
	return v.VecEnv.Step(a)
}

func (v *failingVec) Close() error {
	v.closed.Add(1)
	return v.VecEnv.Close()
}

// An env that fails fails its runner: the supervisor restarts it with new
// envs from the factory, the failed ones are closed, and the log says why
// in one line.
func TestRunnerEnvErrorRestartsRunner(t *testing.T) {
	sys := newTestSystem(t)
	spawnProbe(t, sys, ReplayName)
	spawnProbe(t, sys, BroadcasterName)
	spawnProbe(t, sys, StatsName)
	var made, closed atomic.Int32
	spec := RunnerSpec{Name: "r0", Count: 1, EnvID: "CartPole-v1", Seed: 1, Net: testNet(), NewEnv: func(n int) (envs.VecEnv, error) {
		made.Add(1)
		v, err := envs.NewVec(n, func() (envs.Env, error) { return envs.Make("CartPole-v1") })
		return &failingVec{VecEnv: v, closed: &closed}, err
	}}
	cfg := DefaultConfig()
	cfg.EnvsPerRunner, cfg.DropWhenFull = 4, true
	m := NewMetrics()
	var buf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	sys.Root.Spawn(actor.PropsFromProducer(newRunner(spec, cfg, LocalDirectory{Address: sys.Address()}, m, log)))
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if made.Load() < 3 || closed.Load() < 2 {
			return fmt.Errorf("%d vectors made, %d closed", made.Load(), closed.Load())
		}
		return nil
	})
	if s := buf.String(); !strings.Contains(s, "runner failed") || !strings.Contains(s, "env process gone") {
		t.Fatalf("log does not say why the runner failed:\n%s", s)
	}
}

// envs_per_runner is 1..MaxEnvsPerRunner; the error names the key.
func TestConfigEnvsPerRunner(t *testing.T) {
	for _, v := range []int{1, 8, MaxEnvsPerRunner} {
		c := DefaultConfig()
		c.EnvsPerRunner = v
		if err := c.Validate(); err != nil {
			t.Errorf("envs_per_runner = %d: %v", v, err)
		}
	}
	for _, v := range []int{0, -1, MaxEnvsPerRunner + 1} {
		c := DefaultConfig()
		c.EnvsPerRunner = v
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(fmt.Sprint(err), "envs_per_runner") || !strings.Contains(fmt.Sprint(err), "1..4096") {
			t.Errorf("envs_per_runner = %d: %v, want an ErrInvalidConfig naming envs_per_runner and 1..4096", v, err)
		}
	}
}

// The whole pipeline learns with runners of 8 envs each: the same bounds as
// TestDevLearnsCartPole, in env steps (8 per vector step), and nothing sent
// is lost on the way to the replay.
func TestDevLearnsCartPoleVector(t *testing.T) {
	if testing.Short() {
		t.Skip("learning run: skipped with -short")
	}
	cfg := DefaultConfig()
	cfg.EnvsPerRunner = 8
	_, st := devLearnsCartPole(t, cfg)
	if st.ExperienceLost != 0 || st.ExperienceDropped != 0 || st.ReplayInserted == 0 {
		t.Fatalf("experience: %d inserted, %d lost, %d dropped; want some inserted, none lost or dropped", st.ReplayInserted, st.ExperienceLost, st.ExperienceDropped)
	}
}

// A full batch's runner priorities are each transition's |TD error| under
// the runner's network (1 before any weights), from batched passes.
func TestRunnerPrioritiesAreTDErrors(t *testing.T) {
	net := nets.Spec{Inputs: 4, Hidden: []int{16}, Outputs: 3}
	rng := rand.New(rand.NewPCG(3, 3))
	f := nets.NewForward(net)
	if err := f.SetParams(nets.InitParams(net, rng)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Prioritized, cfg.SendBatch = true, 9
	r := &runner{spec: RunnerSpec{Net: net}, cfg: cfg, policy: f, weights: &WeightsClient{}, obsSize: net.Inputs}
	r.newBatch()
	b := r.batch
	for i := range cfg.SendBatch {
		for range net.Inputs {
			b.Observations = append(b.Observations, float32(rng.NormFloat64()))
			b.NextObservations = append(b.NextObservations, float32(rng.NormFloat64()))
		}
		b.Actions = append(b.Actions, uint32(rng.IntN(net.Outputs)))
		b.Rewards = append(b.Rewards, float32(rng.NormFloat64()))
		b.Discounts = append(b.Discounts, float32(i%2)*0.97)
		b.Count++
	}
	r.prioritize(b)
	for i, p := range b.Priorities {
		if p != 1 {
			t.Fatalf("before weights: priority %d = %v, want 1", i, p)
		}
	}
	r.weights.acting = wire.Version{Term: 1, Version: 1}
	r.prioritize(b)
	if len(b.Priorities) != cfg.SendBatch {
		t.Fatalf("%d priorities for %d transitions", len(b.Priorities), cfg.SendBatch)
	}
	for i := range cfg.SendBatch {
		o, nx := b.Observations[i*4:i*4+4], b.NextObservations[i*4:i*4+4]
		qSA := float64(f.Q(o)[b.Actions[i]])
		best := float64(slices.Max(f.Q(nx)))
		want := math.Abs(float64(b.Rewards[i]) + float64(b.Discounts[i])*best - qSA)
		if math.Abs(float64(b.Priorities[i])-want) > 1e-5*max(1, want) {
			t.Fatalf("priority %d = %v, want |TD| %v", i, b.Priorities[i], want)
		}
	}
}
