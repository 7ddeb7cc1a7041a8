package plot

// Reading a sweep's output directory ('qfleet sweep --out') for drawing:
// the state of each trial (the last row of its key in results.jsonl), its
// curve from trials/<id>/scalars.jsonl, and for a PBT member the pieces of
// that curve between the checkpoints it took from other members.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/sweep"
	"gonum.org/v1/plot/plotter"
	"gopkg.in/yaml.v3"
)

// specFile is the copy of its spec a sweep writes into its output
// directory when it starts.
const specFile = "spec.yaml"

// IsSweepDir reports whether dir is a sweep's output directory: one with
// results.jsonl, or with the spec a sweep writes before its first trial
// ends (a run directory has neither).
func IsSweepDir(dir string) bool {
	for _, name := range []string{sweep.ResultsFile, specFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

// sweepInfo is one sweep directory as drawn.
type sweepInfo struct {
	dir, name, env string
	trials         int // trials with a row, drawn or not
	rungs          []uint64
	pbt            bool
	best           *sweep.Row // the ok trial with the highest best mean100, drawn or not
}

// sweepTrial is a trial of a sweep as drawn.
type sweepTrial struct {
	sweep int       // its sweep's index
	row   sweep.Row // its latest row: its state
	// Its curve: one piece, or for a PBT member one per stretch between
	// the checkpoints it took (each starts where it resumed from one).
	pieces   []plotter.XYs
	exploits []exploit
	// A PBT member's checkpoints that another may have taken: the last
	// point of each segment, by the env steps its row recorded; nil when
	// its segments could not be told apart.
	checkpoints map[uint64]plotter.XY
}

// exploit is a PBT member going on from another member's checkpoint.
type exploit struct {
	step  sweep.LineageStep
	piece int // the member's piece that begins with it
}

// last is the trial's last point.
func (t sweepTrial) last() (plotter.XY, bool) {
	for i := len(t.pieces) - 1; i >= 0; i-- {
		if n := len(t.pieces[i]); n > 0 {
			return t.pieces[i][n-1], true
		}
	}
	return plotter.XY{}, false
}

// readSweep reads the trials of the sweep in dir and the curve of name of
// each. A trial without scalars (or without records of name) is left out
// with a line on warn; names collects the scalar names the trials have.
func readSweep(dir, name string, index int, warn io.Writer, names *[]string) (sweepInfo, []sweepTrial, error) {
	info := sweepInfo{dir: dir, name: filepath.Base(filepath.Clean(dir))}
	rows, err := sweep.ReadResults(filepath.Join(dir, sweep.ResultsFile))
	if err != nil {
		return info, nil, err
	}
	if len(rows) == 0 {
		return info, nil, fmt.Errorf("%s: no trial has a result yet (no rows in %s)", dir, sweep.ResultsFile)
	}
	readSpecNames(dir, &info)
	history := map[string][]sweep.Row{}
	for _, r := range rows {
		history[r.Key] = append(history[r.Key], r)
	}
	latest := sweep.LatestByKey(rows)
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	// By trial id: the order of the spec, as the sweep's tables list them.
	sort.Slice(keys, func(i, j int) bool { return latest[keys[i]].Trial < latest[keys[j]].Trial })
	info.trials = len(keys)
	var trials []sweepTrial
	for _, k := range keys {
		row := latest[k]
		if row.Status == sweep.StatusOK && row.BestMean100 != nil && (info.best == nil || *row.BestMean100 > *info.best.BestMean100) {
			info.best = &row
		}
		if len(row.Lineage) > 0 {
			info.pbt = true
		}
		for s := range row.Rungs {
			if at, err := strconv.ParseUint(s, 10, 64); err == nil && at > 0 && !slices.Contains(info.rungs, at) {
				info.rungs = append(info.rungs, at)
			}
		}
		path, recs, err := trialScalars(dir, row)
		if err != nil {
			fmt.Fprintf(warn, "qfleet plot: sweep %s: trial %s (%s): %v; left out\n", info.name, row.Trial, row.Status, err)
			continue
		}
		if info.env == "" {
			info.env = trialEnv(filepath.Dir(path))
		}
		t := sweepTrial{sweep: index, row: row}
		has := false
		for _, s := range recs {
			if !slices.Contains(*names, s.Name) {
				*names = append(*names, s.Name)
			}
			has = has || s.Name == name
		}
		if !has {
			fmt.Fprintf(warn, "qfleet plot: sweep %s: trial %s (%s): no %q records; left out\n", info.name, row.Trial, row.Status, name)
			continue
		}
		if len(row.Lineage) > 0 {
			if why := t.splitLineage(recs, name, history[k]); why != "" {
				fmt.Fprintf(warn, "qfleet plot: sweep %s: trial %s: %s; the exploits to and from it are not drawn\n", info.name, row.Trial, why)
			}
		} else {
			t.pieces = []plotter.XYs{sortedByX(points(recs, name, nil, -1))}
		}
		trials = append(trials, t)
	}
	slices.Sort(info.rungs)
	return info, trials, nil
}

// readSpecNames takes the sweep's name and env from the spec.yaml the sweep
// keeps beside its results, when it is there: titles only, so a spec that
// does not parse is not an error.
func readSpecNames(dir string, info *sweepInfo) {
	data, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return
	}
	var spec struct{ Name, Env string }
	if yaml.Unmarshal(data, &spec) == nil {
		if spec.Name != "" {
			info.name = spec.Name
		}
		info.env = spec.Env
	}
}

// trialEnv is the env of the run directory dir's config.yaml ("" if none).
func trialEnv(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, qfleet.RunConfigFile))
	if err != nil {
		return ""
	}
	var cf struct{ Env string }
	if yaml.Unmarshal(data, &cf) != nil {
		return ""
	}
	return cf.Env
}

// trialScalars finds and reads a trial's scalars.jsonl. Its row's
// local_dir is the path where the sweep wrote it, which is stale once the
// sweep directory has been moved or copied: the same name under this
// directory's trials/ comes first.
func trialScalars(dir string, row sweep.Row) (string, []qfleet.Scalar, error) {
	var cands []string
	if row.LocalDir != "" {
		cands = append(cands, filepath.Join(dir, sweep.TrialsDir, filepath.Base(row.LocalDir)))
	}
	cands = append(cands, filepath.Join(dir, sweep.TrialsDir, row.Trial))
	if row.LocalDir != "" {
		cands = append(cands, row.LocalDir)
	}
	for _, c := range cands {
		path := filepath.Join(c, qfleet.RunScalarsFile)
		recs, err := qfleet.ReadScalars(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return path, recs, err // a broken file names itself and its line
	}
	return "", nil, fmt.Errorf("no %s in %s", qfleet.RunScalarsFile, cands[0])
}

// points are the records of name as (step, value), of the records whose
// segment (in segs) is seg; all of them for seg < 0.
func points(recs []qfleet.Scalar, name string, segs []int, seg int) plotter.XYs {
	var xys plotter.XYs
	for i, s := range recs {
		if s.Name == name && (seg < 0 || segs[i] == seg) {
			xys = append(xys, plotter.XY{X: float64(s.Step), Y: s.Value})
		}
	}
	return xys
}

func sortedByX(xys plotter.XYs) plotter.XYs {
	slices.SortStableFunc(xys, func(a, b plotter.XY) int { return compareFloat(a.X, b.X) })
	return xys
}

// segments numbers each record of a segmented trial's scalars.jsonl by
// the segment (one 'qfleet dev' process) that wrote it, from 0. The sweep
// appends each segment's file to the trial's; a segment starts over in a
// run directory of its own, so its wall clock restarts, and its steps go
// back when it continues a checkpoint of fewer env steps. Neither shows a
// segment shorter than the first record's 2 s that goes on upwards: the
// first record of a resumed process does, leaving learner_updates_per_s
// out (its update count arrives with the checkpoint, not as a rate).
func segments(recs []qfleet.Scalar) []int {
	segs := make([]int, len(recs))
	seg := 0
	for i := 0; i < len(recs); {
		// The records of one moment share their wall (an evaluation's rows
		// come first, at the steps that triggered it).
		j := i + 1
		for j < len(recs) && recs[j].Wall == recs[i].Wall {
			j++
		}
		if i > 0 {
			prev := recs[i-1]
			rates, updates := false, false
			for _, s := range recs[i:j] {
				rates = rates || s.Name == "env_steps_per_s"
				updates = updates || s.Name == "learner_updates_per_s"
			}
			if recs[i].Wall < prev.Wall || recs[i].Step < prev.Step || (rates && !updates) {
				seg++
			}
		}
		for k := i; k < j; k++ {
			segs[k] = seg
		}
		i = j
	}
	return segs
}

// splitLineage cuts a PBT member's curve of name into pieces at the
// checkpoints it took, and finds the checkpoints it left. Each lineage
// step first shows in the row of the segment that ran after it (the
// exploit is decided once that member's row is written), so its piece
// begins with that segment. When the segments found in the file do not
// match the rows, the curve is only cut where its steps go back, and why
// is returned: its exploits, and those from it, are then not drawn.
func (t *sweepTrial) splitLineage(recs []qfleet.Scalar, name string, history []sweep.Row) (why string) {
	segs := segments(recs)
	found := 0
	if len(segs) > 0 {
		found = segs[len(segs)-1] + 1
	}
	startOf := map[int]int{} // lineage index → the segment that ran after it
	for _, r := range history {
		for k := 1; k < len(r.Lineage) && r.Segments > 0; k++ {
			if _, ok := startOf[k]; !ok {
				startOf[k] = r.Segments - 1
			}
		}
	}
	if found != t.row.Segments || len(startOf) != len(t.row.Lineage)-1 {
		var piece plotter.XYs
		for i, s := range recs {
			if i > 0 && s.Step < recs[i-1].Step && len(piece) > 0 {
				t.pieces = append(t.pieces, piece)
				piece = nil
			}
			if s.Name == name {
				piece = append(piece, plotter.XY{X: float64(s.Step), Y: s.Value})
			}
		}
		t.pieces = append(t.pieces, piece)
		return fmt.Sprintf("its %s shows %d segments, %s %d", qfleet.RunScalarsFile, found, sweep.ResultsFile, t.row.Segments)
	}
	// A member that takes a checkpoint goes on from the end of one of the
	// source's segments: the one whose row has the checkpoint's env steps.
	// Found by its row, not by x: a curve's steps are the run's records,
	// a row's what the segment's summary counted.
	t.checkpoints = map[uint64]plotter.XY{}
	for _, r := range history {
		if r.Segments == 0 {
			continue
		}
		if xys := points(recs, name, segs, r.Segments-1); len(xys) > 0 {
			t.checkpoints[r.EnvSteps] = xys[len(xys)-1]
		}
	}
	// Segment → piece: a piece per exploit, from the segment after it.
	starts := []int{0}
	for k := 1; k < len(t.row.Lineage); k++ {
		if s := startOf[k]; s > starts[len(starts)-1] {
			starts = append(starts, s)
		}
	}
	for p, s := range starts {
		var piece plotter.XYs
		end := found
		if p+1 < len(starts) {
			end = starts[p+1]
		}
		for seg := s; seg < end; seg++ {
			piece = append(piece, points(recs, name, segs, seg)...)
		}
		t.pieces = append(t.pieces, sortedByX(piece))
	}
	for k := 1; k < len(t.row.Lineage); k++ {
		// Two exploits before one segment: it went on from the later one.
		if p := slices.Index(starts, startOf[k]); p > 0 && (k+1 >= len(t.row.Lineage) || startOf[k+1] != startOf[k]) {
			t.exploits = append(t.exploits, exploit{step: t.row.Lineage[k], piece: p})
		}
	}
	return ""
}

// formatParams is params as k=v sorted by key, reals to 3 digits.
func formatParams(params map[string]any) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := params[k]
		if f, ok := v.(float64); ok {
			v = fmt.Sprintf("%.3g", f)
		}
		parts[i] = fmt.Sprintf("%s=%v", k, v)
	}
	return strings.Join(parts, " ")
}
