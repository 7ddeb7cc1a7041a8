package cli

// qfleet bench: two real-process measurements over protoactor remote on
// loopback (issue 3, "What it must show" → Benchmarks). Every side is its own
// OS process: the bench command re-executes its own binary with the hidden
// first argument benchChildArg for the other side(s). A child prints
// "ready ADDRESS" on stdout once its remote is up, then answers commands read
// from stdin, one per line; it exits on "stop" or when stdin closes, so a
// child never outlives its parent (the parent also kills it on every exit).

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
	"github.com/qfleet/qfleet/nets"
)

const benchHelp = `Usage: qfleet bench wire|weights [flags]

Measures qfleet's cross-host flows between real processes over protoactor
remote on loopback (127.0.0.1, plaintext, the remote settings of 'qfleet
node'). Each side runs in its own process: the command starts copies of its
own binary for the other side and kills them when it ends. Both modes print a
human summary and then one JSON line with the numbers. The machine's other
load shows in the numbers: take the median of several runs.

  qfleet bench wire [--seconds 10] [--batch 128] [--window N]
      A runner process streams CartPole-v1 experience to a replay process.
      The batches are built once (random actions, 3-step transitions, 256
      distinct batches) and sent round-robin with new sequence numbers; the
      sender packs every batch (wire.PackExperience, wire.DefaultOptions:
      frames, float16, zstd) inside the measured loop, as a runner does, and
      sends only under the credit window (a batch per credit granted). The
      receiver is the real replay actor (actors.StartNode, role replay, its
      rate limiter off): it unpacks, checks, inserts into its table and
      returns the credit. Reports transitions/s inserted, wire bytes per
      transition (proto.Size of PackedExperience / count) and CPU use.

  qfleet bench weights [--runners 4] [--params 4610|1000000] [--rounds 20]
      A broadcaster process (the real broadcaster actor: 32 KiB zstd chunks,
      one chunk in flight per runner, acked) and --runners runner processes
      (each assembles chunks with wire.WeightsAssembler, acts on the
      weights, acks as a runner does and reports the version it acts on).
      Measures, per version, the time from handing new weights to the
      broadcaster to the last runner acting on them; the next version is
      published only when every runner acts on the previous one. The first
      version goes whole (no delta base yet) and is reported apart; the
      --rounds measured versions are deltas against the previous one
      (--delta=false sends them whole). Reports median and p90.

Run 'qfleet bench wire --help' or 'qfleet bench weights --help' for all flags.
`

const benchWireHelp = `Usage: qfleet bench wire [flags]

A runner process streams packed CartPole-v1 experience to the replay process
under a credit window; see 'qfleet bench --help'.

Flags:
`

const benchWeightsHelp = `Usage: qfleet bench weights [flags]

Time from publishing weights to every runner process acting on them; see
'qfleet bench --help'.

Flags:
`

// benchChildArg, as the first argument of 'qfleet bench', makes the process
// one side of a benchmark. It is not part of the command's interface.
const benchChildArg = "--bench-child"

// benchExecutable is the binary re-executed for the other side; tests, whose
// own executable is the test binary, point it at a built qfleet.
var benchExecutable = os.Executable

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchHelp)
		return usageError{errors.New("which benchmark? wire or weights")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, benchHelp)
		return errHelp
	case "wire":
		return benchWire(args[1:], stdout, stderr)
	case "weights":
		return benchWeights(args[1:], stdout, stderr)
	case benchChildArg:
		return benchChild(args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown benchmark %q (wire or weights)", args[0])}
}

// ---------------------------------------------------------------------------
// Shared plumbing

// benchSystem is an actor system with a protoactor remote on 127.0.0.1 and a
// free port, configured as 'qfleet node' configures it (cluster.RemoteConfig).
func benchSystem(stderr io.Writer) (*actor.ActorSystem, *remote.Remote, *muteWriter, error) {
	mw := &muteWriter{w: stderr}
	logger := slog.New(slog.NewTextHandler(mw, &slog.HandlerOptions{Level: slog.LevelError}))
	sys := cluster.NewActorSystem(logger)
	rem, err := cluster.StartRemote(sys, cluster.RemoteConfig("127.0.0.1", 0, "", nil, cluster.NewGuard(sys, cluster.GuardConfig{})))
	if err != nil {
		return nil, nil, nil, err
	}
	return sys, rem, mw, nil
}

// muteWriter passes writes on until muted: connections that break while the
// processes end are logged as errors, and are not.
type muteWriter struct {
	mu    sync.Mutex
	muted bool
	w     io.Writer
}

func (m *muteWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.muted {
		return len(p), nil
	}
	return m.w.Write(p)
}

// mute drops every later write; none is under way when it returns.
func (m *muteWriter) mute() {
	m.mu.Lock()
	m.muted = true
	m.mu.Unlock()
}

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// counterValue reads a counter of a node's registry (labels as name=value
// pairs); 0 if it has no sample yet.
func counterValue(m *actors.Metrics, name string, labels ...string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

// interrupted returns a channel closed on SIGINT or SIGTERM (so that the
// deferred cleanup kills the children) and a function to stop listening.
func interrupted() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

var errInterrupted = errors.New("interrupted")

// child is one benchmark process started from this one.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // stdout, line by line; closed at EOF
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's result, once done is closed
	tail  *tailWriter   // the end of its stderr, for error messages
}

// startChild runs this binary as `bench --bench-child kind args...`.
func startChild(name, kind string, args ...string) (*child, error) {
	exe, err := benchExecutable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the qfleet binary to start the %s process: %v", name, err)
	}
	c := &child{name: name, lines: make(chan string, 64), done: make(chan struct{}), tail: &tailWriter{}}
	c.cmd = exec.Command(exe, append([]string{"bench", benchChildArg, kind}, args...)...)
	lw := &lineWriter{ch: c.lines}
	c.cmd.Stdout, c.cmd.Stderr = lw, c.tail
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start %s process: %v", name, err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait() // also waits for stdout and stderr to be copied
		lw.close()
		close(c.done)
	}()
	return c, nil
}

// exited describes a child that ended before it was asked to.
func (c *child) exited() error {
	msg := fmt.Sprintf("the %s process exited", c.name)
	if c.err != nil {
		msg += " (" + c.err.Error() + ")"
	}
	if l := c.tail.lastLine(); l != "" {
		msg += ": " + l
	}
	return errors.New(msg)
}

// readLine returns the child's next stdout line.
func (c *child) readLine(timeout time.Duration, what string) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			return "", c.exited()
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("the %s process gave no %s within %v", c.name, what, timeout)
	}
}

// ready waits for "ready ADDRESS" and returns the address.
func (c *child) ready(timeout time.Duration) (string, error) {
	l, err := c.readLine(timeout, "ready line")
	if err != nil {
		return "", err
	}
	addr, ok := strings.CutPrefix(l, "ready ")
	if !ok {
		return "", fmt.Errorf("the %s process said %q, want \"ready ADDRESS\"", c.name, l)
	}
	return addr, nil
}

func (c *child) command(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		select {
		case <-c.done:
			return c.exited()
		case <-time.After(time.Second):
		}
		return fmt.Errorf("the %s process does not take commands: %v", c.name, err)
	}
	return nil
}

// stop closes the child's stdin (it exits on EOF), gives it a moment, then
// kills it. Safe to call more than once.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(2 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// lineWriter turns a child's stdout into lines on a channel.
type lineWriter struct {
	mu     sync.Mutex
	buf    []byte
	ch     chan string
	closed bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		if !w.closed {
			select {
			case w.ch <- line:
			default: // nobody reads that many lines: drop
			}
		}
	}
	return len(p), nil
}

func (w *lineWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

// tailWriter keeps the last 4 KiB written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf); n > 4096 {
		t.buf = append(t.buf[:0], t.buf[n-4096:]...)
	}
	return len(p), nil
}

func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// childCommands reads commands from stdin and hands each to do until "stop"
// or EOF (the parent is gone).
func childCommands(do func(cmd string)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd := strings.TrimSpace(sc.Text())
		if cmd == "stop" {
			return
		}
		do(cmd)
	}
}

func benchChild(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(benchChildArg + " needs a kind")}
	}
	switch args[0] {
	case "wire-sender":
		return childWireSender(args[1:], stdout, stderr)
	case "weights-runner":
		return childWeightsRunner(args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("%s: unknown kind %q", benchChildArg, args[0])}
}

// childFlags parses a child's flags (written by the parent; errors are bugs).
func childFlags(name string, args []string, stderr io.Writer, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	define(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// ---------------------------------------------------------------------------
// bench wire

// wireResult is the JSON line of 'bench wire'.
type wireResult struct {
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

func benchWire(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet bench wire", flag.ContinueOnError)
	seconds := fs.Float64("seconds", 10, "measured `seconds` (after a warm-up of min(1 s, seconds/4))")
	batch := fs.Int("batch", 128, "transitions per experience message (the runner's send_batch)")
	window := fs.Int("window", 0, "credit window in transitions (the runner's credit_window; 0: 8 batches)")
	distinct := fs.Int("batches", 256, "distinct batches built from the CartPole stream and resent round-robin")
	senders := fs.Int("senders", 1, "runner actors in the sender process, each with its own credit window (a node's runners)")
	seed := fs.Uint64("seed", 1, "seed of the CartPole stream")
	if err := parseFlags(fs, benchWireHelp, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case !(*seconds > 0) || *seconds > 3600:
		return usageError{fmt.Errorf("--seconds %v: must be in (0, 3600]", *seconds)}
	case *batch < 1 || *batch > 65536:
		return usageError{fmt.Errorf("--batch %d: must be in 1..65536", *batch)}
	case *distinct < 1 || *distinct > 4096:
		return usageError{fmt.Errorf("--batches %d: must be in 1..4096", *distinct)}
	case *senders < 1 || *senders > 64:
		return usageError{fmt.Errorf("--senders %d: must be in 1..64", *senders)}
	}
	if *window == 0 {
		*window = 8 * *batch
	}
	if *window < *batch {
		return usageError{fmt.Errorf("--window %d: must be >= --batch (%d)", *window, *batch)}
	}
	sig, stopSig := interrupted()
	defer stopSig()

	// This process is the replay: the real replay actor on a remote-enabled
	// system, its sample:insert limiter off (there is no learner), so every
	// batch's credit goes back at once, as when the learner keeps up.
	// The replay's log stays out of the output: a child that fails is
	// reported by the error it printed, not by the connection it broke.
	sys, rem, logs, err := benchSystem(io.Discard)
	if err != nil {
		return err
	}
	cfg := actors.DefaultConfig()
	cfg.SamplesPerInsert = 0
	cfg.SendBatch, cfg.CreditWindow = *batch, *window
	cfg.OutboxLimit = max(cfg.OutboxLimit, *batch)
	cfg.MinReplaySize = max(cfg.MinReplaySize, cfg.BatchSize)
	node, err := actors.StartNode(actors.NodeOptions{Name: "bench-replay", Roles: []string{actors.RoleReplay}, EnvID: envs.CartPoleID, Seed: 1, Config: cfg, System: sys})
	if err != nil {
		rem.Shutdown(false)
		return err
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
		"--replay", sys.Address(), "--batch", strconv.Itoa(*batch), "--window", strconv.Itoa(*window),
		"--batches", strconv.Itoa(*distinct), "--seed", strconv.FormatUint(*seed, 10), "--senders", strconv.Itoa(*senders))
	if err != nil {
		return err
	}
	if _, err := sender.ready(60 * time.Second); err != nil {
		return err
	}
	// Wait for the stream to start, then warm up.
	deadline := time.Now().Add(15 * time.Second)
	for node.Metrics.Status().ReplayInserted == 0 {
		if time.Now().After(deadline) {
			return errors.New("no experience reached the replay within 15 s")
		}
		select {
		case <-sender.done:
			return sender.exited()
		case <-sig:
			return errInterrupted
		case <-time.After(5 * time.Millisecond):
		}
	}
	warm := min(time.Second, time.Duration(*seconds*float64(time.Second)/4))
	select {
	case <-sender.done:
		return sender.exited()
	case <-sig:
		return errInterrupted
	case <-time.After(warm):
	}

	type snap struct {
		at              time.Time
		inserted, bytes float64
		cpu             float64
		s               wireSenderStats
	}
	take := func() (snap, error) {
		if err := sender.command("stats"); err != nil {
			return snap{}, err
		}
		l, err := sender.readLine(10*time.Second, "stats")
		if err != nil {
			return snap{}, err
		}
		var s snap
		if err := json.Unmarshal([]byte(l), &s.s); err != nil {
			return snap{}, fmt.Errorf("the sender process said %q: %v", l, err)
		}
		st := node.Metrics.Status()
		s.at, s.inserted, s.cpu = time.Now(), float64(st.ReplayInserted), cpuSeconds()
		s.bytes = counterValue(node.Metrics, "qfleet_wire_bytes_total", "flow", "experience", "direction", "received")
		return s, nil
	}
	a, err := take()
	if err != nil {
		return err
	}
	select {
	case <-sender.done:
		return sender.exited()
	case <-sig:
		return errInterrupted
	case <-time.After(time.Duration(*seconds * float64(time.Second))):
	}
	b, err := take()
	if err != nil {
		return err
	}
	st := node.Metrics.Status()
	if st.ExperienceRejected > 0 {
		return fmt.Errorf("the replay rejected %d transitions", st.ExperienceRejected)
	}
	wall := b.at.Sub(a.at).Seconds()
	n := b.inserted - a.inserted
	if n <= 0 {
		return errors.New("no transitions reached the replay during the measurement")
	}
	packed := float64(b.s.Packed - a.s.Packed)
	r := wireResult{
		Bench: "wire", Seconds: round(wall, 3), Batch: *batch, Senders: *senders, Window: *window,
		Transitions:           uint64(n),
		TransitionsPerSecond:  round(n/wall, 0),
		MessagesPerSecond:     round(packed/wall, 0),
		BytesPerTransition:    round((b.bytes-a.bytes)/n, 2),
		WireMBPerSecond:       round((b.bytes-a.bytes)/wall/1e6, 2),
		PackMicrosPerBatch:    round(float64(b.s.PackNanos-a.s.PackNanos)/1e3/max(packed, 1), 1),
		SenderCPUCores:        round((b.s.CPU-a.s.CPU)/wall, 2),
		ReceiverCPUCores:      round((b.cpu-a.cpu)/wall, 2),
		SenderCreditStalledPc: round(100*float64(b.s.StalledNanos-a.s.StalledNanos)/1e9/wall/float64(*senders), 1),
		Rejected:              st.ExperienceRejected,
	}
	fmt.Fprintf(stdout, "bench wire: CartPole-v1 experience, runner process → replay process over protoactor remote on loopback\n")
	fmt.Fprintf(stdout, "  %d runner actor(s), batch %d transitions, credit window %d each, codec frames+float16+zstd (wire.DefaultOptions), packed in the loop\n", r.Senders, r.Batch, r.Window)
	fmt.Fprintf(stdout, "  %.0f transitions inserted in %.2f s: %.0f transitions/s (target >= 500000), %.0f messages/s\n", n, wall, r.TransitionsPerSecond, r.MessagesPerSecond)
	fmt.Fprintf(stdout, "  wire: %.2f bytes/transition (target <= 12; raw float32 obs+next_obs alone is 32), %.2f MB/s\n", r.BytesPerTransition, r.WireMBPerSecond)
	fmt.Fprintf(stdout, "  CPU: sender %.2f cores (packing %.1f µs/batch), replay %.2f cores, on %d cores shared with other load; a sender waited for credit %.1f%% of the time\n",
		r.SenderCPUCores, r.PackMicrosPerBatch, r.ReceiverCPUCores, numCPU(), r.SenderCreditStalledPc)
	return printJSON(stdout, r)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// wireSenderStats are the sender process's cumulative counters.
type wireSenderStats struct {
	Packed       uint64  `json:"packed"`
	PackNanos    uint64  `json:"pack_ns"`
	SentBytes    uint64  `json:"sent_bytes"`
	Sent         uint64  `json:"sent"`
	StalledNanos uint64  `json:"stalled_ns"`
	CPU          float64 `json:"cpu_s"`
}

// wireSender sends experience as runner.trySend does: while it has credit it
// takes the next batch, stamps seq, weights version and reply_to, packs it
// and sends it to the replay; a Credit adds to its credit.
type wireSender struct {
	replay  *actor.PID
	batches []*messages.ExperienceBatch
	window  int
	stats   *wireCounters

	credits int
	next    int
	seq     uint64
	stalled time.Time // when the credit ran out; zero while sending
}

// wireCounters are shared by a process's senders.
type wireCounters struct {
	packed, packNanos, sentBytes, sent, stalledNanos atomic.Uint64
	fail                                             chan error
}

func (s *wireSender) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.credits = s.window
		s.trySend(ctx)
	case *messages.Credit:
		s.credits += int(msg.GetTransitions())
		if !s.stalled.IsZero() {
			s.stats.stalledNanos.Add(uint64(time.Since(s.stalled)))
			s.stalled = time.Time{}
		}
		s.trySend(ctx)
	}
}

func (s *wireSender) trySend(ctx actor.Context) {
	self := actors.RefOf(ctx.Self())
	for s.credits > 0 {
		b := s.batches[s.next]
		s.next = (s.next + 1) % len(s.batches)
		s.seq++
		b.Seq, b.WeightsVersion, b.ReplyTo = s.seq, 7, self
		t := time.Now()
		p, err := wire.PackExperience(b, wire.DefaultOptions)
		if err != nil {
			select {
			case s.stats.fail <- err:
			default:
			}
			return
		}
		s.stats.packNanos.Add(uint64(time.Since(t)))
		s.stats.packed.Add(1)
		s.credits -= int(b.Count)
		s.stats.sent.Add(uint64(b.Count))
		s.stats.sentBytes.Add(uint64(proto.Size(p))) // the runner counts its wire bytes too
		ctx.Send(s.replay, p)
	}
	s.stalled = time.Now()
}

func childWireSender(args []string, stdout, stderr io.Writer) error {
	var replayAddr string
	var batch, window, distinct, senders int
	var seed uint64
	if err := childFlags("wire-sender", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&replayAddr, "replay", "", "")
		fs.IntVar(&batch, "batch", 128, "")
		fs.IntVar(&window, "window", 1024, "")
		fs.IntVar(&distinct, "batches", 256, "")
		fs.IntVar(&senders, "senders", 1, "")
		fs.Uint64Var(&seed, "seed", 1, "")
	}); err != nil {
		return err
	}
	batches, err := cartPoleBatches(batch, distinct, seed)
	if err != nil {
		return err
	}
	sys, rem, logs, err := benchSystem(stderr)
	if err != nil {
		return err
	}
	defer func() { logs.mute(); rem.Shutdown(false) }()
	st := &wireCounters{fail: make(chan error, 1)}
	for i := range senders {
		// Each sender stamps its own copies; they start at different batches.
		own := make([]*messages.ExperienceBatch, len(batches))
		for j := range own {
			own[j] = proto.Clone(batches[(j+i*len(batches)/senders)%len(batches)]).(*messages.ExperienceBatch)
			own[j].Runner = fmt.Sprintf("bench/runner-%d", i)
		}
		s := &wireSender{replay: actor.NewPID(replayAddr, actors.ReplayName), batches: own, window: window, stats: st}
		pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return s }), fmt.Sprintf("bench/runner-%d", i))
		if err != nil {
			return err
		}
		defer sys.Root.Stop(pid)
	}
	fmt.Fprintf(stdout, "ready %s\n", sys.Address())
	var failed error
	childCommands(func(cmd string) {
		select {
		case failed = <-st.fail:
		default:
		}
		if cmd == "stats" {
			if failed != nil {
				fmt.Fprintf(stdout, "error %v\n", failed)
				return
			}
			_ = printJSON(stdout, wireSenderStats{
				Packed: st.packed.Load(), PackNanos: st.packNanos.Load(), SentBytes: st.sentBytes.Load(),
				Sent: st.sent.Load(), StalledNanos: st.stalledNanos.Load(), CPU: cpuSeconds(),
			})
		}
	})
	return failed
}

// cartPoleBatches runs CartPole-v1 with uniformly random actions through
// 3-step transitions (γ 0.99) and cuts them into batches as a runner does: a
// batch is sent once it holds at least size transitions (an episode end can
// add a few more).
func cartPoleBatches(size, count int, seed uint64) ([]*messages.ExperienceBatch, error) {
	env, err := envs.Make(envs.CartPoleID)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x62656e6368))
	d := env.Spec().ObsSize()
	newBatch := func() *messages.ExperienceBatch {
		n := size + 3
		return &messages.ExperienceBatch{
			Runner: "bench/runner-0", ObsSize: uint32(d),
			Observations: make([]float32, 0, n*d), NextObservations: make([]float32, 0, n*d),
			Actions: make([]uint32, 0, n), Rewards: make([]float32, 0, n), Discounts: make([]float32, 0, n),
		}
	}
	out := make([]*messages.ExperienceBatch, 0, count)
	b := newBatch()
	acc := actors.NewNStepAccumulator(3, 0.99)
	emit := func(obs []float32, action int, reward, discount float64, next []float32) {
		b.Observations = append(b.Observations, obs...)
		b.NextObservations = append(b.NextObservations, next...)
		b.Actions = append(b.Actions, uint32(action))
		b.Rewards = append(b.Rewards, float32(reward))
		b.Discounts = append(b.Discounts, float32(discount))
		b.Count++
	}
	obs := slices.Clone(env.Reset(rng.Int64()))
	for len(out) < count {
		a := rng.IntN(env.Spec().NumActions)
		next, reward, terminated, truncated := env.Step(a)
		acc.Add(obs, a, reward, next, terminated, truncated, emit)
		if terminated || truncated {
			obs = append(obs[:0], env.Reset(rng.Int64())...)
		} else {
			obs = append(obs[:0], next...)
		}
		if int(b.Count) >= size {
			out = append(out, b)
			b = newBatch()
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// bench weights

// weightsResult is the JSON line of 'bench weights'.
type weightsResult struct {
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
	// a round trip), the final chunk's decode on a runner.
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
	decode     time.Duration // spent in the WeightsAssembler.Add that completed it
}

func benchWeights(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet bench weights", flag.ContinueOnError)
	runners := fs.Int("runners", 4, "runner `processes`")
	params := fs.Int("params", cartPoleNet().NumParams(), "parameters per weights version (default: the CartPole-v1 4-64-64-2 network; e.g. 1000000)")
	rounds := fs.Int("rounds", 20, "measured versions, after the first (whole) one")
	chunk := fs.Int("chunk-bytes", 32<<10, "weights chunk size (the broadcaster's weights_chunk_bytes)")
	delta := fs.Bool("delta", true, "send versions after the first as deltas against the runner's last (weights_delta)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up when a version has not reached every runner after this long")
	seed := fs.Uint64("seed", 1, "seed of the weights")
	if err := parseFlags(fs, benchWeightsHelp, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case *runners < 1 || *runners > 64:
		return usageError{fmt.Errorf("--runners %d: must be in 1..64", *runners)}
	case *params < 1 || *params > wire.MaxFloats:
		return usageError{fmt.Errorf("--params %d: must be in 1..%d", *params, wire.MaxFloats)}
	case *rounds < 1 || *rounds > 10000:
		return usageError{fmt.Errorf("--rounds %d: must be in 1..10000", *rounds)}
	case *chunk < 1024 || *chunk > cluster.MaxMessageBytes-4096:
		return usageError{fmt.Errorf("--chunk-bytes %d: must be in 1024..%d", *chunk, cluster.MaxMessageBytes-4096)}
	case *timeout <= 0:
		return usageError{fmt.Errorf("--timeout %v: must be > 0", *timeout)}
	}
	sig, stopSig := interrupted()
	defer stopSig()

	// This process is the learner's node: the real broadcaster actor on a
	// remote-enabled system, plus a collector for the runners' reports.
	sys, rem, logs, err := benchSystem(io.Discard) // as in benchWire
	if err != nil {
		return err
	}
	cfg := actors.DefaultConfig()
	cfg.WeightsChunkBytes, cfg.WeightsDelta = *chunk, *delta
	node, err := actors.StartNode(actors.NodeOptions{Name: "bench-broadcaster", Roles: []string{actors.RoleBroadcaster}, EnvID: envs.CartPoleID, Seed: 1, Config: cfg, System: sys})
	if err != nil {
		rem.Shutdown(false)
		return err
	}
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
	reports := make(chan actingReport, 4096)
	collector, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.RunnerProgress); ok {
			reports <- actingReport{runner: m.GetRunner(), version: m.GetWeightsVersion(), at: time.Now(),
				firstChunk: time.Unix(0, int64(m.GetEnvSteps())), chunks: m.GetExperienceSent(), decode: time.Duration(m.GetExperienceLost())}
		}
	}), "bench-collector")
	if err != nil {
		return err
	}
	exited := make(chan *child, *runners)
	for i := range *runners {
		c, err := startChild(fmt.Sprintf("runner-%d", i), "weights-runner",
			"--broadcaster", sys.Address(), "--collector", collector.Id, "--name", fmt.Sprintf("runner-%d", i), "--params", strconv.Itoa(*params))
		if err != nil {
			return err
		}
		children = append(children, c)
		go func() { <-c.done; exited <- c }()
	}
	// Every runner reports version 0 once it has subscribed.
	wait := func(version uint64, timeout time.Duration) ([]actingReport, error) {
		got := map[string]bool{}
		var last []actingReport
		t := time.NewTimer(timeout)
		defer t.Stop()
		for len(got) < *runners {
			select {
			case r := <-reports:
				if r.version >= version && !got[r.runner] {
					got[r.runner], last = true, append(last, r)
				}
			case c := <-exited:
				return last, c.exited()
			case <-sig:
				return last, errInterrupted
			case <-t.C:
				var missing []string
				for i := range *runners {
					if n := fmt.Sprintf("runner-%d", i); !got[n] {
						missing = append(missing, n)
					}
				}
				return last, fmt.Errorf("version %d did not reach %s within %v", version, strings.Join(missing, ", "), timeout)
			}
		}
		return last, nil
	}
	if _, err := wait(0, 60*time.Second); err != nil {
		return err
	}
	select { // let the broadcaster take the subscriptions that came with the reports
	case <-time.After(100 * time.Millisecond):
	case <-sig:
		return errInterrupted
	}

	rng := rand.New(rand.NewPCG(*seed, 0x77656967687473))
	w := &messages.Weights{Version: 1, Term: 1, Params: initialParams(*params, rng), LearnerUpdates: 0}
	sent := func() float64 {
		return counterValue(node.Metrics, "qfleet_wire_bytes_total", "flow", "weights", "direction", "sent")
	}
	var lat, bytesPer, chunksPer, firstChunk, perChunk, decode []float64
	var firstMs, firstBytes float64
	bpid := actor.NewPID(sys.Address(), actors.BroadcasterName)
	for v := uint64(1); v <= uint64(*rounds)+1; v++ {
		if v > 1 {
			w = nextWeights(w, rng) // the learner has them ready: not timed
		}
		b0 := sent()
		t0 := time.Now()
		sys.Root.Send(bpid, w)
		reps, err := wait(v, *timeout)
		if err != nil {
			return err
		}
		// reps arrive in order: the last one ends the round. Diagnostics:
		// the latest first chunk (the broadcaster's packing and first send),
		// the chunk round trip, the final decode.
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
		per := (sent() - b0) / float64(*runners)
		if v == 1 {
			firstMs, firstBytes = ms, per
			continue
		}
		lat, bytesPer, firstChunk = append(lat, ms), append(bytesPer, per), append(firstChunk, fc)
		chunksPer = append(chunksPer, math.Ceil(per/float64(*chunk)))
	}
	r := weightsResult{
		Bench: "weights", Runners: *runners, Params: *params, Rounds: *rounds, Delta: *delta, ChunkBytes: *chunk,
		FirstFullMillis: round(firstMs, 2), FirstFullBytes: round(firstBytes, 0),
		MedianMillis: round(quantile(lat, 0.5), 2), P90Millis: round(quantile(lat, 0.9), 2),
		MinMillis: round(slices.Min(lat), 2), MaxMillis: round(slices.Max(lat), 2),
		BytesPerBroadcast: round(quantile(bytesPer, 0.5), 0), ChunksPerBroadcast: quantile(chunksPer, 0.5),
		FirstChunkMillis: round(quantile(firstChunk, 0.5), 2), ChunkRoundTripMillis: round(quantile(perChunk, 0.5), 3),
		DecodeMillis: round(quantile(decode, 0.5), 2),
	}
	what := fmt.Sprintf("%d params", *params)
	if *params == cartPoleNet().NumParams() {
		what = fmt.Sprintf("the CartPole network (4-64-64-2, %d params)", *params)
	}
	mode := "deltas against the previous version"
	if !*delta {
		mode = "whole (delta off)"
	}
	fmt.Fprintf(stdout, "bench weights: %s, broadcaster process → %d runner processes over protoactor remote on loopback\n", what, *runners)
	fmt.Fprintf(stdout, "  zstd chunks of %d bytes, one in flight per runner; publish → every runner acting on it\n", *chunk)
	fmt.Fprintf(stdout, "  first version (whole, no delta base yet): %.2f ms, %.0f bytes per runner\n", r.FirstFullMillis, r.FirstFullBytes)
	fmt.Fprintf(stdout, "  %d versions sent as %s: median %.2f ms, p90 %.2f ms (min %.2f, max %.2f); %.0f bytes (%.0f chunks) per runner\n",
		*rounds, mode, r.MedianMillis, r.P90Millis, r.MinMillis, r.MaxMillis, r.BytesPerBroadcast, r.ChunksPerBroadcast)
	fmt.Fprintf(stdout, "  where it goes (medians): %.2f ms until every runner has its first chunk (broadcaster packing), %.3f ms per further chunk (round trip), %.2f ms final decode\n",
		r.FirstChunkMillis, r.ChunkRoundTripMillis, r.DecodeMillis)
	if *params >= 1_000_000 {
		fmt.Fprintf(stdout, "  target for 1M parameters: <= 100 ms\n")
	}
	return printJSON(stdout, r)
}

// quantile is the nearest-rank q-quantile of xs (0 for none).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func cartPoleNet() nets.Spec {
	return actors.NetSpec(envs.NewCartPole(), actors.DefaultConfig())
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

// weightsRunner is the runner side of the weights flow, as runner.Receive
// handles it: assemble chunks, take the weights (the CartPole network's
// forward pass, or a parameter copy of the same size), ack every chunk to
// the broadcaster with the version acted on. It also reports that version
// to the bench's collector, the measured event.
type weightsRunner struct {
	name                   string
	broadcaster, collector *actor.PID

	asm     wire.WeightsAssembler
	policy  *nets.Forward
	params  []float32
	version weightsVersion
	fail    chan error

	// Diagnostics of the version being assembled, reported with it.
	cur        weightsVersion
	firstChunk time.Time
	chunks     uint64
}

type weightsVersion struct{ term, version uint64 }

func (r *weightsRunner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(r.broadcaster, &messages.SubscribeWeights{Runner: actors.RefOf(ctx.Self())})
		ctx.Send(r.collector, &messages.RunnerProgress{Runner: r.name})
	case *messages.WeightsChunk:
		if k := (weightsVersion{msg.GetTerm(), msg.GetVersion()}); k != r.cur {
			r.cur, r.firstChunk, r.chunks = k, time.Now(), 0
		}
		r.chunks++
		t := time.Now()
		w, err := r.asm.Add(msg)
		decode := time.Since(t)
		acted := false
		if err != nil {
			select {
			case r.fail <- fmt.Errorf("%s: %v", r.name, err):
			default:
			}
		} else if w != nil {
			acted = r.take(w)
		}
		ctx.Send(r.broadcaster, &messages.WeightsChunkAck{Runner: actors.RefOf(ctx.Self()), Version: msg.GetVersion(), Term: msg.GetTerm(), Index: msg.GetIndex(),
			ActingVersion: r.version.version, ActingTerm: r.version.term})
		if acted {
			// A bench-only use of RunnerProgress's counters: env_steps carries
			// the first chunk's arrival (Unix ns, same host clock), experience_sent
			// the chunks, experience_lost the final decode (ns).
			ctx.Send(r.collector, &messages.RunnerProgress{Runner: r.name, WeightsVersion: r.version.version, WeightsTerm: r.version.term,
				EnvSteps: uint64(r.firstChunk.UnixNano()), ExperienceSent: r.chunks, ExperienceLost: uint64(decode)})
		}
	}
}

func (r *weightsRunner) take(w *messages.Weights) bool {
	k := weightsVersion{w.GetTerm(), w.GetVersion()}
	if k.term < r.version.term || (k.term == r.version.term && k.version <= r.version.version) {
		return false
	}
	if r.policy != nil {
		if err := r.policy.SetParams(w.GetParams()); err != nil {
			select {
			case r.fail <- fmt.Errorf("%s: %v", r.name, err):
			default:
			}
			return false
		}
		r.policy.Greedy([]float32{0.01, -0.02, 0.03, 0.04}) // acts on them
	} else {
		r.params = append(r.params[:0], w.GetParams()...)
	}
	r.version = k
	return true
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
	sys, rem, logs, err := benchSystem(stderr)
	if err != nil {
		return err
	}
	defer func() { logs.mute(); rem.Shutdown(false) }()
	r := &weightsRunner{name: name, broadcaster: actor.NewPID(bAddr, actors.BroadcasterName), collector: actor.NewPID(bAddr, collectorID), fail: make(chan error, 1)}
	if sp := cartPoleNet(); params == sp.NumParams() {
		r.policy = nets.NewForward(sp)
	}
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

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, e1 := strconv.ParseFloat(f[0], 64)
			p, e2 := strconv.ParseFloat(f[1], 64)
			if e1 == nil && e2 == nil && p > 0 {
				n = int(math.Ceil(q / p))
			}
		}
	}
	if c := runtime.NumCPU(); n == 0 || c < n {
		n = c
	}
	return n
}
