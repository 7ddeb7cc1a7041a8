package sweep

// The sweep's results: results.jsonl (one row per ended trial, appended as
// trials end: the record a resumed sweep reads), results.tsv (the table of
// the spec's trials, rewritten after each) and the Markdown table printed at
// the end, best first.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/internal/jsonl"
	"github.com/qfleet/qfleet/messages"
)

// The files of a sweep's output directory (Options.Out), for programs that
// read a sweep's results.
const (
	ResultsFile = "results.jsonl" // a Row per ended trial, as ReadResults reads it
	TableFile   = "results.tsv"   // the table of the trials, as WriteTable writes it
	TrialsDir   = "trials"        // the trials' run directories, trials/<id>
)

// Trial statuses of a result row.
const (
	StatusOK     = "ok"     // the run ended by its stop rules (target, max_steps, max_time)
	StatusFailed = "failed" // its process failed; a resumed sweep runs it again
	StatusPruned = "pruned" // its scheduler (ASHA) stopped it at a rung, below the top there
	StatusPaused = "paused" // ASHA's promotion form: at a rung, with a checkpoint, waiting to go on (a resumed sweep continues it)
)

// PauseDir is where a paused trial's checkpoint files are kept, in its
// directory under the sweep's (trials/<id>/pause).
const PauseDir = "pause"

// Row is one ended trial, a line of results.jsonl: what a sweep records, a
// resumed sweep reads back (by Key), and the tables show.
type Row struct {
	Trial        string         `json:"trial"`
	Key          string         `json:"key"`
	Params       map[string]any `json:"params"`
	Seed         uint64         `json:"seed"`
	Node         string         `json:"node"`
	Status       string         `json:"status"`
	Solved       bool           `json:"solved"`
	TimedOut     bool           `json:"timed_out,omitempty"`
	FinalMean100 *float64       `json:"final_mean100"` // null: no mean100 yet at the end
	BestMean100  *float64       `json:"best_mean100"`
	EnvSteps     uint64         `json:"env_steps"`
	WallSeconds  float64        `json:"wall_seconds"`
	Attempt      int            `json:"attempt"`
	RunDir       string         `json:"run_dir"`             // on the node that ran it
	LocalDir     string         `json:"local_dir,omitempty"` // the copy under the sweep's directory
	Error        string         `json:"error,omitempty"`
	Finished     string         `json:"finished"` // RFC 3339, UTC
	// With a scheduler: the trial's mean100 at each rung it passed, by the
	// rung's env steps (null: none yet), and the rung that stopped it.
	Rungs    map[string]*float64 `json:"rungs,omitempty"`
	PrunedAt uint64              `json:"pruned_at,omitempty"`
	// ASHA's promotion form: the segments the trial ran (one per rung it
	// reached). Its files under the sweep's directory are then the whole
	// trial: scalars.jsonl of every segment, the last one's summary.
	Segments int `json:"segments,omitempty"`
	// PBT: the member's changes (the first: its start, with the params it
	// was drawn with), and the env steps it ran itself (env_steps are its
	// checkpoint's, which count those of the members it copied).
	Lineage    []LineageStep `json:"lineage,omitempty"`
	TrialSteps uint64        `json:"trial_steps,omitempty"`
}

// trialNotes is what the coordinator adds to a trial's result: what its
// scheduler saw and did.
type trialNotes struct {
	Rungs    map[string]*float64
	PrunedAt uint64 // 0: not pruned
	Why      string
	// ASHA's promotion form: the result is a segment's. Segment counts the
	// segments before it, whose wall time and best mean100 the row adds up;
	// Pause: the trial pauses at a rung with this checkpoint, kept in the
	// trial's directory so that a resumed sweep can continue it.
	Segmented         bool
	Segment           int
	EarlierWall       float64
	EarlierBest       *float64
	Pause             bool
	Checkpoint, Snaps []byte
	// PBT: the member's params now (nil: the trial's), its lineage, and
	// the env steps it ran itself.
	Params     map[string]any
	Lineage    []LineageStep
	TrialSteps uint64
}

// ReadResults reads results.jsonl; a missing file is no rows. A last
// line cut short (the sweep was killed mid-write) is left out.
func ReadResults(path string) ([]Row, error) {
	rows, err := jsonl.Read(path, "result row", func(r *Row) error {
		if r.Key == "" {
			return errors.New("result row without a key")
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return rows, err
}

// appendResult appends one row as one write: a crash leaves whole lines.
func appendResult(path string, row Row) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LatestByKey is the last row of each trial key: a failed trial that a
// resumed sweep ran again is recorded twice, and the newer row tells.
func LatestByKey(rows []Row) map[string]Row {
	out := make(map[string]Row, len(rows))
	for _, r := range rows {
		out[r.Key] = r
	}
	return out
}

// tableRows are the rows of the spec's trials that have one, in trial order,
// with the trial's current id.
func tableRows(trials []Trial, byKey map[string]Row) []Row {
	var out []Row
	for _, t := range trials {
		if r, ok := byKey[t.Key]; ok {
			r.Trial = t.ID
			out = append(out, r)
		}
	}
	return out
}

// paramKeys lists the param keys of rows, sorted.
func paramKeys(rows []Row) []string {
	var keys []string
	for _, r := range rows {
		for k := range r.Params {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func optFloat(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

// WriteTable writes rows as results.tsv writes them: a header and a row
// per trial, in the order given, a column per param (atomically: a reader
// never sees half a table).
func WriteTable(path string, rows []Row) error {
	keys := paramKeys(rows)
	var b bytes.Buffer
	head := append([]string{"trial", "node", "status", "seed"}, keys...)
	head = append(head, "best_mean100", "final_mean100", "solved", "env_steps", "wall_seconds", "attempt", "run_dir", "error")
	b.WriteString(strings.Join(head, "\t") + "\n")
	clean := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	for _, r := range rows {
		cols := []string{r.Trial, r.Node, r.Status, strconv.FormatUint(r.Seed, 10)}
		for _, k := range keys {
			v, ok := r.Params[k]
			if !ok {
				cols = append(cols, "")
				continue
			}
			cols = append(cols, formatParam(v))
		}
		cols = append(cols, optFloat(r.BestMean100), optFloat(r.FinalMean100), strconv.FormatBool(r.Solved),
			strconv.FormatUint(r.EnvSteps, 10), strconv.FormatFloat(r.WallSeconds, 'f', 1, 64), strconv.Itoa(r.Attempt), r.RunDir, r.Error)
		for i := range cols {
			cols[i] = clean.Replace(cols[i])
		}
		b.WriteString(strings.Join(cols, "\t") + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// bestFirst sorts rows by best mean100, highest first; rows without one
// (and failed ones) last, then by trial id.
func bestFirst(rows []Row) []Row {
	out := slices.Clone(rows)
	val := func(r Row) float64 {
		if r.BestMean100 == nil || r.Status != StatusOK {
			return math.Inf(-1)
		}
		return *r.BestMean100
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := val(out[i]), val(out[j])
		if a != b {
			return a > b
		}
		return out[i].Trial < out[j].Trial
	})
	return out
}

// MarkdownTable is rows as the table a sweep prints at its end: best
// mean100 first (failed trials and those without one last), a column per
// param.
func MarkdownTable(rows []Row) string {
	keys := paramKeys(rows)
	var b strings.Builder
	head := append([]string{"#", "trial", "node"}, keys...)
	head = append(head, "seed", "best mean100", "final mean100", "solved", "env steps", "wall", "status")
	lineage := slices.ContainsFunc(rows, func(r Row) bool { return len(r.Lineage) > 1 })
	if lineage {
		head = append(head, "lineage (own env steps←source@its env steps)")
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(head)) + "\n")
	esc := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ")
	for i, r := range bestFirst(rows) {
		cols := []string{strconv.Itoa(i + 1), r.Trial, r.Node}
		for _, k := range keys {
			if v, ok := r.Params[k]; ok {
				cols = append(cols, formatParam(v))
			} else {
				cols = append(cols, "")
			}
		}
		status := r.Status
		if r.TimedOut {
			status += " (max_time)"
		}
		if r.Error != "" {
			status += ": " + r.Error
		}
		steps := r.EnvSteps
		if r.TrialSteps > 0 {
			steps = r.TrialSteps // a PBT member's own: its checkpoint's count those of the members it copied
		}
		cols = append(cols, strconv.FormatUint(r.Seed, 10), optFloat(r.BestMean100), optFloat(r.FinalMean100),
			strconv.FormatBool(r.Solved), strconv.FormatUint(steps, 10), fmt.Sprintf("%.1fs", r.WallSeconds), status)
		if lineage {
			cols = append(cols, lineageString(r.Lineage))
		}
		for j := range cols {
			cols[j] = esc.Replace(cols[j])
		}
		b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
	}
	return b.String()
}

// trialLocalDir is where the sweep keeps a trial's files.
func trialLocalDir(out, trialID string) string {
	return filepath.Join(out, TrialsDir, trialID)
}

// recorder writes a trial's result: its files under the sweep's
// directory (when it ran elsewhere), a row of results.jsonl, results.tsv.
type recorder struct {
	path, outDir string
	rows         []Row
	trials       []Trial
}

func (r *recorder) record(t Trial, res *messages.TrialResult, notes trialNotes) (Row, string, error) {
	row, err := r.resultRow(t, res, notes)
	if err != nil {
		return Row{}, "", err
	}
	if err := r.keepFiles(t, res, notes, &row); err != nil {
		return Row{}, "", err
	}
	if err := r.append(row); err != nil {
		return Row{}, "", err
	}
	line := fmt.Sprintf("%s finished on %s: best mean100 %s, final %s, %d env steps, %.1fs", t.ID, row.Node,
		optFloat(row.BestMean100), optFloat(row.FinalMean100), row.EnvSteps, row.WallSeconds)
	switch {
	case row.Status == StatusPaused:
		line = fmt.Sprintf("%s paused on %s: mean100 %s at %d env steps, %.1fs", t.ID, row.Node, optFloat(row.FinalMean100), row.EnvSteps, row.WallSeconds)
	case row.Status == StatusPruned:
		line += " (pruned: " + notes.Why + ")"
	case row.TimedOut:
		line += " (stopped at max_time)"
	}
	if row.Status == StatusFailed {
		line = fmt.Sprintf("%s failed on %s: %s", t.ID, row.Node, row.Error)
	}
	// The node's name and its error are the worker's: a line break in them
	// would write lines of the sweep's log that the sweep never wrote.
	return row, escapeNewlines(line), nil
}

// mark records a row as given (a paused trial that was never promoted,
// now pruned), and drops the checkpoint it was paused with.
func (r *recorder) mark(row Row) error {
	if row.LocalDir != "" {
		_ = os.RemoveAll(filepath.Join(row.LocalDir, PauseDir))
	}
	return r.append(row)
}

// append adds a row to results.jsonl and rewrites results.tsv.
func (r *recorder) append(row Row) error {
	if err := appendResult(r.path, row); err != nil {
		return err
	}
	r.rows = append(r.rows, row)
	return WriteTable(filepath.Join(r.outDir, TableFile), tableRows(r.trials, LatestByKey(r.rows)))
}

// resultRow is the row of a trial's result.
func (r *recorder) resultRow(t Trial, res *messages.TrialResult, notes trialNotes) (Row, error) {
	// Every field is the worker's. A float JSON cannot hold (NaN, ±Inf)
	// would make the row unwritable, and that error stops the sweep: such a
	// wall time counts as unknown (0), such a best mean100 as none.
	wall := res.WallSeconds
	if !(wall >= 0 && wall <= math.MaxFloat64) {
		wall = 0
	}
	row := Row{Trial: t.ID, Key: t.Key, Params: t.Params, Seed: t.Seed, Node: res.Node, Status: StatusOK,
		TimedOut: res.TimedOut, WallSeconds: wall, Attempt: int(res.Attempt), RunDir: res.RunDir,
		Finished: time.Now().UTC().Format(time.RFC3339)}
	row.Rungs = notes.Rungs
	if notes.Params != nil {
		row.Params, row.Lineage, row.TrialSteps = notes.Params, notes.Lineage, notes.TrialSteps
	}
	switch {
	case !res.Ok:
		row.Status, row.Error = StatusFailed, res.Error
	case notes.PrunedAt > 0:
		row.Status, row.PrunedAt = StatusPruned, notes.PrunedAt
	case notes.Pause:
		row.Status = StatusPaused
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
	if notes.EarlierBest != nil && (row.BestMean100 == nil || *notes.EarlierBest > *row.BestMean100) {
		b := *notes.EarlierBest
		row.BestMean100 = &b
	}
	if row.FinalMean100 != nil && (row.BestMean100 == nil || *row.FinalMean100 > *row.BestMean100) {
		b := *row.FinalMean100
		row.BestMean100 = &b
	}
	if notes.Segmented {
		row.Segments = notes.Segment + 1
		if w := row.WallSeconds + notes.EarlierWall; w <= math.MaxFloat64 {
			row.WallSeconds = w
		}
	}
	return row, nil
}

// keepFiles keeps a trial's files with the sweep: a trial that ran
// elsewhere sent them, and a segmented trial's segments are gathered in
// one directory (each segment ran in a run directory of its own).
func (r *recorder) keepFiles(t Trial, res *messages.TrialResult, notes trialNotes, row *Row) error {
	local := trialLocalDir(r.outDir, t.ID)
	inPlace := filepath.Clean(res.RunDir) == local && isLocalPath(res.RunDir)
	if rel, err := filepath.Rel(filepath.Join(r.outDir, TrialsDir), res.RunDir); !notes.Segmented && err == nil && !strings.HasPrefix(rel, "..") && isLocalPath(res.RunDir) {
		inPlace = true
		local = res.RunDir
	}
	row.LocalDir = local
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	if !inPlace {
		files := map[string][]byte{qfleet.RunSummaryFile: res.SummaryJson, qfleet.RunConfigFile: res.ConfigYaml}
		if notes.Segment == 0 {
			files[qfleet.RunScalarsFile] = res.ScalarsJsonl
		} else if err := appendFile(filepath.Join(local, qfleet.RunScalarsFile), res.ScalarsJsonl); err != nil {
			return err // a later segment's curve goes on from the one before
		}
		for name, data := range files {
			if len(data) > 0 {
				if err := os.WriteFile(filepath.Join(local, name), data, 0o644); err != nil {
					return err
				}
			}
		}
	}
	pause := filepath.Join(local, PauseDir)
	if !notes.Pause {
		return os.RemoveAll(pause)
	}
	return writeResumeFiles(pause, notes.Checkpoint, notes.Snaps)
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isLocalPath reports whether path exists on this machine (a trial run by a
// local worker; a remote node's path under the same directory name would not
// hold this trial's files).
func isLocalPath(path string) bool {
	_, err := os.Stat(filepath.Join(path, qfleet.RunConfigFile))
	return err == nil
}
