package sweep

// Run: a sweep from its spec to its table. The trials run on a trial worker
// of this process (local), or on the workers of the cluster's nodes with the
// trials role (Options.Cluster); either way a coordinator actor hands them
// out and records each result once, so the two paths differ only in where
// the workers are.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster"
)

// DefaultHeartbeatTimeout is how long a coordinator waits for a running
// trial's heartbeats before it runs the trial again elsewhere (Options).
const DefaultHeartbeatTimeout = 30 * time.Second

// acceptTimeout is how long a worker has to answer StartTrial.
const acceptTimeout = 15 * time.Second

// Options configure Run. The zero value runs the spec's trials on this
// machine, one at a time, into sweeps/<spec name>.
type Options struct {
	// Out is the sweep's directory ("" for sweeps/<spec name>). A sweep
	// run again on the same Out resumes: the trials recorded ok in its
	// results.jsonl are skipped, failed ones run again. Two sweeps cannot
	// use one Out at a time (on Linux; an advisory lock).
	Out string
	// Trials are the trials to run, as Spec.Expand lists them (nil: Run
	// expands the spec). A caller that expanded the spec already, to
	// report a bad one before other settings, passes them here.
	Trials []Trial

	// Parallel is how many trials run at a time on this machine (local
	// sweeps; at least 1).
	Parallel int
	// Node names this machine in a local sweep's results ("": the host
	// name).
	Node string

	// Cluster, when set, makes a cluster sweep: Run joins the cluster as
	// this node (with the sweep role) and hands the trials to the members
	// with the trials role (RunTrialsNode, or StartWorker on a node of
	// one's own), Slots at a time each (at least 1).
	Cluster *cluster.NodeConfig
	Slots   int
	// HeartbeatTimeout: a running trial whose node is silent this long
	// runs again elsewhere (0: DefaultHeartbeatTimeout). Workers send a
	// heartbeat every HeartbeatEvery; allow for a few lost ones.
	HeartbeatTimeout time.Duration

	// Progress is the interval of a line on the running trials (env
	// steps, mean100) on Stderr; 0: none.
	Progress time.Duration
	// DryRun lists the trials, and which of them are finished, on Stdout,
	// and runs none.
	DryRun bool
	// Stdout gets the Markdown table of the trials at the end (nil: none).
	Stdout io.Writer
	// Stderr gets a line per trial start and end, and the log at LogLevel
	// (nil: none).
	Stderr   io.Writer
	LogLevel slog.Level
	// Executable is the program the trials run; see WorkerOptions.
	Executable string
}

// Run runs a sweep: the spec's trials not yet finished in Out, each a
// child 'dev' process of Options.Executable, with their results in Out:
//
//	results.jsonl  one Row per ended trial, as ReadResults reads it
//	results.tsv    the table of the trials, one row per trial, in trial order
//	trials/<id>/   each trial's run directory (or the files a remote
//	               node sent back: config.yaml, scalars.jsonl, summary.json)
//	spec.yaml      the spec of the latest run (a Spec from ParseSpec)
//
// Cancelling ctx stops the running trials (their results are lost, and a
// run again resumes); context.Cause(ctx) is named in the log line. Run
// returns the table's rows, in trial order: every trial recorded, ok or
// failed. Its error says which trials failed, if any; errors about the
// spec, Out, or joining the cluster are qfleet.UsageErrors.
func Run(ctx context.Context, spec *Spec, o Options) ([]Row, error) {
	o.setDefaults(spec)
	trials := o.Trials
	if trials == nil {
		var err error
		if trials, err = spec.Expand(); err != nil {
			return nil, qfleet.UsageError{Err: err}
		}
	}
	outDir, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, qfleet.UsageError{Err: fmt.Errorf("--out: %w", err)}
	}
	resultsPath := filepath.Join(outDir, ResultsFile)
	rows, err := ReadResults(resultsPath)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	// Resume: the trials recorded as ok or pruned are done; a paused one
	// goes on from its checkpoint.
	byKey := LatestByKey(rows)
	var todo []Trial
	var skipped []string
	for _, t := range trials {
		if r, ok := byKey[t.Key]; ok && (r.Status == StatusOK || r.Status == StatusPruned) {
			skipped = append(skipped, t.ID)
			continue
		}
		todo = append(todo, t)
	}
	if o.DryRun {
		fmt.Fprintf(o.Stdout, "sweep %s: %s, %s, %d trial(s), %d finished in %s\n", spec.Name, spec.Env, spec.Method, len(trials), len(skipped), outDir)
		for _, t := range trials {
			state := "to run"
			if slices.Contains(skipped, t.ID) {
				state = "finished"
			} else if r, ok := byKey[t.Key]; ok && r.Status == StatusPaused {
				state = fmt.Sprintf("paused at %d env steps", r.EnvSteps)
			}
			fmt.Fprintf(o.Stdout, "%s  seed %d  %s  (%s)\n", t.ID, t.Seed, formatParams(t.Params), state)
		}
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Join(outDir, TrialsDir), 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	unlock, err := lockSweepDir(outDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if spec.source != nil {
		_ = os.WriteFile(filepath.Join(outDir, "spec.yaml"), spec.source, 0o644)
	}
	seeds := max(1, len(spec.Seeds))
	fmt.Fprintf(o.Stderr, "sweep %s: %s, %s search, %d trial(s) (%d point(s) × %d seed(s)), results in %s\n",
		spec.Name, spec.Env, spec.Method, len(trials), (len(trials)+seeds-1)/seeds, len(spec.Seeds), outDir)
	if len(skipped) > 0 {
		fmt.Fprintf(o.Stderr, "sweep %s: resuming: %d of %d trial(s) finished already, skipped: %s\n", spec.Name, len(skipped), len(trials), idList(skipped))
	}
	if len(todo) > 0 {
		rec := &recorder{path: resultsPath, outDir: outDir, rows: rows, trials: trials}
		var ran bool
		ran, err = o.runTrials(ctx, spec.Name, coordOptions{Sweep: spec.Name, Trials: todo, Total: len(trials), DoneBefore: len(skipped),
			Record: rec.record, Mark: rec.mark, ASHA: spec.Scheduler, Finished: byKey,
			PBT: spec.PBT, Params: spec.Params, Resolve: spec.trialConfig}, outDir)
		if !ran {
			return nil, err // nothing ran: nothing to tell
		}
	}
	table, ferr := finish(spec, trials, resultsPath, outDir, o.Stdout, o.Stderr)
	if err == nil {
		err = ferr
	}
	return table, err
}

// setDefaults fills in the zero values of o.
func (o *Options) setDefaults(spec *Spec) {
	if o.Out == "" {
		o.Out = filepath.Join("sweeps", spec.Name)
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	o.Parallel, o.Slots = max(1, o.Parallel), max(1, o.Slots)
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
}

// runTrials starts the workers (one here, or the cluster's) and a
// coordinator on a new actor system, and waits until every trial of c is
// recorded, or ctx is done. ran is false when they could not start.
func (o *Options) runTrials(ctx context.Context, sweep string, c coordOptions, outDir string) (ran bool, err error) {
	name := o.Node
	if o.Cluster != nil {
		name = o.Cluster.Name
	}
	logger := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: o.LogLevel})).With("node", name)
	sys := cluster.NewActorSystem(logger)
	defer sys.Shutdown()
	c.Log, c.AcceptTimeout, c.HeartbeatTimeout, c.Progress = o.Stderr, acceptTimeout, o.HeartbeatTimeout, o.Progress
	shutdown, err := o.startWorkers(sys, &c, outDir, logger)
	if err != nil {
		return false, err
	}
	coord, err := startCoordinator(sys, c)
	if err != nil {
		shutdown()
		return false, err
	}
	select {
	case err = <-coord.Done():
		if err != nil {
			coord.cancel("the sweep failed: " + err.Error())
		} else {
			coord.stop()
		}
	case <-ctx.Done():
		fmt.Fprintf(o.Stderr, "sweep %s: %v: stopping the running trials\n", sweep, context.Cause(ctx))
		coord.cancel("the sweep was interrupted")
		err = errors.New("interrupted: run the same command again to resume")
	}
	// Give the cancels a moment on the wire before leaving.
	time.Sleep(200 * time.Millisecond)
	shutdown()
	return true, err
}

// startWorkers gives the coordinator its workers: a worker of this process,
// or the cluster's members with the trials role once this node joins.
// shutdown stops the worker, or leaves the cluster.
func (o *Options) startWorkers(sys *actor.ActorSystem, c *coordOptions, outDir string, logger *slog.Logger) (shutdown func(), err error) {
	if o.Cluster == nil {
		w, err := StartWorker(sys, WorkerOptions{Node: o.Node, Dir: filepath.Join(outDir, TrialsDir), flat: true,
			Slots: o.Parallel, Logger: logger, Executable: o.Executable})
		if err != nil {
			return nil, err
		}
		c.Slots = o.Parallel
		local := []sweepWorker{{Node: o.Node, PID: w.pid}}
		c.Workers = func() []sweepWorker { return local }
		return w.Stop, nil
	}
	cn, err := startClusterNode(sys, o.Cluster, cluster.NodeOptions{Roles: []string{cluster.RoleSweep}, Logger: logger})
	if err != nil {
		return nil, err
	}
	dir := cn.Directory
	c.Slots = o.Slots
	c.Workers = func() []sweepWorker {
		var ws []sweepWorker
		for _, mem := range dir.WithRole(cluster.RoleTrials) {
			ws = append(ws, sweepWorker{Node: mem.Name, PID: actor.NewPID(mem.RemoteAddr, trialWorkerName)})
		}
		return ws
	}
	fmt.Fprintf(o.Stderr, "sweep %s: joined the cluster as %s (remote %s), %d node(s) with the trials role\n",
		c.Sweep, o.Cluster.Name, sys.Address(), len(dir.WithRole(cluster.RoleTrials)))
	return func() { cn.Close(true) }, nil
}

// startClusterNode starts the node's remote and gossip on sys; a failure
// to join is a usage error (the settings are wrong, not the machine).
func startClusterNode(sys *actor.ActorSystem, c *cluster.NodeConfig, o cluster.NodeOptions) (*cluster.Node, error) {
	n, err := cluster.StartNode(sys, c, o)
	var je *cluster.JoinError
	if errors.As(err, &je) {
		return nil, qfleet.UsageError{Err: err}
	}
	return n, err
}

// finish prints the table of the spec's trials and says how it went.
func finish(spec *Spec, trials []Trial, resultsPath, outDir string, stdout, stderr io.Writer) ([]Row, error) {
	rows, err := ReadResults(resultsPath)
	if err != nil {
		return nil, err
	}
	table := tableRows(trials, LatestByKey(rows))
	if len(table) > 0 {
		fmt.Fprintf(stdout, "\nSweep %s (%s, %s): %d of %d trial(s), best mean100 first\n\n%s", spec.Name, spec.Env, spec.Method,
			len(table), len(trials), MarkdownTable(table))
	}
	var failed []string
	for _, r := range table {
		if r.Status == StatusFailed {
			failed = append(failed, r.Trial)
		}
	}
	fmt.Fprintf(stderr, "sweep %s: %d of %d trial(s) recorded, %d failed; table in %s\n", spec.Name, len(table), len(trials),
		len(failed), filepath.Join(outDir, TableFile))
	if len(failed) > 0 {
		return table, fmt.Errorf("%d trial(s) failed (%s): see their error in %s; run the same command again to retry them",
			len(failed), idList(failed), filepath.Join(outDir, TableFile))
	}
	return table, nil
}

func idList(ids []string) string {
	if len(ids) > 12 {
		return strings.Join(ids[:12], ", ") + fmt.Sprintf(", ... (%d more)", len(ids)-12)
	}
	return strings.Join(ids, ", ")
}

// escapeNewlines keeps a message on one line whatever the input quoted in it.
func escapeNewlines(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
