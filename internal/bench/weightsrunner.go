package bench

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
	"github.com/qfleet/qfleet/nets"
)

// weightsRunner is a runner without the env: it takes weights with the
// runner's own WeightsClient (subscription, chunk assembly, acks with the
// version acting, newest-only) and acts on them (the CartPole network's
// forward pass, or a parameter copy of the same size). It reports each new
// version acting to the bench's collector: the measured event.
type weightsRunner struct {
	name      string
	collector *actor.PID
	client    *actors.WeightsClient
	policy    *nets.Forward
	params    []float32
	fail      chan error

	// Diagnostics of the version being assembled, reported with it.
	cur        wire.Version
	firstChunk time.Time
	chunks     uint64
}

func (r *weightsRunner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.client.Subscribe(ctx)
		ctx.Send(r.collector, &messages.RunnerProgress{Runner: r.name})
	case *messages.WeightsChunk:
		if k := (wire.Version{Term: msg.GetTerm(), Version: msg.GetVersion()}); k != r.cur {
			r.cur, r.firstChunk, r.chunks = k, time.Now(), 0
		}
		r.chunks++
		before := r.client.Acting()
		t := time.Now()
		r.client.Chunk(ctx, msg)
		took := time.Since(t)
		if now := r.client.Acting(); now != before {
			// A bench-only use of RunnerProgress's counters: env_steps carries
			// the first chunk's arrival (Unix ns, same host clock), experience_sent
			// the chunks, experience_lost the final chunk's time in the client (ns).
			ctx.Send(r.collector, &messages.RunnerProgress{Runner: r.name, WeightsVersion: now.Version, WeightsTerm: now.Term,
				EnvSteps: uint64(r.firstChunk.UnixNano()), ExperienceSent: r.chunks, ExperienceLost: uint64(took)})
		}
	}
}

// apply is the client's way to load weights: an error refuses them (and
// fails the process).
func (r *weightsRunner) apply(w *messages.Weights) error {
	if r.policy == nil {
		r.params = append(r.params[:0], w.GetParams()...)
		return nil
	}
	if err := r.policy.SetParams(w.GetParams()); err != nil {
		return fmt.Errorf("%s: %v", r.name, err)
	}
	r.policy.Greedy([]float32{0.01, -0.02, 0.03, 0.04}) // acts on them
	return nil
}

func childWeightsRunner(args []string, stdout, stderr io.Writer) error {
	var bAddr, collectorID, name string
	var params int
	if err := childFlags("weights-runner", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&bAddr, "broadcaster", "", "")
		fs.StringVar(&collectorID, "collector", "", "")
		fs.StringVar(&name, "name", "runner", "")
		fs.IntVar(&params, "params", 4866, "")
	}); err != nil {
		return err
	}
	sys, rem, logs, err := system(stderr)
	if err != nil {
		return err
	}
	defer func() { logs.mute(); rem.Shutdown(false) }()
	r := &weightsRunner{name: name, collector: actor.NewPID(bAddr, collectorID), fail: make(chan error, 1)}
	if sp := cartPoleNet(); params == sp.NumParams() {
		r.policy = nets.NewForward(sp)
	}
	r.client = actors.NewWeightsClient(actors.LocalDirectory{Address: bAddr}, actors.NewMetrics(), slog.New(failOnError{slog.LevelWarn, r.fail}), params, r.apply)
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return r }), "bench/"+name)
	if err != nil {
		return err
	}
	defer sys.Root.Stop(pid)
	fmt.Fprintf(stdout, "ready %s\n", sys.Address())
	stopped := make(chan struct{})
	go func() { childCommands(func(string) {}); close(stopped) }()
	select {
	case err := <-r.fail:
		return err
	case <-stopped:
		return nil
	}
}

func cartPoleNet() nets.Spec {
	return actors.NetSpec(envs.NewCartPole().Spec(), actors.DefaultConfig())
}

// initialParams: the CartPole network's initialisation for its size, else a
// vector of the same character (uniform ±1/√1000, a 1000-wide layer's).
func initialParams(n int, rng *rand.Rand) []float32 {
	if sp := cartPoleNet(); n == sp.NumParams() {
		return nets.InitParams(sp, rng)
	}
	p := make([]float32, n)
	bound := 1 / math.Sqrt(1000)
	for i := range p {
		p[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return p
}

// nextWeights is the next publication: every parameter moved by about what
// PublishEvery (10) Adam steps at learning rate 1e-3 move it.
func nextWeights(w *messages.Weights, rng *rand.Rand) *messages.Weights {
	p := slices.Clone(w.GetParams())
	for i := range p {
		p[i] += float32(rng.NormFloat64() * 3e-3)
	}
	return &messages.Weights{Version: w.GetVersion() + 1, Term: w.GetTerm(), Params: p, LearnerUpdates: w.GetLearnerUpdates() + 10}
}
