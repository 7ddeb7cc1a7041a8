package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/console"
)

const devHelp = `Usage: qfleet dev [flags]

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

%s
Flags:
`

var errHelp = errors.New("help shown")

// trainFlags are the training flags shared by `dev` and `node`.
type trainFlags struct {
	cfgPath, envID, httpAddr, ckptDir, summary, logLevel, runDir *string
	live, maxMemory, envCommand, envAddress, stopOn              *string
	seed, maxSteps                                               *uint64
	runners, envWorkers, envsPerRunner, evalEvery, evalEpisodes  *int
	target                                                       *float64
	progress, ckptEvery, snapEvery, maxTime                      *time.Duration
	resume, pprof                                                *bool
	fs                                                           *flag.FlagSet // the set these flags are on
}

func addTrainFlags(fs *flag.FlagSet) *trainFlags {
	return &trainFlags{
		fs:            fs,
		cfgPath:       fs.String("config", "", "YAML config `file` (flags override it)"),
		envID:         fs.String("env", qfleet.DefaultEnv, "environment `id` ("+strings.Join(envs.IDs(), ", ")+")"),
		envCommand:    fs.String("env-command", "", "your own env: a `program` serving it over the env protocol (e.g. \"python3 my_env.py\"; docs/env-protocol.md), started by each runner with the protocol on file descriptors 3 and 4, so its prints are free; --env names it (default: the id it gives)"),
		envAddress:    fs.String("env-address", "", "your own env, served by an env server already running at `host:port` (python3 my_env.py --listen host:port)"),
		envWorkers:    fs.Int("env-workers", 0, "with --env-command: worker processes per runner, each stepping a share of its envs_per_runner envs (default 1)"),
		seed:          fs.Uint64("seed", qfleet.DefaultSeed, "random seed of the run"),
		runners:       fs.Int("runners", 0, "env runner actors on this node (default from config: 1)"),
		envsPerRunner: fs.Int("envs-per-runner", 0, "envs each runner steps as one vector, one batched forward pass per step (default from config: 1)"),
		maxSteps:      fs.Uint64("max-steps", qfleet.DefaultMaxSteps, "stop after this many env steps"),
		evalEvery:     fs.Int("eval-every", 0, "run env steps between evaluations: greedy episodes of the newest weights on seeds of their own, by the evaluator role; the best evaluated weights are kept as best.ckpt (0: no evaluations; default from config: 5000, MinAtar 100000)"),
		evalEpisodes:  fs.Int("eval-episodes", 0, "episodes per evaluation (default from config: 10)"),
		stopOn:        fs.String("stop-on", qfleet.StopOnMean100, "what --target-return applies to: mean100, eval (an evaluation's mean return), or none (recorded, the run goes on to --max-steps or --max-time)"),
		maxTime:       fs.Duration("max-time", 0, "stop after this much wall time, e.g. 10m (0: no limit); the run ends as at --max-steps, with its checkpoint and summary"),
		target:        fs.Float64("target-return", math.NaN(), "stop when mean100 reaches this return (default: the env's reward threshold)"),
		httpAddr:      fs.String("http", "", "serve the dashboard (/), /metrics, /status and /history on this `address` (e.g. 127.0.0.1:9090)"),
		pprof:         fs.Bool("pprof", false, "also serve the Go profiles (net/http/pprof) at /debug/pprof/ on the --http address; off by default, because profiles reveal the program's internals to anyone who reaches the port and taking them costs CPU"),
		ckptDir:       fs.String("checkpoint-dir", "", "write learner checkpoints (periodic and final) to this `directory` (default: none, or RUN_DIR/checkpoints when --checkpoint-every, --replay-snapshot-every or --resume is given)"),
		ckptEvery:     fs.Duration("checkpoint-every", qfleet.DefaultCheckpointEvery, "interval of periodic learner checkpoints (0: only at the end); giving it turns checkpoints on"),
		snapEvery:     fs.Duration("replay-snapshot-every", 0, "interval of replay snapshots into the checkpoint directory, restored by --resume and by a restarted replay (0: none)"),
		resume:        fs.Bool("resume", false, "continue the run from the newest checkpoint (and replay snapshot) in --checkpoint-dir, or in --run-dir's checkpoints"),
		summary:       fs.String("summary", "", "write a JSON summary of the run to this `file` at exit (default: RUN_DIR/summary.json)"),
		runDir:        fs.String("run-dir", "", "run `directory`: config.yaml, scalars.jsonl, summary.json, checkpoints/ (default: a new "+qfleet.RunsRoot+"/<env>-<seed>-<UTC time>)"),
		progress:      fs.Duration("progress", 0, "interval between progress log lines on stderr, for logs kept in files (0: none)"),
		live:          fs.String("live", console.LiveAuto, "the live progress line on stderr (bar, rates, mean100, ETA): auto (only when stdout and stderr are terminals), always or never"),
		logLevel:      fs.String("log-level", qfleet.DefaultLogLevel, "log level: debug, info, warn, error"),
		maxMemory:     fs.String("max-memory", qfleet.DefaultMaxMemory, "memory this node may plan to use, e.g. 16GiB or 500MB; a config needing more (by the estimate 'qfleet config print' shows) is refused before anything is allocated; auto: 80% of the machine's memory or cgroup limit; 0: no limit"),
	}
}

// defaultsOf are the env and the cluster profile of the run before the
// rest is resolved, for the defaults they decide: each its flag when given
// (fs has no profile flag in 'qfleet dev'), else the config file's key,
// else CartPole-v1 and wan.
func (tf *trainFlags) defaultsOf(fs *flag.FlagSet) (env, profile string, err error) {
	env, profile = qfleet.DefaultEnv, cluster.ProfileWAN
	var file struct {
		Env     string `yaml:"env"`
		Profile string `yaml:"profile"`
	}
	if *tf.cfgPath != "" {
		data, err := os.ReadFile(*tf.cfgPath)
		if err != nil {
			return "", "", usageError{fmt.Errorf("config %s: %w", *tf.cfgPath, err)}
		}
		if yaml.Unmarshal(data, &file) != nil {
			file.Env, file.Profile = "", "" // a broken file is LoadConfig's to report
		}
	}
	if file.Env != "" {
		env = file.Env
	}
	if file.Profile != "" {
		profile = file.Profile
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "env":
			env = *tf.envID
		case "profile":
			profile = f.Value.String()
		}
	})
	return env, profile, nil
}

// resolve is the run the flags and the config file ask for: the defaults
// for the env (and the cluster profile: its weights budget), then the
// file, then the flags given on the command line.
func (tf *trainFlags) resolve(fs *flag.FlagSet, command []string) (*qfleet.Run, error) {
	// The defaults depend on the env and the profile, named by the flags or
	// else the file.
	envID, profile, err := tf.defaultsOf(fs)
	if err != nil {
		return nil, err
	}
	cf := qfleet.DefaultConfigForProfile(envID, profile)
	if *tf.cfgPath != "" {
		if err := qfleet.LoadConfig(*tf.cfgPath, &cf); err != nil {
			return nil, usageError{err}
		}
		// Settings that are flags (run_dir, join, ...) go to the flags, so
		// that the code below and the command's own flags read them there.
		if err := applySettings(cf.CommandSettings, tf.fs, *tf.cfgPath); err != nil {
			return nil, usageError{err}
		}
	}
	o := qfleet.Options{Resume: *tf.resume, ConfigPath: *tf.cfgPath, Command: command}
	// Flags given on the command line override the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "max-time":
			cf.MaxTime = tf.maxTime.String()
		case "env":
			cf.Env = *tf.envID
		case "env-command":
			cf.EnvCommand = *tf.envCommand
		case "env-address":
			cf.EnvAddress = *tf.envAddress
		case "env-workers":
			cf.EnvWorkers = *tf.envWorkers
		case "seed":
			cf.Seed = *tf.seed
		case "runners":
			cf.Runners = *tf.runners
		case "envs-per-runner":
			cf.EnvsPerRunner = *tf.envsPerRunner
		case "max-steps":
			cf.MaxSteps = *tf.maxSteps
		case "eval-every":
			cf.EvalEvery = *tf.evalEvery
		case "eval-episodes":
			cf.EvalEpisodes = *tf.evalEpisodes
		case "stop-on":
			cf.StopOn = *tf.stopOn
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
			cf.Progress = tf.progress.String()
		case "live":
			cf.Live = *tf.live
		case "log-level":
			cf.LogLevel = *tf.logLevel
		case "checkpoint-every":
			o.Checkpoints = true // given, even at its default: checkpoints on
		}
	})
	// The effective command settings: the file's, under the flags given.
	settingsFromFlags(&cf.CommandSettings, tf.fs)
	if *tf.pprof && cf.HTTP == "" { // only the flag: a file's pprof without http (a sweep trial's) serves nothing, harmlessly
		return nil, usageError{errors.New("--pprof serves on the --http address: give --http too")}
	}
	for name, d := range map[string]time.Duration{"max-time": *tf.maxTime, "checkpoint-every": *tf.ckptEvery, "replay-snapshot-every": *tf.snapEvery} {
		if d < 0 {
			return nil, usageError{fmt.Errorf("--%s must be >= 0", name)}
		}
	}
	return qfleet.NewRun(cf, o)
}

func runDev(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet dev", flag.ContinueOnError)
	tf := addTrainFlags(fs)
	if err := parseFlags(fs, fmt.Sprintf(devHelp, netsHelp()), args, stdout, stderr); err != nil {
		return err
	}
	t, err := tf.resolve(fs, append([]string{"qfleet", "dev"}, args...))
	if err != nil {
		return err
	}
	_, err = t.Dev(stdout, stderr)
	return err
}
