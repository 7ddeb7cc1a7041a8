package cli

// qfleet bench: the cross-host flows measured between real processes
// (internal/bench); this file has its flags and help.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/qfleet/qfleet/internal/bench"
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
      distinct batches) and sent round-robin through the runner's own
      experience sender (actors.ExperienceSender): it stamps and packs every
      batch (frames, float16, zstd) inside the measured loop and sends only
      under the credit window (a batch per credit granted). The
      receiver is the real replay actor (actors.StartNode, role replay, its
      rate limiter off): it unpacks, checks, inserts into its table and
      returns the credit. Reports transitions/s inserted, wire bytes per
      transition (proto.Size of PackedExperience / count) and CPU use.

  qfleet bench weights [--runners 4] [--params 4610|1000000] [--rounds 20]
      A broadcaster process (the real broadcaster actor: 32 KiB zstd chunks,
      one chunk in flight per runner, acked) and --runners runner processes
      (each takes the weights with the runner's own weights client,
      actors.WeightsClient, which assembles the chunks and acks each with the
      version acting; it acts on them and reports the version it acts on).
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
	case bench.ChildArg:
		return bench.Child(args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown benchmark %q (wire or weights)", args[0])}
}

// interruptible is a context cancelled by SIGINT or SIGTERM, so that a
// benchmark ends through its cleanup (its child processes stopped).
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func benchWire(args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultWireOptions()
	fs := flag.NewFlagSet("qfleet bench wire", flag.ContinueOnError)
	fs.Float64Var(&o.Seconds, "seconds", o.Seconds, "measured `seconds` (after a warm-up of min(1 s, seconds/4))")
	fs.IntVar(&o.Batch, "batch", o.Batch, "transitions per experience message (the runner's send_batch)")
	fs.IntVar(&o.Window, "window", o.Window, "credit window in transitions (the runner's credit_window; 0: 8 batches)")
	fs.IntVar(&o.Batches, "batches", o.Batches, "distinct batches built from the CartPole stream and resent round-robin")
	fs.IntVar(&o.Senders, "senders", o.Senders, "runner actors in the sender process, each with its own credit window (a node's runners)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the CartPole stream")
	if err := parseFlags(fs, benchWireHelp, args, stdout, stderr); err != nil {
		return err
	}
	if err := o.Check(); err != nil {
		return usageError{err}
	}
	ctx, stop := interruptible()
	defer stop()
	r, err := bench.Wire(ctx, o)
	if err != nil {
		return err
	}
	return r.Report(stdout)
}

func benchWeights(args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultWeightsOptions()
	fs := flag.NewFlagSet("qfleet bench weights", flag.ContinueOnError)
	fs.IntVar(&o.Runners, "runners", o.Runners, "runner `processes`")
	fs.IntVar(&o.Params, "params", o.Params, "parameters per weights version (default: the CartPole-v1 4-64-64-2 network; e.g. 1000000)")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "measured versions, after the first (whole) one")
	fs.IntVar(&o.ChunkBytes, "chunk-bytes", o.ChunkBytes, "weights chunk size (the broadcaster's weights_chunk_bytes)")
	fs.BoolVar(&o.Delta, "delta", o.Delta, "send versions after the first as deltas against the runner's last (weights_delta)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up when a version has not reached every runner after this long")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the weights")
	if err := parseFlags(fs, benchWeightsHelp, args, stdout, stderr); err != nil {
		return err
	}
	if err := o.Check(); err != nil {
		return usageError{err}
	}
	ctx, stop := interruptible()
	defer stop()
	r, err := bench.Weights(ctx, o)
	if err != nil {
		return err
	}
	return r.Report(stdout)
}
