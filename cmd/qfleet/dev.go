package main

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
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
)

var errHelp = errors.New("help shown")

// runOptions are the settings of one training run that are not
// hyper-parameters. The YAML config file may set them too.
type runOptions struct {
	Env           string   `yaml:"env"`
	Seed          uint64   `yaml:"seed"`
	MaxSteps      uint64   `yaml:"max_steps"`
	TargetReturn  *float64 `yaml:"target_return"` // nil: the env's reward threshold
	HTTP          string   `yaml:"http"`
	CheckpointDir string   `yaml:"checkpoint_dir"`
	Summary       string   `yaml:"summary"`
	Progress      string   `yaml:"progress"` // interval between progress lines, e.g. "2s"; "0" turns them off
	LogLevel      string   `yaml:"log_level"`
}

// configFile is the YAML config: run options and the hyper-parameters, flat.
type configFile struct {
	runOptions    `yaml:",inline"`
	actors.Config `yaml:",inline"`
}

const devHelp = `Usage: qfleet dev [flags]

Trains a DQN agent with every role in this process: env runners stream
experience to the replay, the learner trains on samples and publishes weights,
the broadcaster hands the newest weights to the runners. The run stops when
mean100 (the mean return of the last 100 episodes played at ε ≤ 0.05) reaches
the target return, or at --max-steps env steps.

Settings come from the defaults, then --config FILE (YAML; keys are the
snake_case names of the flags and of the hyper-parameters in actors.Config),
then the flags given on the command line.

Flags:
`

func runDev(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout) // asked-for help goes to stdout, like 'qfleet help'
		}
	}
	var (
		cfgPath  = fs.String("config", "", "YAML config `file` (flags override it)")
		envID    = fs.String("env", "CartPole-v1", "environment `id` ("+strings.Join(envs.IDs(), ", ")+")")
		seed     = fs.Uint64("seed", 1, "random seed of the run")
		runners  = fs.Int("runners", 0, "env runner actors (default from config: 1)")
		maxSteps = fs.Uint64("max-steps", 500_000, "stop after this many env steps")
		target   = fs.Float64("target-return", math.NaN(), "stop when mean100 reaches this return (default: the env's reward threshold)")
		httpAddr = fs.String("http", "", "serve /metrics, /status and / on this `address` (e.g. 127.0.0.1:9090)")
		ckptDir  = fs.String("checkpoint-dir", "", "write the final learner checkpoint to this `directory`")
		summary  = fs.String("summary", "", "write a JSON summary of the run to this `file` at exit")
		progress = fs.Duration("progress", 2*time.Second, "interval between progress lines on stderr (0 turns them off)")
		logLevel = fs.String("log-level", "warn", "log level: debug, info, warn, error")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	cf := configFile{Config: actors.DefaultConfig()}
	cf.Env, cf.Seed, cf.MaxSteps, cf.Progress, cf.LogLevel = "CartPole-v1", 1, 500_000, "2s", "warn"
	if *cfgPath != "" {
		if err := loadConfig(*cfgPath, &cf); err != nil {
			return usageError{err}
		}
	}
	// Flags given on the command line override the file.
	var progressEvery time.Duration
	if d, err := time.ParseDuration(cf.Progress); err == nil || cf.Progress == "0" {
		progressEvery = d
	} else {
		return usageError{fmt.Errorf("config %s: progress = %q: not a duration", *cfgPath, cf.Progress)}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "env":
			cf.Env = *envID
		case "seed":
			cf.Seed = *seed
		case "runners":
			cf.Runners = *runners
		case "max-steps":
			cf.MaxSteps = *maxSteps
		case "target-return":
			cf.TargetReturn = target
		case "http":
			cf.HTTP = *httpAddr
		case "checkpoint-dir":
			cf.CheckpointDir = *ckptDir
		case "summary":
			cf.Summary = *summary
		case "progress":
			progressEvery = *progress
		case "log-level":
			cf.LogLevel = *logLevel
		}
	})
	env, err := envs.Make(cf.Env)
	if err != nil {
		return usageError{err}
	}
	if err := cf.Config.Validate(); err != nil {
		return usageError{err}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cf.LogLevel)); err != nil {
		return usageError{fmt.Errorf("log level %q: want debug, info, warn or error", cf.LogLevel)}
	}
	targetReturn := env.Spec().RewardThreshold
	if cf.TargetReturn != nil && !math.IsNaN(*cf.TargetReturn) {
		targetReturn = *cf.TargetReturn
	}
	if cf.Summary != "" {
		// Fail before training, not after it, if the summary cannot be written.
		if err := os.WriteFile(cf.Summary, []byte("{}\n"), 0o644); err != nil {
			return fmt.Errorf("summary file: %w", err)
		}
	}
	var ln net.Listener
	if cf.HTTP != "" {
		if ln, err = net.Listen("tcp", cf.HTTP); err != nil {
			return fmt.Errorf("--http %s: %w", cf.HTTP, err)
		}
	}

	// The learner allocates a few short-lived tensors per update; fewer GC
	// cycles buy 10-30% learner throughput (NOTES-deps.md, BENCHMARKS.md).
	debug.SetGCPercent(400)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	dev, err := actors.StartDev(actors.DevOptions{
		EnvID: cf.Env, Seed: cf.Seed, Config: cf.Config,
		Stop:          actors.StopRule{TargetReturn: targetReturn, MaxEnvSteps: cf.MaxSteps},
		CheckpointDir: cf.CheckpointDir, Logger: logger,
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	if ln != nil {
		srv := &http.Server{Handler: newHTTPHandler("dev", dev.Metrics, dev.Started), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln) //nolint:errcheck // returns when the listener closes at exit
		defer srv.Close()
	}
	fmt.Fprintf(stderr, "qfleet dev: %s seed %d, target mean100 %.4g, max %d env steps, %d runner(s), net %v\n",
		cf.Env, cf.Seed, targetReturn, cf.MaxSteps, cf.Runners, dev.Net)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var tick <-chan time.Time
	if progressEvery > 0 {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		tick = t.C
	}
	prog := newProgress(dev.Metrics, dev.Started)
	interrupted := false
wait:
	for {
		select {
		case <-dev.Done():
			break wait
		case s := <-sig:
			fmt.Fprintf(stderr, "qfleet dev: %v: stopping\n", s)
			interrupted = true
			break wait
		case <-tick:
			fmt.Fprintln(stderr, prog.line())
		}
	}
	wall := time.Since(dev.Started)
	st := dev.Metrics.Status()
	var ckptErr error
	if cf.CheckpointDir != "" {
		var path string
		if path, ckptErr = dev.SaveCheckpoint(30 * time.Second); ckptErr == nil {
			fmt.Fprintf(stderr, "qfleet dev: checkpoint written to %s\n", path)
		}
	}
	dev.Stop()
	fmt.Fprintln(stderr, prog.line())
	res := newSummary(cf.Env, cf.Seed, st, wall, dev.Started)
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

func seedStr(s uint64) string { return fmt.Sprintf("seed=%d", s) }

// loadConfig reads a YAML config strictly: unknown keys are errors that name
// the key, so a typo never silently falls back to a default.
func loadConfig(path string, cf *configFile) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(cf)
	var te *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("config %s: %s", path, typeErrorText(data, te))
	default:
		return fmt.Errorf("config %s: %w", path, err)
	}
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
		MeanReturn100: finite(st.Mean100), MeanReturn100N: st.Mean100Count, MeanReturn100All: finite(st.Mean100All),
		ExperienceRejected: st.ExperienceRejected,
	}
	if st.Solved {
		s.SolvedAtEnvSteps = st.SolvedAtEnvSteps
		s.SolvedAtSeconds = st.SolvedAt.Sub(started).Seconds()
	}
	return s
}

// finite maps NaN (no episode yet) to 0: JSON has no NaN.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
