package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// WeightsOptions are the settings of Weights (DefaultWeightsOptions).
type WeightsOptions struct {
	Runners    int           // runner processes
	Params     int           // parameters per version
	Rounds     int           // measured versions, after the first (whole) one
	ChunkBytes int           // the broadcaster's weights_chunk_bytes
	Delta      bool          // versions after the first as deltas (weights_delta)
	Timeout    time.Duration // for a version to reach every runner
	Seed       uint64        // of the weights
}

// DefaultWeightsOptions: 4 runners, the CartPole-v1 network, 20 rounds of
// deltas in 32 KiB chunks, 30 s per version at most.
func DefaultWeightsOptions() WeightsOptions {
	return WeightsOptions{Runners: 4, Params: CartPoleParams(), Rounds: 20, ChunkBytes: 32 << 10, Delta: true, Timeout: 30 * time.Second, Seed: 1}
}

// CartPoleParams is the size of the CartPole-v1 network (4-64-64-2).
func CartPoleParams() int { return cartPoleNet().NumParams() }

// Check says what is wrong with o, naming the command's flag, before
// anything starts.
func (o WeightsOptions) Check() error {
	switch {
	case o.Runners < 1 || o.Runners > 64:
		return fmt.Errorf("--runners %d: must be in 1..64", o.Runners)
	case o.Params < 1 || o.Params > wire.MaxFloats:
		return fmt.Errorf("--params %d: must be in 1..%d", o.Params, wire.MaxFloats)
	case o.Rounds < 1 || o.Rounds > 10000:
		return fmt.Errorf("--rounds %d: must be in 1..10000", o.Rounds)
	case o.ChunkBytes < 1024 || o.ChunkBytes > cluster.MaxMessageBytes-4096:
		return fmt.Errorf("--chunk-bytes %d: must be in 1024..%d", o.ChunkBytes, cluster.MaxMessageBytes-4096)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout %v: must be > 0", o.Timeout)
	}
	return nil
}

// WeightsResult is the outcome of Weights, and its JSON line.
type WeightsResult struct {
	Bench              string  `json:"bench"`
	Runners            int     `json:"runners"`
	Params             int     `json:"params"`
	Rounds             int     `json:"rounds"`
	Delta              bool    `json:"delta"`
	ChunkBytes         int     `json:"chunk_bytes"`
	FirstFullMillis    float64 `json:"first_full_ms"`
	FirstFullBytes     float64 `json:"first_full_bytes_per_runner"`
	MedianMillis       float64 `json:"median_ms"`
	P90Millis          float64 `json:"p90_ms"`
	MinMillis          float64 `json:"min_ms"`
	MaxMillis          float64 `json:"max_ms"`
	BytesPerBroadcast  float64 `json:"bytes_per_runner_median"`
	ChunksPerBroadcast float64 `json:"chunks_per_runner_median"`
	// Where the time goes (medians over the measured versions): until the
	// last runner has its first chunk, per further chunk (one in flight:
	// a round trip), the final chunk on a runner (its decode and the
	// weights taken: loaded into the network and a forward pass).
	FirstChunkMillis     float64 `json:"first_chunk_ms"`
	ChunkRoundTripMillis float64 `json:"chunk_round_trip_ms"`
	DecodeMillis         float64 `json:"decode_ms"`
}

type actingReport struct {
	runner     string
	version    uint64
	at         time.Time
	firstChunk time.Time     // when the runner got the version's first chunk
	chunks     uint64        // chunks it got of the version
	decode     time.Duration // spent in the WeightsClient.Chunk that completed it
}

// weightsBench is one run of Weights: this process is the learner's node
// (the real broadcaster actor on a remote-enabled system, and a collector
// of the runners' reports), the runners are child processes.
type weightsBench struct {
	ctx     context.Context
	o       WeightsOptions
	sys     *actor.ActorSystem
	node    *actors.Node
	reports chan actingReport
	exited  chan *child
}

// Weights measures the time from publishing weights to every runner process
// acting on them. It stops the runners however it ends; cancelling ctx ends
// it with ErrInterrupted.
func Weights(ctx context.Context, o WeightsOptions) (WeightsResult, error) {
	if err := o.Check(); err != nil {
		return WeightsResult{}, err
	}
	sys, rem, logs, err := system(io.Discard) // as in Wire
	if err != nil {
		return WeightsResult{}, err
	}
	cfg := actors.DefaultConfig()
	cfg.WeightsChunkBytes, cfg.WeightsDelta = o.ChunkBytes, o.Delta
	node, err := actors.StartNode(actors.NodeOptions{Name: "bench-broadcaster", Roles: []string{actors.RoleBroadcaster}, EnvID: envs.CartPoleID, Seed: 1, Config: cfg, System: sys})
	if err != nil {
		rem.Shutdown(false)
		return WeightsResult{}, err
	}
	b := &weightsBench{ctx: ctx, o: o, sys: sys, node: node, reports: make(chan actingReport, 4096), exited: make(chan *child, o.Runners)}
	var children []*child
	defer func() {
		logs.mute()
		var wg sync.WaitGroup
		for _, c := range children {
			wg.Add(1)
			go func() { defer wg.Done(); c.stop() }()
		}
		wg.Wait()
		rem.Shutdown(false)
		node.Stop()
	}()
	if children, err = b.startRunners(); err != nil {
		return WeightsResult{}, err
	}
	// Every runner reports version 0 once it has subscribed.
	if _, err := b.wait(0, 60*time.Second); err != nil {
		return WeightsResult{}, err
	}
	select { // let the broadcaster take the subscriptions that came with the reports
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return WeightsResult{}, ErrInterrupted
	}
	return b.measure()
}

// startRunners spawns the collector and starts the runner processes.
func (b *weightsBench) startRunners() ([]*child, error) {
	collector, err := b.sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.RunnerProgress); ok {
			b.reports <- actingReport{runner: m.GetRunner(), version: m.GetWeightsVersion(), at: time.Now(),
				firstChunk: time.Unix(0, int64(m.GetEnvSteps())), chunks: m.GetExperienceSent(), decode: time.Duration(m.GetExperienceLost())}
		}
	}), "bench-collector")
	if err != nil {
		return nil, err
	}
	var children []*child
	for i := range b.o.Runners {
		c, err := startChild(fmt.Sprintf("runner-%d", i), "weights-runner",
			"--broadcaster", b.sys.Address(), "--collector", collector.Id, "--name", fmt.Sprintf("runner-%d", i), "--params", strconv.Itoa(b.o.Params))
		if err != nil {
			return children, err
		}
		children = append(children, c)
		go func() { <-c.done; b.exited <- c }()
	}
	return children, nil
}

// wait returns the first report of version (or newer) of every runner, in
// the order they came.
func (b *weightsBench) wait(version uint64, timeout time.Duration) ([]actingReport, error) {
	got := map[string]bool{}
	var last []actingReport
	t := time.NewTimer(timeout)
	defer t.Stop()
	for len(got) < b.o.Runners {
		select {
		case r := <-b.reports:
			if r.version >= version && !got[r.runner] {
				got[r.runner], last = true, append(last, r)
			}
		case c := <-b.exited:
			return last, c.exited()
		case <-b.ctx.Done():
			return last, ErrInterrupted
		case <-t.C:
			var missing []string
			for i := range b.o.Runners {
				if n := fmt.Sprintf("runner-%d", i); !got[n] {
					missing = append(missing, n)
				}
			}
			return last, fmt.Errorf("version %d did not reach %s within %v", version, strings.Join(missing, ", "), timeout)
		}
	}
	return last, nil
}

// measure publishes the first version and Rounds more, one at a time.
func (b *weightsBench) measure() (WeightsResult, error) {
	o := b.o
	rng := rand.New(rand.NewPCG(o.Seed, 0x77656967687473))
	w := &messages.Weights{Version: 1, Term: 1, Params: initialParams(o.Params, rng), LearnerUpdates: 0}
	sent := func() float64 {
		return counterValue(b.node.Metrics, "qfleet_wire_bytes_total", "flow", "weights", "direction", "sent")
	}
	var lat, bytesPer, chunksPer, firstChunk, perChunk, decode []float64
	var firstMs, firstBytes float64
	bpid := actor.NewPID(b.sys.Address(), actors.BroadcasterName)
	for v := uint64(1); v <= uint64(o.Rounds)+1; v++ {
		if v > 1 {
			w = nextWeights(w, rng) // the learner has them ready: not timed
		}
		b0 := sent()
		t0 := time.Now()
		b.sys.Root.Send(bpid, w)
		reps, err := b.wait(v, o.Timeout)
		if err != nil {
			return WeightsResult{}, err
		}
		// reps arrive in order: the last one ends the round. Diagnostics:
		// the latest first chunk (the broadcaster's packing and first send),
		// the chunk round trip, the final chunk.
		ms := float64(reps[len(reps)-1].at.Sub(t0)) / 1e6
		var fc float64
		for _, r := range reps {
			fc = max(fc, float64(r.firstChunk.Sub(t0))/1e6)
			if v > 1 {
				if r.chunks > 1 {
					perChunk = append(perChunk, float64(r.at.Sub(r.firstChunk))/1e6/float64(r.chunks-1))
				}
				decode = append(decode, float64(r.decode)/1e6)
			}
		}
		per := (sent() - b0) / float64(o.Runners)
		if v == 1 {
			firstMs, firstBytes = ms, per
			continue
		}
		lat, bytesPer, firstChunk = append(lat, ms), append(bytesPer, per), append(firstChunk, fc)
		chunksPer = append(chunksPer, math.Ceil(per/float64(o.ChunkBytes)))
	}
	return WeightsResult{
		Bench: "weights", Runners: o.Runners, Params: o.Params, Rounds: o.Rounds, Delta: o.Delta, ChunkBytes: o.ChunkBytes,
		FirstFullMillis: round(firstMs, 2), FirstFullBytes: round(firstBytes, 0),
		MedianMillis: round(quantile(lat, 0.5), 2), P90Millis: round(quantile(lat, 0.9), 2),
		MinMillis: round(slices.Min(lat), 2), MaxMillis: round(slices.Max(lat), 2),
		BytesPerBroadcast: round(quantile(bytesPer, 0.5), 0), ChunksPerBroadcast: quantile(chunksPer, 0.5),
		FirstChunkMillis: round(quantile(firstChunk, 0.5), 2), ChunkRoundTripMillis: round(quantile(perChunk, 0.5), 3),
		DecodeMillis: round(quantile(decode, 0.5), 2),
	}, nil
}

// Report writes the human summary and then the JSON line.
func (r WeightsResult) Report(w io.Writer) error {
	what := fmt.Sprintf("%d params", r.Params)
	if r.Params == cartPoleNet().NumParams() {
		what = fmt.Sprintf("the CartPole network (4-64-64-2, %d params)", r.Params)
	}
	mode := "deltas against the previous version"
	if !r.Delta {
		mode = "whole (delta off)"
	}
	fmt.Fprintf(w, "bench weights: %s, broadcaster process → %d runner processes over protoactor remote on loopback\n", what, r.Runners)
	fmt.Fprintf(w, "  zstd chunks of %d bytes, one in flight per runner; publish → every runner acting on it\n", r.ChunkBytes)
	fmt.Fprintf(w, "  first version (whole, no delta base yet): %.2f ms, %.0f bytes per runner\n", r.FirstFullMillis, r.FirstFullBytes)
	fmt.Fprintf(w, "  %d versions sent as %s: median %.2f ms, p90 %.2f ms (min %.2f, max %.2f); %.0f bytes (%.0f chunks) per runner\n",
		r.Rounds, mode, r.MedianMillis, r.P90Millis, r.MinMillis, r.MaxMillis, r.BytesPerBroadcast, r.ChunksPerBroadcast)
	fmt.Fprintf(w, "  where it goes (medians): %.2f ms until every runner has its first chunk (broadcaster packing), %.3f ms per further chunk (round trip), %.2f ms final decode\n",
		r.FirstChunkMillis, r.ChunkRoundTripMillis, r.DecodeMillis)
	if r.Params >= 1_000_000 {
		fmt.Fprintf(w, "  target for 1M parameters: <= 100 ms\n")
	}
	return printJSON(w, r)
}
