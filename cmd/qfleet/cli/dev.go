package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/console"
	"github.com/qfleet/qfleet/internal/dashboard"
	"github.com/qfleet/qfleet/nets"
)

var errHelp = errors.New("help shown")

// runOptions are the settings of one training run that are not
// hyper-parameters. The YAML config file may set them too.
type runOptions struct {
	Env           string   `yaml:"env"`
	Seed          uint64   `yaml:"seed"`
	MaxSteps      uint64   `yaml:"max_steps"`
	MaxTime       string   `yaml:"max_time"`      // stop after this much wall time, e.g. "10m"; "0" for no limit
	TargetReturn  *float64 `yaml:"target_return"` // nil: the env's reward threshold
	HTTP          string   `yaml:"http"`
	Pprof         bool     `yaml:"pprof" json:"-"` // not in a sweep trial's key: profiling changes no run
	CheckpointDir string   `yaml:"checkpoint_dir"`
	Summary       string   `yaml:"summary"`
	Progress      string   `yaml:"progress"` // interval between progress lines, e.g. "10s"; "0" turns them off
	Live          string   `yaml:"live"`     // the live progress line: auto, always or never
	LogLevel      string   `yaml:"log_level"`
}

// configFile is the YAML config: run options and the hyper-parameters, flat.
type configFile struct {
	runOptions    `yaml:",inline"`
	flagSettings  `yaml:",inline"`
	actors.Config `yaml:",inline"`
}

var devHelp = `Usage: qfleet dev [flags]

Trains a DQN agent with every role in this process: env runners stream
experience to the replay, the learner trains on samples and publishes weights,
the broadcaster hands the newest weights to the runners. The run stops when
mean100 (the mean return of the last 100 episodes played at ε ≤ 0.05) reaches
the target return, or at --max-steps env steps.

Settings come from the defaults, then --config FILE (YAML; keys are the
snake_case names of the flags and of the hyper-parameters in actors.Config),
then the flags given on the command line. 'qfleet config print' shows them all.

Each run writes into its run directory (--run-dir; default a new
runs/<env>-<seed>-<UTC time> under the current directory):
  config.yaml    the effective config (as 'qfleet config print'; reusable
                 with --config for a new run)
  scalars.jsonl  learning curves, one JSON object a line: {"step": env steps,
                 "wall": seconds, "name": ..., "value": ...}, every 2 s (or
                 every --progress when shorter) and at the end; names:
                 mean100, mean100_all, env_steps_per_s, learner_updates_per_s,
                 replay_size, learner_loss, weights_lag/<runner> (publications
                 the runner's weights are behind, as of its last report)
  summary.json   the --summary JSON, unless --summary names another file
  checkpoints/   only when --checkpoint-every, --replay-snapshot-every or
                 --resume is given without --checkpoint-dir
A run directory that holds a run is refused, except with --resume, which
continues that run (and appends to its scalars). 'qfleet plot' draws them.
` + "\n" + netsHelp + `
Flags:
`

// trainFlags are the training flags shared by `dev` and `node`.
type trainFlags struct {
	cfgPath, envID, httpAddr, ckptDir, summary, logLevel, runDir *string
	live, maxMemory                                              *string
	seed, maxSteps                                               *uint64
	runners                                                      *int
	target                                                       *float64
	progress, ckptEvery, snapEvery, maxTime                      *time.Duration
	resume, pprof                                                *bool
	fs                                                           *flag.FlagSet // the set these flags are on
}

func addTrainFlags(fs *flag.FlagSet) *trainFlags {
	return &trainFlags{
		fs:        fs,
		cfgPath:   fs.String("config", "", "YAML config `file` (flags override it)"),
		envID:     fs.String("env", "CartPole-v1", "environment `id` ("+strings.Join(envs.IDs(), ", ")+")"),
		seed:      fs.Uint64("seed", 1, "random seed of the run"),
		runners:   fs.Int("runners", 0, "env runner actors on this node (default from config: 1)"),
		maxSteps:  fs.Uint64("max-steps", 500_000, "stop after this many env steps"),
		maxTime:   fs.Duration("max-time", 0, "stop after this much wall time, e.g. 10m (0: no limit); the run ends as at --max-steps, with its checkpoint and summary"),
		target:    fs.Float64("target-return", math.NaN(), "stop when mean100 reaches this return (default: the env's reward threshold)"),
		httpAddr:  fs.String("http", "", "serve the dashboard (/), /metrics, /status and /history on this `address` (e.g. 127.0.0.1:9090)"),
		pprof:     fs.Bool("pprof", false, "also serve the Go profiles (net/http/pprof) at /debug/pprof/ on the --http address; off by default, because profiles reveal the program's internals to anyone who reaches the port and taking them costs CPU"),
		ckptDir:   fs.String("checkpoint-dir", "", "write learner checkpoints (periodic and final) to this `directory` (default: none, or RUN_DIR/checkpoints when --checkpoint-every, --replay-snapshot-every or --resume is given)"),
		ckptEvery: fs.Duration("checkpoint-every", 10*time.Second, "interval of periodic learner checkpoints (0: only at the end); giving it turns checkpoints on"),
		snapEvery: fs.Duration("replay-snapshot-every", 0, "interval of replay snapshots into the checkpoint directory, restored by --resume and by a restarted replay (0: none)"),
		resume:    fs.Bool("resume", false, "continue the run from the newest checkpoint (and replay snapshot) in --checkpoint-dir, or in --run-dir's checkpoints"),
		summary:   fs.String("summary", "", "write a JSON summary of the run to this `file` at exit (default: RUN_DIR/summary.json)"),
		runDir:    fs.String("run-dir", "", "run `directory`: config.yaml, scalars.jsonl, summary.json, checkpoints/ (default: a new "+runsRoot+"/<env>-<seed>-<UTC time>)"),
		progress:  fs.Duration("progress", 0, "interval between progress log lines on stderr, for logs kept in files (0: none)"),
		live:      fs.String("live", console.LiveAuto, "the live progress line on stderr (bar, rates, mean100, ETA): auto (only when stdout and stderr are terminals), always or never"),
		logLevel:  fs.String("log-level", "warn", "log level: debug, info, warn, error"),
		maxMemory: fs.String("max-memory", "auto", "memory this node may plan to use, e.g. 16GiB or 500MB; a config needing more (by the estimate 'qfleet config print' shows) is refused before anything is allocated; auto: 80% of the machine's memory or cgroup limit; 0: no limit"),
	}
}

// envOf is the env of the run before the rest is resolved: the --env flag,
// else the config file's env key, else CartPole-v1.
func (tf *trainFlags) envOf(fs *flag.FlagSet) (string, error) {
	id := "CartPole-v1"
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "env" })
	if given {
		return *tf.envID, nil
	}
	if *tf.cfgPath != "" {
		var only struct {
			Env string `yaml:"env"`
		}
		data, err := os.ReadFile(*tf.cfgPath)
		if err != nil {
			return "", usageError{fmt.Errorf("config %s: %w", *tf.cfgPath, err)}
		}
		if yaml.Unmarshal(data, &only) == nil && only.Env != "" {
			id = only.Env
		}
	}
	return id, nil
}

// training is a resolved training setup: defaults, then the config file,
// then the flags given.
type training struct {
	cf              configFile
	env             envs.Env // an instance of cf.Env, for its spec (the checks before start)
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
	runDir           string        // --run-dir; after prepare, the run directory ("" for none)
	madeRunDir       bool          // prepare made runDir (a failed start removes it)
	madeSummary      string        // the --summary file prepare created (a failed start removes it)
	command          []string      // the command line, recorded in config.yaml
	scalars          *scalarWriter // scalars.jsonl of the run directory; nil without one
	live             *console.Live // the live progress line; nil when off
	flags            *flag.FlagSet // the command's flags, config settings applied (effective flagSettings)
}

// display turns the live progress line on when --live says so for these
// writers, and returns the writer for the run's other stderr output: the
// live line itself, which erases itself before each write.
func (t *training) display(stdout, stderr io.Writer) io.Writer {
	if !console.LiveOn(t.cf.Live, stdout, stderr) {
		return stderr
	}
	t.live = console.NewLive(stderr, t.cf.Env, t.cf.MaxSteps, t.maxTime, t.targetReturn)
	return t.live
}

func (tf *trainFlags) resolve(fs *flag.FlagSet) (*training, error) {
	// The defaults depend on the env, named by the flag or else the file.
	envID, err := tf.envOf(fs)
	if err != nil {
		return nil, err
	}
	cf := configFile{Config: actors.DefaultConfigFor(envID)}
	cf.Env, cf.Seed, cf.MaxSteps, cf.MaxTime, cf.Progress, cf.Live, cf.LogLevel = "CartPole-v1", 1, 500_000, "0s", "0s", console.LiveAuto, "warn"
	if *tf.cfgPath != "" {
		if err := loadConfig(*tf.cfgPath, &cf); err != nil {
			return nil, usageError{err}
		}
		// Settings that are flags (run_dir, join, ...) go to the flags, so
		// that the code below and the command's own flags read them there.
		if err := cf.flagSettings.apply(tf.fs, *tf.cfgPath); err != nil {
			return nil, usageError{err}
		}
	}
	t := &training{flags: tf.fs}
	if d, err := time.ParseDuration(cf.Progress); err == nil || cf.Progress == "0" {
		t.progressEvery = d
	} else {
		return nil, usageError{fmt.Errorf("config %s: progress = %q: not a duration", *tf.cfgPath, cf.Progress)}
	}
	if d, err := time.ParseDuration(cf.MaxTime); (err == nil && d >= 0) || cf.MaxTime == "0" || cf.MaxTime == "" {
		t.maxTime = max(d, 0)
	} else {
		return nil, usageError{fmt.Errorf("config %s: max_time = %q: not a duration >= 0", *tf.cfgPath, cf.MaxTime)}
	}
	// Flags given on the command line override the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "max-time":
			t.maxTime = *tf.maxTime
		case "env":
			cf.Env = *tf.envID
		case "seed":
			cf.Seed = *tf.seed
		case "runners":
			cf.Runners = *tf.runners
		case "max-steps":
			cf.MaxSteps = *tf.maxSteps
		case "target-return":
			cf.TargetReturn = tf.target
		case "http":
			cf.HTTP = *tf.httpAddr
		case "pprof":
			cf.Pprof = *tf.pprof
		case "checkpoint-dir":
			cf.CheckpointDir = *tf.ckptDir
		case "summary":
			cf.Summary = *tf.summary
		case "progress":
			t.progressEvery = *tf.progress
		case "live":
			cf.Live = *tf.live
		case "log-level":
			cf.LogLevel = *tf.logLevel
		case "checkpoint-every":
			t.checkpointsAsked = true
		}
	})
	env, err := envs.Make(cf.Env)
	if err != nil {
		return nil, usageError{err}
	}
	t.env = env
	if err := cf.Config.Validate(); err != nil {
		if *tf.cfgPath != "" {
			err = fmt.Errorf("config %s (or a flag over it): %w", *tf.cfgPath, err)
		}
		return nil, usageError{err}
	}
	t.checkpointEvery, t.resume, t.runDir = *tf.ckptEvery, *tf.resume, *tf.runDir
	if t.resume && cf.CheckpointDir == "" && t.runDir == "" {
		return nil, usageError{errors.New("--resume needs --checkpoint-dir, or --run-dir with the run to continue")}
	}
	if *tf.pprof && cf.HTTP == "" { // only the flag: a file's pprof without http (a sweep trial's) serves nothing, harmlessly
		return nil, usageError{errors.New("--pprof serves on the --http address: give --http too")}
	}
	if t.checkpointEvery < 0 {
		return nil, usageError{errors.New("--checkpoint-every must be >= 0")}
	}
	if t.maxTime < 0 {
		return nil, usageError{errors.New("--max-time must be >= 0")}
	}
	t.snapshotEvery = *tf.snapEvery
	if t.snapshotEvery < 0 {
		return nil, usageError{errors.New("--replay-snapshot-every must be >= 0")}
	}
	t.checkpointsAsked = t.checkpointsAsked || t.resume || t.snapshotEvery > 0
	if err := t.level.UnmarshalText([]byte(cf.LogLevel)); err != nil {
		return nil, usageError{fmt.Errorf("log level %q: want debug, info, warn or error", cf.LogLevel)}
	}
	if !slices.Contains(console.LiveModes, cf.Live) {
		return nil, usageError{fmt.Errorf("live %q: want %s", cf.Live, strings.Join(console.LiveModes, ", "))}
	}
	t.targetReturn = env.Spec().RewardThreshold
	if cf.TargetReturn != nil && !math.IsNaN(*cf.TargetReturn) {
		t.targetReturn = *cf.TargetReturn
	}
	t.cf = cf
	return t, nil
}

// prepare checks the outputs before training starts: a run or checkpoint
// directory that cannot be written, a summary file that cannot be written
// and an HTTP address in use fail now, not after the run. Then it sets up
// the run directory: always when --run-dir is given or defaultRunDir is
// true, and when checkpoints were asked for without a directory; the run
// directory is made last, so that a bad flag leaves none.
func (t *training) prepare(defaultRunDir bool) (net.Listener, error) {
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
			return nil, usageError{err} // before any actor: a startup error, like the checks above
		}
	}
	return ln, nil
}

func runDev(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet dev", flag.ContinueOnError)
	tf := addTrainFlags(fs)
	if err := parseFlags(fs, devHelp, args, stdout, stderr); err != nil {
		return err
	}
	t, err := tf.resolve(fs)
	if err != nil {
		return err
	}
	t.command = append([]string{"qfleet", "dev"}, args...)
	if err := t.checkStart(actors.AllRoles, *tf.maxMemory); err != nil {
		return err
	}
	ln, err := t.prepare(true)
	if err != nil {
		return err
	}
	nets.SetLearnerGC()
	stderr = t.display(stdout, stderr)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: t.level}))
	dev, err := actors.StartDev(actors.DevOptions{
		EnvID: t.cf.Env, Seed: t.cf.Seed, Config: t.cf.Config,
		Stop:          actors.StopRule{TargetReturn: t.targetReturn, MaxEnvSteps: t.cf.MaxSteps},
		CheckpointDir: t.cf.CheckpointDir, CheckpointEvery: t.checkpointEvery, SnapshotEvery: t.snapshotEvery, Resume: t.resume, Logger: logger,
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.abandonStart(stderr, "dev")
		return err
	}
	fmt.Fprintf(stderr, "qfleet dev: %s seed %d, target mean100 %.4g, max %d env steps, %d runner(s), net %v\n",
		t.cf.Env, t.cf.Seed, t.targetReturn, t.cf.MaxSteps, t.cf.Runners, dev.Net)
	return t.run("dev", dev, ln, runHooks{}, stdout, stderr)
}

// runHooks connect a training run to cluster membership (all optional).
type runHooks struct {
	done       <-chan string             // a reason to end the run (e.g. the learner left the cluster)
	members    func() []dashboard.Member // for /status and the dashboard; nil: just this node
	beforeStop func()                    // after the checkpoint, before the actors stop (leave the cluster)
}

// run serves HTTP, prints progress until the stop rule fires (or a signal,
// or hooks.done), then writes the checkpoint and the summary and stops node.
func (t *training) run(name string, node *actors.Node, ln net.Listener, hooks runHooks, stdout, stderr io.Writer) error {
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
	learnerLost, stopWatch := watchLearner(node)
	defer stopWatch()
	var deadline <-chan time.Time
	if t.maxTime > 0 {
		tm := time.NewTimer(time.Until(node.Started.Add(t.maxTime)))
		defer tm.Stop()
		deadline = tm.C
	}
	interrupted := false
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
		case <-learnerLost:
			fmt.Fprintf(stderr, "qfleet %s: the learner stopped for good (its error is logged above): run over\n", name)
			break wait
		}
	}
	wall := time.Since(node.Started)
	st := node.Metrics.NodeStatus()
	var ckptErr error
	if learnerStopped(node) {
		ckptErr = errors.New("the learner stopped for good: the run ended without it, no final checkpoint")
	} else if cf.CheckpointDir != "" && slices.Contains(node.Roles, actors.RoleLearner) {
		var path string
		if path, ckptErr = node.SaveCheckpoint(30 * time.Second); ckptErr == nil {
			fmt.Fprintf(stderr, "qfleet %s: checkpoint written to %s\n", name, path)
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
	fmt.Fprintf(stdout, "%s %s: solved=%v env_steps=%d wall=%.1fs mean100=%.1f", cf.Env, seedStr(cf.Seed), res.Solved, res.EnvSteps, res.WallSeconds, res.MeanReturn100)
	if res.Solved {
		fmt.Fprintf(stdout, " solved_at_env_steps=%d solved_at=%.1fs", res.SolvedAtEnvSteps, res.SolvedAtSeconds)
	}
	fmt.Fprintln(stdout)
	if cf.Summary != "" {
		if err := writeJSON(cf.Summary, res); err != nil {
			return fmt.Errorf("summary file: %w", err)
		}
	}
	if ckptErr != nil {
		return ckptErr
	}
	if interrupted {
		return errors.New("interrupted")
	}
	return nil
}

// serve serves the run's dashboard, /status and /metrics on ln until the
// returned func is called (members nil: just this node).
func (t *training) serve(name string, node *actors.Node, ln net.Listener, members func() []dashboard.Member) (stop func()) {
	cf := t.cf
	return dashboard.Serve(ln, dashboard.Options{
		Node: name, Roles: node.Roles, Members: members, Metrics: node.Metrics, Started: node.Started, Resumed: t.resume,
		Run:   dashboard.Run{Env: cf.Env, Seed: cf.Seed, TargetReturn: dashboard.Defined(t.targetReturn), MaxSteps: cf.MaxSteps, ReplayCapacity: cf.ReplayCapacity},
		Pprof: cf.Pprof,
	})
}

func seedStr(s uint64) string { return fmt.Sprintf("seed=%d", s) }

// loadConfig reads a YAML config strictly: unknown keys are errors that name
// the key, so a typo never silently falls back to a default.
func loadConfig(path string, cf *configFile) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return parseConfig(data, path, cf)
}

// parseConfig decodes YAML config data (named path in errors) over cf.
func parseConfig(data []byte, path string, cf *configFile) error {
	if err := checkWholeNumbers(data); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cf)
	var te *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("config %s: %s", path, singleLine(typeErrorText(data, te)))
	default:
		return fmt.Errorf("config %s: %s", path, singleLine(err.Error()))
	}
}

// checkWholeNumbers refuses a fraction for an integer setting: yaml.v3
// decodes `batch_size: 51.7` into an int as 51, silently.
func checkWholeNumbers(data []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // the decoder reports what is wrong with it
	}
	kinds := integerKeys()
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		key, val := m[i].Value, m[i+1]
		if !kinds[key] {
			continue
		}
		values := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			values = val.Content
		}
		for _, v := range values {
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!float" {
				continue
			}
			if x, err := strconv.ParseFloat(v.Value, 64); err == nil && x == math.Trunc(x) {
				continue // 1e5 is a whole number
			}
			return fmt.Errorf("line %d: %s = %s: must be a whole number", v.Line, key, v.Value)
		}
	}
	return nil
}

// integerKeys are the yaml keys of configFile whose values are integers or
// lists of integers.
func integerKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				walk(f.Type)
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				if ft != reflect.TypeFor[time.Duration]() {
					keys[name] = true
				}
			}
		}
	}
	walk(reflect.TypeFor[configFile]())
	return keys
}

// singleLine keeps an error message on one line whatever the input quoted in it.
func singleLine(s string) string {
	s = strings.ReplaceAll(s, " into main.configFile", " into the config (want key: value settings)")
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// typeErrorText turns yaml's multi-line type error into one line that names
// each offending key ("line 2: batch_size: cannot unmarshal !!str `abc` into int").
func typeErrorText(data []byte, te *yaml.TypeError) string {
	keyAt := map[int]string{} // line of a top-level value → its key
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			keyAt[m[i+1].Line] = m[i].Value
		}
	}
	parts := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		e = strings.ReplaceAll(e, " in type main.configFile", "")
		var line int
		if _, err := fmt.Sscanf(e, "line %d:", &line); err == nil && keyAt[line] != "" {
			e = strings.Replace(e, ": ", ": "+keyAt[line]+": ", 1)
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, "; ")
}

// summary is the --summary JSON.
type summary struct {
	Env                string  `json:"env"`
	Seed               uint64  `json:"seed"`
	EnvSteps           uint64  `json:"env_steps"`
	Episodes           uint64  `json:"episodes"`
	LearnerUpdates     uint64  `json:"learner_updates"`
	WeightsVersion     uint64  `json:"weights_version"`
	WallSeconds        float64 `json:"wall_seconds"`
	Solved             bool    `json:"solved"`
	SolvedAtEnvSteps   uint64  `json:"solved_at_env_steps"`
	SolvedAtSeconds    float64 `json:"solved_at_seconds"`
	MeanReturn100      float64 `json:"mean_return_100"`
	MeanReturn100N     int     `json:"mean_return_100_episodes"`
	MeanReturn100All   float64 `json:"mean_return_100_all"`
	ExperienceRejected uint64  `json:"experience_rejected"`
}

func newSummary(env string, seed uint64, st actors.RunStatus, wall time.Duration, started time.Time) summary {
	s := summary{
		Env: env, Seed: seed, EnvSteps: st.EnvSteps, Episodes: st.Episodes, LearnerUpdates: st.LearnerUpdates,
		WeightsVersion: st.WeightsVersion, WallSeconds: wall.Seconds(), Solved: st.Solved,
		MeanReturn100: actors.Finite(st.Mean100), MeanReturn100N: st.Mean100Count, MeanReturn100All: actors.Finite(st.Mean100All),
		ExperienceRejected: st.ExperienceRejected,
	}
	if st.Solved {
		s.SolvedAtEnvSteps = st.SolvedAtEnvSteps
		s.SolvedAtSeconds = st.SolvedAt.Sub(started).Seconds()
	}
	return s
}

// finite maps NaN (no episode yet) to 0: JSON has no NaN.

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
