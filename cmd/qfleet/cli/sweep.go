package cli

// 'qfleet sweep SPEC.yaml': a hyper-parameter search (grid or random), each
// trial an isolated 'qfleet dev' process, locally or spread over the nodes
// of a cluster that run the trials role. See sweepHelp.

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/messages"
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
                 node, status (ok or failed), solved, final_mean100,
                 best_mean100 (highest in its scalars), env_steps,
                 wall_seconds, attempt, run_dir (on its node), local_dir
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

// Sweep timing defaults.
const (
	sweepHeartbeatTimeout = 30 * time.Second
	sweepAcceptTimeout    = 15 * time.Second
)

func runSweep(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet sweep", flag.ContinueOnError)
	host, _ := os.Hostname()
	var (
		out       = fs.String("out", "", "output `directory` (default sweeps/<spec name>)")
		parallel  = fs.Int("parallel", 1, "without --join: trials run at a time on this machine")
		slots     = fs.Int("slots", 1, "with --join: trials at a time per node (each node also caps it with its --trial-slots)")
		hbTimeout = fs.Duration("heartbeat-timeout", sweepHeartbeatTimeout, "with --join: a running trial whose node is silent this long runs again elsewhere")
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
	if *hbTimeout < 3*workerTickEvery {
		return usageError{fmt.Errorf("--heartbeat-timeout %v: must be >= %v (heartbeats come every %v)", *hbTimeout, 3*workerTickEvery, workerTickEvery)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	spec, err := loadSweepSpec(specs[0])
	if err != nil {
		return usageError{err}
	}
	trials, err := spec.expand()
	if err != nil {
		return usageError{err}
	}
	clustered := *cfl.join != ""
	var cs *cluster.NodeConfig
	if clustered {
		if *cfl.name == "" {
			*cfl.name = "sweep-" + host
		}
		if cs, err = cfl.resolve(); err != nil {
			return err
		}
	} else if *cfl.name == "" {
		*cfl.name = host
	}
	if *out == "" {
		*out = filepath.Join("sweeps", spec.Name)
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return usageError{fmt.Errorf("--out: %w", err)}
	}

	// Resume: the trials recorded as ok are done.
	resultsPath := filepath.Join(outDir, sweepResultsFile)
	rows, err := readSweepResults(resultsPath)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	byKey := latestByKey(rows)
	var todo []sweepTrial
	var skipped []string
	for _, t := range trials {
		if r, ok := byKey[t.Key]; ok && r.Status == trialOK {
			skipped = append(skipped, t.ID)
			continue
		}
		todo = append(todo, t)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "sweep %s: %s, %s, %d trial(s), %d finished in %s\n", spec.Name, spec.Env, spec.Method, len(trials), len(skipped), outDir)
		for _, t := range trials {
			state := "to run"
			if slices.Contains(skipped, t.ID) {
				state = "finished"
			}
			fmt.Fprintf(stdout, "%s  seed %d  %s  (%s)\n", t.ID, t.Seed, formatParams(t.Params), state)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Join(outDir, sweepTrialsDir), 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	unlock, err := lockSweepDir(outDir)
	if err != nil {
		return err
	}
	defer unlock()
	if data, err := os.ReadFile(specs[0]); err == nil {
		_ = os.WriteFile(filepath.Join(outDir, "spec.yaml"), data, 0o644)
	}
	fmt.Fprintf(stderr, "sweep %s: %s, %s search, %d trial(s) (%d point(s) × %d seed(s)), results in %s\n",
		spec.Name, spec.Env, spec.Method, len(trials), (len(trials)+len(spec.Seeds)-1)/len(spec.Seeds), len(spec.Seeds), outDir)
	if len(skipped) > 0 {
		fmt.Fprintf(stderr, "sweep %s: resuming: %d of %d trial(s) finished already, skipped: %s\n", spec.Name, len(skipped), len(trials), idList(skipped))
	}
	if len(todo) == 0 {
		return finishSweep(spec, trials, resultsPath, outDir, stdout, stderr)
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", *cfl.name)
	sys := cluster.NewActorSystem(logger)
	rec := &sweepRecorder{path: resultsPath, outDir: outDir, rows: rows, trials: trials}
	copts := coordOptions{Sweep: spec.Name, Trials: todo, Total: len(trials), DoneBefore: len(skipped), Log: stderr,
		Record: rec.record, AcceptTimeout: sweepAcceptTimeout, HeartbeatTimeout: *hbTimeout, Progress: *progEvery}
	var shutdown func()
	if clustered {
		cn, err := startClusterNode(sys, cs, cluster.NodeOptions{Roles: []string{cluster.RoleSweep}, Logger: logger})
		if err != nil {
			return err
		}
		dir := cn.Directory
		copts.Slots = *slots
		copts.Workers = func() []sweepWorker {
			var ws []sweepWorker
			for _, mem := range dir.WithRole(cluster.RoleTrials) {
				ws = append(ws, sweepWorker{Node: mem.Name, PID: actor.NewPID(mem.RemoteAddr, trialWorkerName)})
			}
			return ws
		}
		fmt.Fprintf(stderr, "sweep %s: joined the cluster as %s (remote %s), %d node(s) with the trials role\n",
			spec.Name, cs.Name, sys.Address(), len(dir.WithRole(cluster.RoleTrials)))
		shutdown = func() { cn.Close(true) }
	} else {
		w, err := startTrialWorker(sys, trialWorkerOptions{Node: *cfl.name, Dir: filepath.Join(outDir, sweepTrialsDir), Flat: true,
			Slots: *parallel, Logger: logger})
		if err != nil {
			return err
		}
		copts.Slots = *parallel
		local := []sweepWorker{{Node: *cfl.name, PID: w.pid}}
		copts.Workers = func() []sweepWorker { return local }
		shutdown = w.stop
	}
	coord, err := startCoordinator(sys, copts)
	if err != nil {
		shutdown()
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err = <-coord.Done():
		if err != nil {
			coord.cancel("the sweep failed: " + err.Error())
		} else {
			coord.stop()
		}
	case s := <-sig:
		fmt.Fprintf(stderr, "sweep %s: %v: stopping the running trials\n", spec.Name, s)
		coord.cancel("the sweep was interrupted")
		err = fmt.Errorf("interrupted: run the same command again to resume")
	}
	// Give the cancels a moment on the wire before leaving.
	time.Sleep(200 * time.Millisecond)
	shutdown()
	sys.Shutdown()
	if ferr := finishSweep(spec, trials, resultsPath, outDir, stdout, stderr); err == nil {
		err = ferr
	}
	return err
}

// finishSweep prints the table of the spec's trials and says how it went.
func finishSweep(spec *sweepSpec, trials []sweepTrial, resultsPath, outDir string, stdout, stderr io.Writer) error {
	rows, err := readSweepResults(resultsPath)
	if err != nil {
		return err
	}
	table := tableRows(trials, latestByKey(rows))
	if len(table) > 0 {
		fmt.Fprintf(stdout, "\nSweep %s (%s, %s): %d of %d trial(s), best mean100 first\n\n%s", spec.Name, spec.Env, spec.Method,
			len(table), len(trials), markdownTable(table))
	}
	var failed []string
	for _, r := range table {
		if r.Status != trialOK {
			failed = append(failed, r.Trial)
		}
	}
	fmt.Fprintf(stderr, "sweep %s: %d of %d trial(s) recorded, %d failed; table in %s\n", spec.Name, len(table), len(trials),
		len(failed), filepath.Join(outDir, sweepTableFile))
	if len(failed) > 0 {
		return fmt.Errorf("%d trial(s) failed (%s): see their error in %s; run the same command again to retry them",
			len(failed), idList(failed), filepath.Join(outDir, sweepTableFile))
	}
	return nil
}

func idList(ids []string) string {
	if len(ids) > 12 {
		return strings.Join(ids[:12], ", ") + fmt.Sprintf(", ... (%d more)", len(ids)-12)
	}
	return strings.Join(ids, ", ")
}

// sweepRecorder writes a trial's result: its files under the sweep's
// directory (when it ran elsewhere), a row of results.jsonl, results.tsv.
type sweepRecorder struct {
	path, outDir string
	rows         []sweepRow
	trials       []sweepTrial
}

func (r *sweepRecorder) record(t sweepTrial, res *messages.TrialResult) (string, error) {
	// Every field is the worker's. A float JSON cannot hold (NaN, ±Inf)
	// would make the row unwritable, and that error stops the sweep: such a
	// wall time counts as unknown (0), such a best mean100 as none.
	wall := res.WallSeconds
	if !(wall >= 0 && wall <= math.MaxFloat64) {
		wall = 0
	}
	row := sweepRow{Trial: t.ID, Key: t.Key, Params: t.Params, Seed: t.Seed, Node: res.Node, Status: trialOK,
		TimedOut: res.TimedOut, WallSeconds: wall, Attempt: int(res.Attempt), RunDir: res.RunDir,
		Finished: time.Now().UTC().Format(time.RFC3339)}
	if !res.Ok {
		row.Status, row.Error = trialFailed, res.Error
	}
	var sum qfleet.Summary
	if json.Unmarshal(res.SummaryJson, &sum) == nil && sum.Env != "" {
		row.Solved, row.EnvSteps = sum.Solved, sum.EnvSteps
		if sum.WallSeconds > 0 {
			row.WallSeconds = sum.WallSeconds
		}
		if sum.MeanReturn100N > 0 {
			f := sum.MeanReturn100
			row.FinalMean100 = &f
		}
	}
	if res.HasBest && !math.IsNaN(res.BestMean100) && !math.IsInf(res.BestMean100, 0) {
		b := res.BestMean100
		row.BestMean100 = &b
	}
	if row.FinalMean100 != nil && (row.BestMean100 == nil || *row.FinalMean100 > *row.BestMean100) {
		b := *row.FinalMean100
		row.BestMean100 = &b
	}
	// A trial that ran elsewhere sent its files: keep them with the sweep.
	local := trialLocalDir(r.outDir, t.ID)
	if rel, err := filepath.Rel(filepath.Join(r.outDir, sweepTrialsDir), res.RunDir); err == nil && !strings.HasPrefix(rel, "..") && isLocalPath(res.RunDir) {
		row.LocalDir = res.RunDir
	} else {
		if err := os.MkdirAll(local, 0o755); err != nil {
			return "", err
		}
		for name, data := range map[string][]byte{qfleet.RunSummaryFile: res.SummaryJson, qfleet.RunConfigFile: res.ConfigYaml, qfleet.RunScalarsFile: res.ScalarsJsonl} {
			if len(data) > 0 {
				if err := os.WriteFile(filepath.Join(local, name), data, 0o644); err != nil {
					return "", err
				}
			}
		}
		row.LocalDir = local
	}
	if err := appendSweepResult(r.path, row); err != nil {
		return "", err
	}
	r.rows = append(r.rows, row)
	if err := writeSweepTable(filepath.Join(r.outDir, sweepTableFile), tableRows(r.trials, latestByKey(r.rows))); err != nil {
		return "", err
	}
	line := fmt.Sprintf("%s finished on %s: best mean100 %s, final %s, %d env steps, %.1fs", t.ID, row.Node,
		optFloat(row.BestMean100), optFloat(row.FinalMean100), row.EnvSteps, row.WallSeconds)
	if row.TimedOut {
		line += " (stopped at max_time)"
	}
	if row.Status != trialOK {
		line = fmt.Sprintf("%s failed on %s: %s", t.ID, row.Node, row.Error)
	}
	// The node's name and its error are the worker's: a line break in them
	// would write lines of the sweep's log that the sweep never wrote.
	return escapeNewlines(line), nil
}

// isLocalPath reports whether path exists on this machine (a trial run by a
// local worker; a remote node's path under the same directory name would not
// hold this trial's files).
func isLocalPath(path string) bool {
	_, err := os.Stat(filepath.Join(path, qfleet.RunConfigFile))
	return err == nil
}

// runTrialsNode is 'qfleet node --roles trials' (no training roles): a
// cluster member that runs sweep trials until it is stopped.
func runTrialsNode(cs *cluster.NodeConfig, roles []string, trialsDir string, slots int, level slog.Level, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", cs.Name)
	sys := cluster.NewActorSystem(logger)
	cn, err := startClusterNode(sys, cs, cluster.NodeOptions{Roles: roles, Logger: logger})
	if err != nil {
		return err
	}
	w, err := startTrialWorker(sys, trialWorkerOptions{Node: cs.Name, Dir: trialsDir, Slots: slots, Log: stderr, Logger: logger})
	if err != nil {
		cn.Abort()
		return err
	}
	// Leave first: a sweep sees the leave and hands this node's trials to
	// others at once, then the trials stop.
	cn.OnClose(w.stop)
	m := cn.Membership
	fmt.Fprintf(stderr, "qfleet node %s: roles %s, remote %s, gossip %s, %d member(s); %d trial slot(s)\n",
		cs.Name, strings.Join(roles, ","), sys.Address(), m.LocalMember().GossipAddr, m.NumMembers(), slots)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	s := <-sig
	fmt.Fprintf(stderr, "qfleet node %s: %v: stopping\n", cs.Name, s)
	cn.Close(true)
	return nil
}

// escapeNewlines keeps a message on one line whatever the input quoted in it.
func escapeNewlines(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
