package qfleet

// The run directory: where one training run leaves what a person looks at
// afterwards — the effective config, the learning curves as scalars, the
// summary and (when asked for) the checkpoints — so that runs never
// overwrite each other's files and 'qfleet plot' finds everything by the
// directory alone.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/freshdir"
	"github.com/qfleet/qfleet/internal/jsonl"
)

// Files of a run directory.
const (
	RunConfigFile     = "config.yaml"
	RunScalarsFile    = "scalars.jsonl"
	RunSummaryFile    = "summary.json"
	RunCheckpointsDir = "checkpoints"
	// BestCheckpointFile is the best-evaluated weights in the checkpoint
	// directory ('qfleet eval --best').
	BestCheckpointFile = actors.BestCheckpointFile
)

// runsRoot is the directory under which runs without --run-dir get one of
// their own. A variable so that tests keep their runs out of the source tree.
var RunsRoot = "runs"

// maxScalarsEvery bounds the interval between scalar records: curves stay
// fine-grained even when progress lines are rare or off.
const maxScalarsEvery = 2 * time.Second

// ErrRunDirTaken is returned for a --run-dir that holds a run already.
var ErrRunDirTaken = errors.New("holds a run already (scalars.jsonl): give a new --run-dir, or --resume to continue that run")

// defaultRunDirName is runs/<env>-<seed>-<UTC time>: env ids may contain
// slashes (MinAtar/Breakout-v1), which would nest directories.
func defaultRunDirName(env string, seed uint64, now time.Time) string {
	return fmt.Sprintf("%s-%d-%s", strings.ReplaceAll(env, "/", "_"), seed, now.UTC().Format("20060102T150405Z"))
}

// makeRunDir creates the run directory: dir when given (it may exist, but
// holds a run only when that run is resumed), else a new one under root,
// suffixed -2, -3, ... when runs of the same env and seed start within the
// same second.
func makeRunDir(dir string, resume bool, root, env string, seed uint64, now time.Time) (string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("--run-dir: %w", err)
		}
		if _, err := os.Stat(filepath.Join(dir, RunScalarsFile)); err == nil && !resume {
			return "", UsageError{fmt.Errorf("--run-dir %s %w", dir, ErrRunDirTaken)}
		}
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	d, err := freshdir.Make(filepath.Join(root, defaultRunDirName(env, seed, now)), 100)
	if err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	return d, nil
}

// setUpRunDir makes the run directory and fills in what defaults into it:
// it writes config.yaml (the effective config as the user set it, before the
// run directory's defaults, so that it can be given to --config for a new
// run), then points the summary and, when checkpoints were asked for without
// a directory, the checkpoints into it, and opens the scalars.
func (t *Run) setUpRunDir(now time.Time) error {
	_, statErr := os.Stat(t.runDir)
	existed := t.runDir != "" && statErr == nil
	dir, err := makeRunDir(t.runDir, t.resume, RunsRoot, t.cf.Env, t.cf.Seed, now)
	if err != nil {
		return err
	}
	t.runDir, t.madeRunDir = dir, !existed
	header := fmt.Sprintf("Effective config of the run in this directory (%s, started %s).\n"+
		"Command: %s\n"+
		"Give it to 'qfleet dev --config' to run it again in a new run directory.",
		t.cf.Env, now.UTC().Format(time.RFC3339), shellQuote(t.command))
	data, err := MarshalConfig(t.Effective(), header)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, RunConfigFile), data, 0o644); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if t.cf.Summary == "" {
		t.cf.Summary = filepath.Join(dir, RunSummaryFile)
		if err := os.WriteFile(t.cf.Summary, []byte("{}\n"), 0o644); err != nil {
			return fmt.Errorf("summary file: %w", err)
		}
	}
	if t.checkpointsAsked && t.cf.CheckpointDir == "" {
		t.cf.CheckpointDir = filepath.Join(dir, RunCheckpointsDir)
	}
	t.scalars, err = openScalars(filepath.Join(dir, RunScalarsFile))
	return err
}

// abandonStart undoes what a start that failed before training wrote (the
// run directory it made, the summary file it created), so that the same
// command runs once the cause is gone instead of finding "a run already".
func (t *Run) abandonStart(stderr io.Writer, name string) {
	t.closeScalars(stderr, name)
	if t.madeRunDir {
		if err := os.RemoveAll(t.runDir); err != nil {
			fmt.Fprintf(stderr, "qfleet %s: warning: removing the run directory of the failed start: %v\n", name, err)
		}
		t.madeRunDir = false
	}
	if t.madeSummary != "" {
		_ = os.Remove(t.madeSummary)
		t.madeSummary = ""
	}
}

// closeScalars closes scalars.jsonl; a write error there is worth a warning,
// not the run's failure: the summary and checkpoints still tell its result.
func (t *Run) closeScalars(stderr io.Writer, name string) {
	if t.scalars == nil {
		return
	}
	if err := t.scalars.close(); err != nil {
		fmt.Fprintf(stderr, "qfleet %s: warning: scalars: %v\n", name, err)
	}
	t.scalars = nil
}

// shellQuote joins args for a person to copy into a shell.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// scalar is one line of scalars.jsonl.
type Scalar struct {
	Step  uint64  `json:"step"`  // the run's env steps when it was taken
	Wall  float64 `json:"wall"`  // seconds since the run started (across resumes)
	Name  string  `json:"name"`  // mean100, env_steps_per_s, weights_lag/<runner>, ...
	Value float64 `json:"value"` // never NaN or ±Inf: undefined values are left out
}

// scalarWriter appends the run's scalars to scalars.jsonl: one write per
// record batch, so a reader (or a crash) sees whole lines.
type scalarWriter struct {
	f          *os.File
	path       string
	wallOffset float64 // the wall of the last record before a resume
	last       scalarRates
	// resumed: the learner's update count jumps to the checkpoint's some
	// moment after the start, so the first interval has no updates rate.
	resumed  bool
	evals    uint64 // evaluations already written (Metrics.EvalsSince)
	lastStep uint64 // the steps of the last record
	err      error  // the first write error; later records are dropped
}

type scalarRates struct {
	steps, updates uint64
	at             time.Time
}

// openScalars opens path for appending; when it holds records (a resumed
// run), the wall clock continues from the last one. A last line cut short
// (the previous process died mid-write) is cut off, so that the records
// appended after it stay whole lines.
func openScalars(path string) (*scalarWriter, error) {
	w := &scalarWriter{path: path}
	if data, err := os.ReadFile(path); err == nil {
		if n := len(data); n > 0 && data[n-1] != '\n' {
			data = data[:bytes.LastIndexByte(data, '\n')+1]
			if err := os.Truncate(path, int64(len(data))); err != nil {
				return nil, fmt.Errorf("run directory: %w", err)
			}
		}
		w.wallOffset = lastWall(data)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	w.f = f
	return w, nil
}

// lastWall is the wall of the last whole record in scalars data (0 if none).
func lastWall(data []byte) float64 {
	lines := bytes.Split(data, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var s Scalar
		if json.Unmarshal(lines[i], &s) == nil && s.Name != "" {
			return s.Wall
		}
	}
	return 0
}

// start sets the origin of the first rates.
func (w *scalarWriter) start(m *actors.Metrics, started time.Time, resumed bool) {
	st := m.NodeStatus()
	w.last = scalarRates{steps: st.EnvSteps, updates: st.LearnerUpdates, at: started}
	w.resumed = resumed
}

// record appends the scalars of this moment: what the node's roles know.
func (w *scalarWriter) record(m *actors.Metrics, roles []string, started, now time.Time) {
	if w.err != nil {
		return
	}
	st := m.NodeStatus()
	steps := m.RunSteps()
	wall := math.Round((w.wallOffset+now.Sub(started).Seconds())*1000) / 1000
	var recs []Scalar
	// Each evaluation once, at the env steps that triggered it (several
	// may have ended since the last record), first: they are behind the
	// steps of now. Steps never go back in the file: one triggered before
	// the last record but ended after it is written at that record's.
	var evals []actors.EvalStatus
	evals, w.evals = m.EvalsSince(w.evals)
	for _, e := range evals {
		at := min(max(e.EnvSteps, w.lastStep), steps)
		recs = append(recs, Scalar{Step: at, Wall: wall, Name: "eval_mean_return", Value: e.Mean},
			Scalar{Step: at, Wall: wall, Name: "eval_std_return", Value: e.Std})
	}
	w.lastStep = steps
	add := func(name string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			recs = append(recs, Scalar{Step: steps, Wall: wall, Name: name, Value: v})
		}
	}
	add("mean100", st.Mean100)
	add("mean100_all", st.Mean100All)
	// Rates count this process's steps: the steps before a resume arrive
	// with the checkpoint, at some moment after the start.
	if dt := now.Sub(w.last.at).Seconds(); dt > 0 {
		add("env_steps_per_s", float64(st.EnvSteps-min(w.last.steps, st.EnvSteps))/dt)
		if slices.Contains(roles, actors.RoleLearner) && !w.resumed {
			add("learner_updates_per_s", float64(st.LearnerUpdates-min(w.last.updates, st.LearnerUpdates))/dt)
		}
	}
	w.last = scalarRates{steps: st.EnvSteps, updates: st.LearnerUpdates, at: now}
	w.resumed = false
	if slices.Contains(roles, actors.RoleReplay) {
		add("replay_size", float64(st.ReplaySize))
	}
	if slices.Contains(roles, actors.RoleLearner) {
		if st.LearnerUpdates > 0 {
			add("learner_loss", gaugeValue(m.LearnerLoss))
		}
		names := make([]string, 0, len(st.Runners))
		for name := range st.Runners {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if lag, ok := actors.WeightsLag(st.WeightsVersion, st.Runners[name].WeightsVersion); ok {
				add("weights_lag/"+name, float64(lag))
			}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			w.err = err
			return
		}
	}
	if _, err := w.f.Write(b.Bytes()); err != nil {
		w.err = fmt.Errorf("%s: %w", w.path, err)
	}
}

// gaugeValue reads a gauge's current value.
func gaugeValue(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return math.NaN()
	}
	return m.GetGauge().GetValue()
}

// close ends the file and reports the first error of the run's writes.
func (w *scalarWriter) close() error {
	err := w.err
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", w.path, cerr)
	}
	return err
}

// ReadScalars reads a scalars.jsonl. A last line without its newline is a
// write cut short (the run was killed): it is left out, not an error.
func ReadScalars(path string) ([]Scalar, error) {
	return jsonl.Read(path, "scalar record", func(s *Scalar) error {
		if s.Name == "" {
			return errors.New("record without a name")
		}
		return nil
	})
}
