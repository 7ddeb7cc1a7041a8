package cli

// The sweep's results: results.jsonl (one row per ended trial, appended as
// trials end: the record a resumed sweep reads), results.tsv (the table of
// the spec's trials, rewritten after each) and the Markdown table printed at
// the end, best first.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	sweepResultsFile = "results.jsonl"
	sweepTableFile   = "results.tsv"
	sweepTrialsDir   = "trials"
)

// Trial statuses of a result row.
const (
	trialOK     = "ok"     // the run ended by its stop rules (target, max_steps, max_time)
	trialFailed = "failed" // its process failed; a resumed sweep runs it again
)

// sweepRow is one line of results.jsonl.
type sweepRow struct {
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
}

// readSweepResults reads results.jsonl; a missing file is no rows. A last
// line cut short (the sweep was killed mid-write) is left out.
func readSweepResults(path string) ([]sweepRow, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []sweepRow
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		text, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if text = bytes.TrimSpace(text); len(text) == 0 {
			continue
		}
		var row sweepRow
		if err := json.Unmarshal(text, &row); err != nil {
			return nil, fmt.Errorf("%s:%d: not a result row: %v", path, line, err)
		}
		if row.Key == "" {
			return nil, fmt.Errorf("%s:%d: result row without a key", path, line)
		}
		rows = append(rows, row)
	}
}

// appendSweepResult appends one row as one write: a crash leaves whole lines.
func appendSweepResult(path string, row sweepRow) error {
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

// latestByKey is the last row of each trial key: a failed trial that a
// resumed sweep ran again is recorded twice, and the newer row tells.
func latestByKey(rows []sweepRow) map[string]sweepRow {
	out := make(map[string]sweepRow, len(rows))
	for _, r := range rows {
		out[r.Key] = r
	}
	return out
}

// tableRows are the rows of the spec's trials that have one, in trial order,
// with the trial's current id.
func tableRows(trials []sweepTrial, byKey map[string]sweepRow) []sweepRow {
	var out []sweepRow
	for _, t := range trials {
		if r, ok := byKey[t.Key]; ok {
			r.Trial = t.ID
			out = append(out, r)
		}
	}
	return out
}

// paramKeys lists the param keys of rows, sorted.
func paramKeys(rows []sweepRow) []string {
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

// writeSweepTable writes results.tsv: a header and a row per trial, in trial
// order (atomically: a reader never sees half a table).
func writeSweepTable(path string, rows []sweepRow) error {
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
func bestFirst(rows []sweepRow) []sweepRow {
	out := slices.Clone(rows)
	val := func(r sweepRow) float64 {
		if r.BestMean100 == nil || r.Status != trialOK {
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

// markdownTable is the table printed at the end, best first.
func markdownTable(rows []sweepRow) string {
	keys := paramKeys(rows)
	var b strings.Builder
	head := append([]string{"#", "trial", "node"}, keys...)
	head = append(head, "seed", "best mean100", "final mean100", "solved", "env steps", "wall", "status")
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
		cols = append(cols, strconv.FormatUint(r.Seed, 10), optFloat(r.BestMean100), optFloat(r.FinalMean100),
			strconv.FormatBool(r.Solved), strconv.FormatUint(r.EnvSteps, 10), fmt.Sprintf("%.1fs", r.WallSeconds), status)
		for j := range cols {
			cols[j] = esc.Replace(cols[j])
		}
		b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
	}
	return b.String()
}

// trialLocalDir is where the sweep keeps a trial's files.
func trialLocalDir(out, trialID string) string {
	return filepath.Join(out, sweepTrialsDir, trialID)
}
