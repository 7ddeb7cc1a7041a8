package cli

// 'qfleet sweep SPEC.yaml': a hyper-parameter search (grid or random), each
// trial an isolated 'qfleet dev' process, locally or spread over the nodes
// of a cluster that run the trials role. See sweepHelp; the sweep itself is
// package cluster/sweep.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/qfleet/qfleet/cluster/sweep"
)

const sweepHelp = `Usage: qfleet sweep SPEC.yaml [flags]

Runs a hyper-parameter search: every trial of SPEC.yaml is one 'qfleet dev'
run, in a child process of its own (a trial that crashes takes nothing else
down). Without --join the trials run on this machine, --parallel at a time.
With --join HOST:PORT this command joins a qfleet cluster (same flags as
'qfleet node') and hands the trials to the nodes started with the trials
role, --slots at a time per node:

  qfleet node --name B --roles trials --gossip-addr 10.0.0.2:7946 \
    --remote-addr 10.0.0.2:7947 --join 10.0.0.1:7946 ...
  qfleet sweep lr.yaml --join 10.0.0.1:7946 --gossip-addr 10.0.0.9:7948 \
    --remote-addr 10.0.0.9:7949 ...

A node that dies or leaves mid-trial (or stops sending heartbeats for
--heartbeat-timeout) has its trial run again on another node; the first
result of a trial is its result, so each trial is recorded once.

SPEC.yaml:

  name: lr-nstep            # default: the file's name
  env: CartPole-v1
  base:                     # config keys over the env's defaults ('qfleet
    max_steps: 100000       # config print' lists them), or a config file path
    epsilon_decay_steps: 5000
  method: grid              # grid: every combination; random: 'trials' draws
  params:                   # config key: [values]  (grid or random)
    learning_rate: [0.0005, 0.001]
    n_step: [1, 3]
    hidden: [[64, 64], [128]]
  seeds: [1, 2]             # every point runs once per seed (default [1])
  target_return: 475        # stop rules of every trial (default: the env's
  max_steps: 100000         #   threshold, base's max_steps); max_time stops
  max_time: 10m             #   a trial as Ctrl-C would, its result kept
  scheduler:                # optional: ASHA, successive halving: at rungs
    name: asha              #   of min_steps·eta^i env steps only the top
    min_steps: 20000        #   1/eta of the mean100s recorded there go on
    eta: 3                  #   (the others: status pruned). mode: promote
    mode: promote           #   (default) pauses every trial at each rung
                            #   with a checkpoint and continues the best;
                            #   stop lets trials run on and stops those
                            #   below the top at a rung
  # scheduler: {name: pbt, perturb_every: 10000, quantile: 0.25,
  #   resample_probability: 0.25, replay: false}: population based training.
  #   Every perturb_every env steps of a trial, the bottom quantile (by
  #   mean100) continue from the checkpoint of a top trial with its params
  #   perturbed (x0.8/x1.2, one place along a list) or resampled; rows keep
  #   each trial's lineage

  # method: random draws 'trials' points with 'seed' (default 1):
  #   trials: 20
  #   seed: 7
  #   params:
  #     learning_rate: {log_uniform: [0.0001, 0.003]}
  #     gamma: {uniform: [0.95, 0.999]}
  #     n_step: {int_uniform: [1, 5]}     # both bounds included
  #     batch_size: {values: [32, 64, 128]}  # (a plain list is the same)

Every trial's config is checked as 'qfleet dev --config' checks a config
before anything runs: an invalid value is refused with the key it breaks.
Trial ids (t<index>-<hash>) and keys (a hash of the trial's full config)
come from the spec alone, so running the same command again resumes: the
trials recorded as ok in results.jsonl are skipped, failed ones run again.

Output, in --out (default sweeps/<name>):
  results.jsonl  one JSON row per ended trial: trial, key, params, seed,
                 node, status (ok, failed, pruned, or paused: at an ASHA
                 rung, its checkpoint in trials/<id>/pause), segments,
                 solved, final_mean100, best_mean100 (highest in its
                 scalars), env_steps, wall_seconds, attempt, run_dir (on
                 its node), local_dir
  results.tsv    the same as a table, one row per trial, in trial order
  trials/<id>/   each trial's run directory (config.yaml, scalars.jsonl,
                 summary.json, trial.log); for trials run on other nodes,
                 the files they sent back ('qfleet plot' reads both)
  spec.yaml      the spec of the latest run
At the end a Markdown table of the trials, best mean100 first, goes to
stdout; a line per trial start and end goes to stderr. The exit code is 1
if a trial failed, 2 for a bad spec or flag.

Flags:
`

func runSweep(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet sweep", flag.ContinueOnError)
	host, _ := os.Hostname()
	var (
		out       = fs.String("out", "", "output `directory` (default sweeps/<spec name>)")
		parallel  = fs.Int("parallel", 1, "without --join: trials run at a time on this machine")
		slots     = fs.Int("slots", 1, "with --join: trials at a time per node (each node also caps it with its --trial-slots)")
		hbTimeout = fs.Duration("heartbeat-timeout", sweep.DefaultHeartbeatTimeout, "with --join: a running trial whose node is silent this long runs again elsewhere")
		dryRun    = fs.Bool("dry-run", false, "list the trials (and which are finished) and exit")
		progEvery = fs.Duration("progress", 30*time.Second, "interval of a line on the running trials (env steps, mean100) on stderr; 0: none")
		logLevel  = fs.String("log-level", "warn", "debug, info, warn, error")
	)
	cfl := addClusterFlags(fs, "", "0.0.0.0:7948", "0.0.0.0:7949")
	fs.Lookup("name").Usage = "`name` of this sweep in the cluster (default sweep-<host>), or, without --join, the node name its results show (default <host>)"
	// The spec may come before or after the flags.
	var specs []string
	rest := args
	for {
		if err := parseFlagsOnly(fs, sweepHelp, rest, stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		specs = append(specs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(specs) != 1 {
		return usageError{fmt.Errorf("want one SPEC.yaml, got %d (see 'qfleet sweep --help')", len(specs))}
	}
	if *parallel < 1 {
		return usageError{fmt.Errorf("--parallel %d: must be >= 1", *parallel)}
	}
	if *slots < 1 {
		return usageError{fmt.Errorf("--slots %d: must be >= 1", *slots)}
	}
	if *progEvery < 0 {
		return usageError{fmt.Errorf("--progress %v: must be >= 0", *progEvery)}
	}
	if *hbTimeout < 3*sweep.HeartbeatEvery {
		return usageError{fmt.Errorf("--heartbeat-timeout %v: must be >= %v (heartbeats come every %v)", *hbTimeout, 3*sweep.HeartbeatEvery, sweep.HeartbeatEvery)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	spec, err := sweep.LoadSpec(specs[0])
	if err != nil {
		return usageError{err}
	}
	// Expanded here, so that a bad trial is told before the cluster flags.
	trials, err := spec.Expand()
	if err != nil {
		return usageError{err}
	}
	o := sweep.Options{Out: *out, Trials: trials, Parallel: *parallel, Slots: *slots, HeartbeatTimeout: *hbTimeout,
		Progress: *progEvery, DryRun: *dryRun, Stdout: stdout, Stderr: stderr, LogLevel: level, Executable: trialExecutable}
	if *cfl.join != "" {
		if *cfl.name == "" {
			*cfl.name = "sweep-" + host
		}
		if o.Cluster, err = cfl.resolve(); err != nil {
			return err
		}
	} else if o.Node = *cfl.name; o.Node == "" {
		o.Node = host
	}
	ctx, stop := signalContext()
	defer stop()
	_, err = sweep.Run(ctx, spec, o)
	return err
}

// trialExecutable is the program sweep trials run ("": this one, which
// dispatches 'dev'). Tests point it at a built qfleet (the test binary is
// not one).
var trialExecutable string

// signalContext is cancelled by the first SIGINT or SIGTERM, with the signal
// as its cause (the sweep's and the node's last lines name it).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			cancel(signalError{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		cancel(nil)
	}
}

// signalError is a signal as the cause of a cancelled context.
type signalError struct{ os.Signal }

func (s signalError) Error() string { return s.String() }
