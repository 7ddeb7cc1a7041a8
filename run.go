package qfleet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/console"
	"github.com/qfleet/qfleet/internal/dashboard"
)

// Run is one training run, resolved from its Config and checked: NewRun
// makes it, Dev trains it with every role in this process, Node runs the
// roles of one cluster node.
type Run struct {
	cf              Config
	spec            envs.Spec // cf.Env's, for the checks before start
	progressEvery   time.Duration
	maxTime         time.Duration // 0: no limit
	level           slog.Level
	targetReturn    float64
	checkpointEvery time.Duration
	snapshotEvery   time.Duration
	resume          bool

	// checkpointsAsked: a checkpoint flag was given (--checkpoint-every,
	// --replay-snapshot-every, --resume), so checkpoints are on, in
	// RUN_DIR/checkpoints unless --checkpoint-dir says where. Without one,
	// a run writes none: they cost time and disk that most runs never use.
	checkpointsAsked bool
	runDir           string        // RunDir; after prepare, the run directory ("" for none)
	madeRunDir       bool          // prepare made runDir (a failed start removes it)
	madeSummary      string        // the --summary file prepare created (a failed start removes it)
	command          []string      // the command line, recorded in config.yaml
	scalars          *scalarWriter // scalars.jsonl of the run directory; nil without one
	live             *console.Live // the live progress line; nil when off
}

// Options are a run's switches that its config does not hold: they are
// about this start of the run, not the run.
type Options struct {
	// Resume continues the run from the newest checkpoint (and replay
	// snapshot) in CheckpointDir, or in RunDir's checkpoints.
	Resume bool
	// Checkpoints turns checkpoints on without a CheckpointDir: they go to
	// RUN_DIR/checkpoints. Resume, a ReplaySnapshotEvery above 0 and a
	// CheckpointEvery other than the default turn them on as well. Without
	// them a run writes none: they cost time and disk most runs never use.
	Checkpoints bool
	// ConfigPath names the config file in error messages ("": none).
	ConfigPath string
	// Command is the command line recorded in the run directory's config.yaml.
	Command []string
}

// NewRun checks cf and resolves it into a run: its env made (for its spec),
// its intervals parsed, its target return (the env's reward threshold
// unless set). Errors are UsageErrors that name the setting.
func NewRun(cf Config, o Options) (*Run, error) {
	t := &Run{resume: o.Resume, checkpointsAsked: o.Checkpoints, command: o.Command, runDir: cf.RunDir}
	bad := func(format string, args ...any) (*Run, error) { return nil, UsageError{fmt.Errorf(format, args...)} }
	if d, err := time.ParseDuration(cf.Progress); err == nil || cf.Progress == "0" {
		t.progressEvery = d
	} else {
		return bad("config %s: progress = %q: not a duration", o.ConfigPath, cf.Progress)
	}
	if d, err := time.ParseDuration(cf.MaxTime); (err == nil && d >= 0) || cf.MaxTime == "0" || cf.MaxTime == "" {
		t.maxTime = max(d, 0)
	} else {
		return bad("config %s: max_time = %q: not a duration >= 0", o.ConfigPath, cf.MaxTime)
	}
	if err := useExternalEnv(&cf); err != nil {
		return nil, UsageError{err}
	}
	spec, err := envs.SpecOf(cf.Env)
	if err != nil {
		return nil, UsageError{err}
	}
	t.spec = spec
	if err := cf.Config.Validate(); err != nil {
		if o.ConfigPath != "" {
			err = fmt.Errorf("config %s (or a flag over it): %w", o.ConfigPath, err)
		}
		return nil, UsageError{err}
	}
	if t.resume && cf.CheckpointDir == "" && t.runDir == "" {
		return bad("--resume needs --checkpoint-dir, or --run-dir with the run to continue")
	}
	if t.checkpointEvery, err = durationSetting(cf.CheckpointEvery, DefaultCheckpointEvery); err != nil || t.checkpointEvery < 0 {
		return bad("--checkpoint-every must be a duration >= 0 (%q)", cf.CheckpointEvery)
	}
	if t.snapshotEvery, err = durationSetting(cf.ReplaySnapshotEvery, 0); err != nil || t.snapshotEvery < 0 {
		return bad("--replay-snapshot-every must be a duration >= 0 (%q)", cf.ReplaySnapshotEvery)
	}
	t.checkpointsAsked = t.checkpointsAsked || t.resume || t.snapshotEvery > 0 || t.checkpointEvery != DefaultCheckpointEvery
	if err := t.level.UnmarshalText([]byte(cf.LogLevel)); err != nil {
		return bad("log level %q: want debug, info, warn or error", cf.LogLevel)
	}
	if !slices.Contains(console.LiveModes, cf.Live) {
		return bad("live %q: want %s", cf.Live, strings.Join(console.LiveModes, ", "))
	}
	switch cf.StopOn {
	case "":
		cf.StopOn = StopOnMean100
	case StopOnMean100:
	case StopOnEval:
		if cf.EvalEvery <= 0 {
			return bad("config %s: stop_on = eval needs eval_every > 0 (evaluations to stop on)", o.ConfigPath)
		}
	case StopOnNone:
		if cf.MaxSteps == 0 && t.maxTime == 0 {
			return bad("config %s: stop_on = none needs max_steps or max_time (else the run never ends)", o.ConfigPath)
		}
	default:
		return bad("config %s: stop_on = %q: want %s, %s or %s", o.ConfigPath, cf.StopOn, StopOnMean100, StopOnEval, StopOnNone)
	}
	t.targetReturn = spec.RewardThreshold
	if cf.TargetReturn != nil && !math.IsNaN(*cf.TargetReturn) {
		t.targetReturn = *cf.TargetReturn
	}
	t.cf = cf
	return t, nil
}

// stopRule is the actors' stop rule of the run.
func (t *Run) stopRule() actors.StopRule {
	return actors.StopRule{TargetReturn: t.targetReturn, MaxEnvSteps: t.cf.MaxSteps, OnEval: t.cf.StopOn == StopOnEval, OnNone: t.cf.StopOn == StopOnNone}
}

// durationSetting parses a duration setting; "" is def.
func durationSetting(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// Effective is the run's config as a config file says it: the target
// return the run uses (the env's threshold unless set) and the intervals
// it parsed, so that reading it back gives the same run.
func (t *Run) Effective() Config {
	cf := t.cf
	target := t.targetReturn
	cf.TargetReturn = &target
	cf.Progress = t.progressEvery.String()
	cf.MaxTime = t.maxTime.String()
	cf.Hidden = slices.Clone(cf.Hidden)
	return cf
}

// display turns the live progress line on when --live says so for these
// writers, and returns the writer for the run's other stderr output: the
// live line itself, which erases itself before each write.
func (t *Run) display(stdout, stderr io.Writer) io.Writer {
	if !console.LiveOn(t.cf.Live, stdout, stderr) {
		return stderr
	}
	t.live = console.NewLive(stderr, t.cf.Env, t.cf.MaxSteps, t.maxTime, t.targetReturn)
	return t.live
}

// prepare checks the outputs before training starts: a run or checkpoint
// directory that cannot be written, a summary file that cannot be written
// and an HTTP address in use fail now, not after the run. Then it sets up
// the run directory: always when --run-dir is given or defaultRunDir is
// true, and when checkpoints were asked for without a directory; the run
// directory is made last, so that a bad flag leaves none.
func (t *Run) prepare(defaultRunDir bool) (net.Listener, error) {
	makesRunDir := t.runDir != "" || defaultRunDir || t.checkpointsAsked && t.cf.CheckpointDir == ""
	if err := t.checkDirs(makesRunDir); err != nil {
		return nil, err
	}
	if t.cf.Summary != "" {
		if _, err := os.Stat(t.cf.Summary); errors.Is(err, os.ErrNotExist) {
			t.madeSummary = t.cf.Summary
		}
		if err := os.WriteFile(t.cf.Summary, []byte("{}\n"), 0o644); err != nil {
			return nil, fmt.Errorf("summary file: %w", err)
		}
	}
	var ln net.Listener
	if t.cf.HTTP != "" {
		var err error
		if ln, err = net.Listen("tcp", t.cf.HTTP); err != nil {
			t.abandonStart(io.Discard, "")
			return nil, fmt.Errorf("--http %s: %w", t.cf.HTTP, err)
		}
	}
	if makesRunDir {
		if err := t.setUpRunDir(time.Now()); err != nil {
			if ln != nil {
				ln.Close()
			}
			t.abandonStart(io.Discard, "")
			return nil, UsageError{err} // before any actor: a startup error, like the checks above
		}
	}
	return ln, nil
}

// runHooks connect a training run to cluster membership (all optional).
type runHooks struct {
	done       <-chan string             // a reason to end the run (e.g. the learner left the cluster)
	members    func() []dashboard.Member // for /status and the dashboard; nil: just this node
	beforeStop func()                    // after the checkpoint, before the actors stop (leave the cluster)
}

// run serves HTTP, prints progress until the stop rule fires (or a signal,
// or hooks.done), then writes the checkpoint and the summary and stops node.
func (t *Run) run(name string, node *actors.Node, ln net.Listener, hooks runHooks, stdout, stderr io.Writer) (Summary, error) {
	cf := t.cf
	if ln != nil {
		defer t.serve(name, node, ln, hooks.members)()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var tick <-chan time.Time
	if t.progressEvery > 0 {
		tk := time.NewTicker(t.progressEvery)
		defer tk.Stop()
		tick = tk.C
	}
	prog := console.NewProgress(node.Metrics, node.Started)
	var liveTick <-chan time.Time
	if t.live != nil {
		// From the steps already done (a resumed run's), so that they do
		// not count as the first rate sample.
		t.live.Start(node.Started, node.Metrics.NodeStatus().EnvSteps)
		tk := time.NewTicker(console.LiveEvery)
		defer tk.Stop()
		liveTick = tk.C
		defer t.live.Clear()
	}
	var scalarTick <-chan time.Time
	if t.scalars != nil {
		fmt.Fprintf(stderr, "qfleet %s: run directory %s\n", name, t.runDir)
		every := maxScalarsEvery
		if t.progressEvery > 0 {
			every = min(every, t.progressEvery)
		}
		tk := time.NewTicker(every)
		defer tk.Stop()
		scalarTick = tk.C
		t.scalars.start(node.Metrics, node.Started, t.resume)
	}
	rolesLost, stopWatch := watchRoles(node)
	defer stopWatch()
	var deadline <-chan time.Time
	if t.maxTime > 0 {
		tm := time.NewTimer(time.Until(node.Started.Add(t.maxTime)))
		defer tm.Stop()
		deadline = tm.C
	}
	interrupted := false
	var lost error // a role the run cannot go on without stopped for good
wait:
	for {
		select {
		case <-node.Done():
			break wait
		case <-deadline:
			fmt.Fprintf(stderr, "qfleet %s: --max-time %v reached: stopping\n", name, t.maxTime)
			break wait
		case why := <-hooks.done:
			fmt.Fprintf(stderr, "qfleet %s: %s\n", name, why)
			break wait
		case s := <-sig:
			fmt.Fprintf(stderr, "qfleet %s: %v: stopping\n", name, s)
			interrupted = true
			break wait
		case <-tick:
			fmt.Fprintln(stderr, prog.Line())
		case now := <-liveTick:
			t.live.Draw(node.Metrics.NodeStatus(), now)
		case now := <-scalarTick:
			t.scalars.record(node.Metrics, node.Roles, node.Started, now)
		case why := <-rolesLost:
			fmt.Fprintf(stderr, "qfleet %s: %s: run over\n", name, why)
			lost = errors.New(why)
			break wait
		}
	}
	wall := time.Since(node.Started)
	st := node.Metrics.NodeStatus()
	st.EnvSteps = node.Metrics.RunSteps() // the run's, before a resume too (the status counts this process's)
	var ckptErr error
	if learnerStopped(node) {
		ckptErr = errors.New("the learner stopped for good: the run ended without it, no final checkpoint")
	} else if cf.CheckpointDir != "" && slices.Contains(node.Roles, actors.RoleLearner) {
		var path string
		if path, ckptErr = node.SaveCheckpoint(30 * time.Second); ckptErr == nil {
			fmt.Fprintf(stderr, "qfleet %s: checkpoint written to %s\n", name, path)
		}
	}
	if slices.Contains(node.Roles, actors.RoleLearner) && !learnerStopped(node) {
		// The evaluation that ended the run may still be on its way to the
		// learner's best: wait for it (after the checkpoint, it is there).
		if node.SyncLearner(5*time.Second) == nil {
			st.BestEval = node.Metrics.Status().BestEval
		}
	}
	if hooks.beforeStop != nil {
		hooks.beforeStop()
	}
	node.Stop()
	fmt.Fprintln(stderr, prog.Line())
	if t.scalars != nil {
		t.scalars.record(node.Metrics, node.Roles, node.Started, time.Now())
		t.closeScalars(stderr, name)
	}
	res := newSummary(cf.Env, cf.Seed, st, wall, node.Started)
	fmt.Fprintln(stdout, res.line())
	if cf.Summary != "" {
		if err := writeJSON(cf.Summary, res); err != nil {
			return res, fmt.Errorf("summary file: %w", err)
		}
	}
	if ckptErr != nil {
		return res, ckptErr
	}
	if lost != nil {
		return res, lost
	}
	if interrupted {
		return res, errors.New("interrupted")
	}
	return res, nil
}

// serve serves the run's dashboard, /status and /metrics on ln until the
// returned func is called (members nil: just this node).
func (t *Run) serve(name string, node *actors.Node, ln net.Listener, members func() []dashboard.Member) (stop func()) {
	cf := t.cf
	return dashboard.Serve(ln, dashboard.Options{
		Node: name, Roles: node.Roles, Members: members, Metrics: node.Metrics, Started: node.Started, Resumed: t.resume,
		Run:   dashboard.Run{Env: cf.Env, Seed: cf.Seed, TargetReturn: dashboard.Defined(t.targetReturn), MaxSteps: cf.MaxSteps, ReplayCapacity: cf.ReplayCapacity},
		Pprof: cf.Pprof,
	})
}

// LogLevel is the run's log level (LogLevel of its config).
func (t *Run) LogLevel() slog.Level { return t.level }

// RunDir is the run's directory: RunDir of its config until the run starts,
// then the one it writes into ("" for none).
func (t *Run) RunDir() string { return t.runDir }
