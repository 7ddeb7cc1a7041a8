package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
)

// WireOptions are the settings of Wire (DefaultWireOptions).
type WireOptions struct {
	Seconds float64 // measured, after a warm-up of min(1 s, Seconds/4)
	Batch   int     // transitions per experience message (a runner's send_batch)
	Window  int     // credit window in transitions (a runner's credit_window); 0: 8 batches
	Batches int     // distinct batches built from the CartPole stream and sent round-robin
	Senders int     // runner actors in the sender process, each with its own window
	Seed    uint64  // of the CartPole stream
}

// DefaultWireOptions: 10 s of one sender, batches of 128, a window of 8.
func DefaultWireOptions() WireOptions {
	return WireOptions{Seconds: 10, Batch: 128, Batches: 256, Senders: 1, Seed: 1}
}

// Check says what is wrong with o, naming the command's flag, before
// anything starts.
func (o WireOptions) Check() error {
	switch {
	case !(o.Seconds > 0) || o.Seconds > 3600:
		return fmt.Errorf("--seconds %v: must be in (0, 3600]", o.Seconds)
	case o.Batch < 1 || o.Batch > 65536:
		return fmt.Errorf("--batch %d: must be in 1..65536", o.Batch)
	case o.Batches < 1 || o.Batches > 4096:
		return fmt.Errorf("--batches %d: must be in 1..4096", o.Batches)
	case o.Senders < 1 || o.Senders > 64:
		return fmt.Errorf("--senders %d: must be in 1..64", o.Senders)
	case o.Window != 0 && o.Window < o.Batch:
		return fmt.Errorf("--window %d: must be >= --batch (%d)", o.Window, o.Batch)
	}
	return nil
}

// WireResult is the outcome of Wire, and its JSON line. PackMicrosPerBatch
// is the sender's time per batch in ExperienceSender.TrySend: stamping,
// packing (most of it) and handing the message to the remote.
type WireResult struct {
	Bench                 string  `json:"bench"`
	Seconds               float64 `json:"seconds"`
	Batch                 int     `json:"batch"`
	Senders               int     `json:"senders"`
	Window                int     `json:"window"`
	Transitions           uint64  `json:"transitions"`
	TransitionsPerSecond  float64 `json:"transitions_per_s"`
	MessagesPerSecond     float64 `json:"messages_per_s"`
	BytesPerTransition    float64 `json:"bytes_per_transition"`
	WireMBPerSecond       float64 `json:"wire_mb_per_s"`
	PackMicrosPerBatch    float64 `json:"pack_us_per_batch"`
	SenderCPUCores        float64 `json:"sender_cpu_cores"`
	ReceiverCPUCores      float64 `json:"receiver_cpu_cores"`
	SenderCreditStalledPc float64 `json:"sender_credit_stalled_pct"`
	Rejected              uint64  `json:"rejected"`
}

// Wire streams experience from a sender process to the real replay actor in
// this process and measures it. It stops the sender however it ends;
// cancelling ctx ends it with ErrInterrupted.
func Wire(ctx context.Context, o WireOptions) (WireResult, error) {
	if err := o.Check(); err != nil {
		return WireResult{}, err
	}
	if o.Window == 0 {
		o.Window = 8 * o.Batch
	}
	// This process is the replay: the real replay actor on a remote-enabled
	// system, its sample:insert limiter off (there is no learner), so every
	// batch's credit goes back at once, as when the learner keeps up.
	// The replay's log stays out of the output: a child that fails is
	// reported by the error it printed, not by the connection it broke.
	sys, rem, logs, err := system(io.Discard)
	if err != nil {
		return WireResult{}, err
	}
	cfg := actors.DefaultConfig()
	cfg.SamplesPerInsert = 0
	cfg.SendBatch, cfg.CreditWindow = o.Batch, o.Window
	cfg.OutboxLimit = max(cfg.OutboxLimit, o.Batch)
	cfg.MinReplaySize = max(cfg.MinReplaySize, cfg.BatchSize)
	node, err := actors.StartNode(actors.NodeOptions{Name: "bench-replay", Roles: []string{actors.RoleReplay}, EnvID: envs.CartPoleID, Seed: 1, Config: cfg, System: sys})
	if err != nil {
		rem.Shutdown(false)
		return WireResult{}, err
	}
	var sender *child
	defer func() {
		logs.mute()
		if sender != nil {
			sender.stop()
		}
		rem.Shutdown(false)
		node.Stop()
	}()

	sender, err = startChild("sender", "wire-sender",
		"--replay", sys.Address(), "--batch", strconv.Itoa(o.Batch), "--window", strconv.Itoa(o.Window),
		"--batches", strconv.Itoa(o.Batches), "--seed", strconv.FormatUint(o.Seed, 10), "--senders", strconv.Itoa(o.Senders))
	if err != nil {
		return WireResult{}, err
	}
	if _, err := sender.ready(60 * time.Second); err != nil {
		return WireResult{}, err
	}
	// Wait for the stream to start, then warm up.
	deadline := time.Now().Add(15 * time.Second)
	for node.Metrics.Status().ReplayInserted == 0 {
		if time.Now().After(deadline) {
			return WireResult{}, errors.New("no experience reached the replay within 15 s")
		}
		if err := sender.sleep(ctx, 5*time.Millisecond); err != nil {
			return WireResult{}, err
		}
	}
	if err := sender.sleep(ctx, min(time.Second, time.Duration(o.Seconds*float64(time.Second)/4))); err != nil {
		return WireResult{}, err
	}
	take := func() (wireSnap, error) { return snapshot(sender, node.Metrics) }
	a, err := take()
	if err != nil {
		return WireResult{}, err
	}
	if err := sender.sleep(ctx, time.Duration(o.Seconds*float64(time.Second))); err != nil {
		return WireResult{}, err
	}
	b, err := take()
	if err != nil {
		return WireResult{}, err
	}
	st := node.Metrics.Status()
	if st.ExperienceRejected > 0 {
		return WireResult{}, fmt.Errorf("the replay rejected %d transitions", st.ExperienceRejected)
	}
	wall := b.at.Sub(a.at).Seconds()
	n := b.inserted - a.inserted
	if n <= 0 {
		return WireResult{}, errors.New("no transitions reached the replay during the measurement")
	}
	packed := float64(b.s.Packed - a.s.Packed)
	r := WireResult{
		Bench: "wire", Seconds: round(wall, 3), Batch: o.Batch, Senders: o.Senders, Window: o.Window,
		Transitions:           uint64(n),
		TransitionsPerSecond:  round(n/wall, 0),
		MessagesPerSecond:     round(packed/wall, 0),
		BytesPerTransition:    round((b.bytes-a.bytes)/n, 2),
		WireMBPerSecond:       round((b.bytes-a.bytes)/wall/1e6, 2),
		PackMicrosPerBatch:    round(float64(b.s.PackNanos-a.s.PackNanos)/1e3/max(packed, 1), 1),
		SenderCPUCores:        round((b.s.CPU-a.s.CPU)/wall, 2),
		ReceiverCPUCores:      round((b.cpu-a.cpu)/wall, 2),
		SenderCreditStalledPc: round(100*float64(b.s.StalledNanos-a.s.StalledNanos)/1e9/wall/float64(o.Senders), 1),
		Rejected:              st.ExperienceRejected,
	}
	return r, nil
}

// wireSnap is the counters of both sides at one moment.
type wireSnap struct {
	at              time.Time
	inserted, bytes float64
	cpu             float64
	s               wireSenderStats
}

// snapshot asks the sender process for its counters and reads the replay's.
func snapshot(sender *child, m *actors.Metrics) (wireSnap, error) {
	if err := sender.command("stats"); err != nil {
		return wireSnap{}, err
	}
	l, err := sender.readLine(10*time.Second, "stats")
	if err != nil {
		return wireSnap{}, err
	}
	var s wireSnap
	if err := json.Unmarshal([]byte(l), &s.s); err != nil {
		return wireSnap{}, fmt.Errorf("the sender process said %q: %v", l, err)
	}
	st := m.Status()
	s.at, s.inserted, s.cpu = time.Now(), float64(st.ReplayInserted), cpuSeconds()
	s.bytes = counterValue(m, "qfleet_wire_bytes_total", "flow", "experience", "direction", "received")
	return s, nil
}

// Report writes the human summary and then the JSON line.
func (r WireResult) Report(w io.Writer) error {
	fmt.Fprintf(w, "bench wire: CartPole-v1 experience, runner process → replay process over protoactor remote on loopback\n")
	fmt.Fprintf(w, "  %d runner actor(s) on actors.ExperienceSender, batch %d transitions, credit window %d each, codec frames+float16+zstd, packed in the loop\n", r.Senders, r.Batch, r.Window)
	fmt.Fprintf(w, "  %.0f transitions inserted in %.2f s: %.0f transitions/s (target >= 500000), %.0f messages/s\n", float64(r.Transitions), r.Seconds, r.TransitionsPerSecond, r.MessagesPerSecond)
	fmt.Fprintf(w, "  wire: %.2f bytes/transition (target <= 12; raw float32 obs+next_obs alone is 32), %.2f MB/s\n", r.BytesPerTransition, r.WireMBPerSecond)
	fmt.Fprintf(w, "  CPU: sender %.2f cores (packing %.1f µs/batch), replay %.2f cores, on %d cores shared with other load; a sender waited for credit %.1f%% of the time\n",
		r.SenderCPUCores, r.PackMicrosPerBatch, r.ReceiverCPUCores, numCPU(), r.SenderCreditStalledPc)
	return printJSON(w, r)
}
