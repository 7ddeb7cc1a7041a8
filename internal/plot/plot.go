// Package plot draws the learning curves of run directories into a PNG
// ('qfleet plot'): one line per run, or the mean and min–max band of runs
// that differ only by seed; or the trials of sweeps, coloured by outcome,
// with the exploits of PBT members.
package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/sweep"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gopkg.in/yaml.v3"
)

// Plot sizes outside these bounds are refused: the image is held in memory.
const (
	MinPixels = 100
	MaxPixels = 10000
)

// plotRun is one run directory's curve of the plotted scalar.
type plotRun struct {
	dir   string
	env   string // from config.yaml; "" when it has none
	seed  string
	group string // runs with the same group differ only by seed
	xys   plotter.XYs
	// The run's evaluations (the evaluator role): mean return and its
	// standard deviation, by the env steps (or wall time) they were taken at.
	eval    plotter.XYs
	evalStd []float64
}

// EvalName is the scalar of the evaluations' mean return; plotting it (or
// mean100) draws each run's evaluations with a ± one standard deviation
// band. "eval" is short for it.
const EvalName = "eval_mean_return"

// Options say what to draw.
type Options struct {
	Out           string // the .png file
	Name          string // the scalar: mean100, learner_loss, ...
	ByTime        bool   // x is wall seconds, not env steps
	Width, Height int    // pixels, in [MinPixels, MaxPixels]
}

// Draw reads the scalars of the run directories and draws o.Name of each
// into o.Out. Runs without records of o.Name are left out, with a line on
// warn; none with any is an error listing the names the runs have. When
// dirs are sweep directories (IsSweepDir), it draws their trials instead,
// coloured by outcome; sweeps and runs together are an error.
func Draw(dirs []string, o Options, warn io.Writer) error {
	if o.Name == "eval" {
		o.Name = EvalName
	}
	var sweeps, others []string
	for _, dir := range dirs {
		if IsSweepDir(dir) {
			sweeps = append(sweeps, dir)
		} else {
			others = append(others, dir)
		}
	}
	switch {
	case len(sweeps) > 0 && len(others) > 0:
		return fmt.Errorf("%s is a sweep directory (it has %s) and %s is not: draw sweeps or run directories, not both in one plot", sweeps[0], sweep.ResultsFile, others[0])
	case len(sweeps) > 0:
		return drawSweeps(sweeps, o, warn)
	}
	var runs []plotRun
	var without []string    // runs with no records of name (yet): left out
	namesSeen := []string{} // the names the runs have, for the error below
	for _, dir := range dirs {
		r, names, err := loadPlotRun(dir, o.Name, o.ByTime)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !slices.Contains(namesSeen, n) {
				namesSeen = append(namesSeen, n)
			}
		}
		if len(r.xys) == 0 {
			without = append(without, dir)
			continue
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		slices.Sort(namesSeen)
		return fmt.Errorf("no run has %q records; the runs have: %s", o.Name, strings.Join(namesSeen, ", "))
	}
	for _, dir := range without {
		fmt.Fprintf(warn, "qfleet plot: %s: no %q records; left out\n", dir, o.Name)
	}
	p, err := makePlot(runs, o.Name, o.ByTime, o.Height)
	if err != nil {
		return err
	}
	return savePNG(p, o.Out, o.Width, o.Height)
}

// loadPlotRun reads dir's scalars (the records of name, x by steps or by
// wall time) and config.yaml; names are the scalar names the run has.
func loadPlotRun(dir, name string, byTime bool) (r plotRun, names []string, err error) {
	r = plotRun{dir: dir, group: "dir:" + dir}
	path := filepath.Join(dir, qfleet.RunScalarsFile)
	recs, err := qfleet.ReadScalars(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil, fmt.Errorf("%s: no %s here (not a qfleet run directory?)", dir, qfleet.RunScalarsFile)
	}
	if err != nil {
		return r, nil, err
	}
	for _, s := range recs {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
		x := float64(s.Step)
		if byTime {
			x = s.Wall
		}
		switch s.Name {
		case EvalName: // written with its std, the next record
			r.eval = append(r.eval, plotter.XY{X: x, Y: s.Value})
		case "eval_std_return":
			r.evalStd = append(r.evalStd, s.Value)
		}
		if s.Name == name {
			r.xys = append(r.xys, plotter.XY{X: x, Y: s.Value})
		}
	}
	// Records are written in time order; a resumed run's steps continue
	// its own, so x only goes back for a file edited by hand: sort anyway.
	slices.SortStableFunc(r.xys, func(a, b plotter.XY) int { return compareFloat(a.X, b.X) })
	// config.yaml is optional: without it the run is drawn alone.
	data, err := os.ReadFile(filepath.Join(dir, qfleet.RunConfigFile))
	if err != nil {
		return r, names, nil
	}
	var cf qfleet.Config
	if yaml.Unmarshal(data, &cf) != nil || cf.Env == "" {
		return r, names, nil
	}
	r.env, r.seed = cf.Env, strconv.FormatUint(cf.Seed, 10)
	// What does not change learning is not part of the group.
	cf.Seed, cf.HTTP, cf.Summary, cf.CheckpointDir, cf.Progress, cf.LogLevel = 0, "", "", "", "", ""
	if key, err := yaml.Marshal(cf); err == nil {
		r.group = string(key)
	}
	return r, names, nil
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bandGridPoints is the number of x values at which a group's mean, min
// and max are taken.
const bandGridPoints = 256

// band is a group's mean, min and max over its runs on a grid of x values.
type band struct{ mean, lo, hi plotter.XYs }

// aggregate takes the runs' mean, min and max at grid points spread over
// [the largest first x, the largest last x]: from where every run has a
// value (a mean over the runs that have begun would jump as each joins),
// interpolated linearly between records, and with its last value after its
// end (a run that stopped at the target keeps its final score).
func aggregate(runs []plotRun, points int) band {
	lo, hi := math.Inf(-1), math.Inf(-1)
	for _, r := range runs {
		lo, hi = max(lo, r.xys[0].X), max(hi, r.xys[len(r.xys)-1].X)
	}
	var b band
	for i := range points {
		x := lo
		if points > 1 {
			x = lo + (hi-lo)*float64(i)/float64(points-1)
		}
		sum, n, mn, mx := 0.0, 0, math.Inf(1), math.Inf(-1)
		for _, r := range runs {
			y, ok := valueAt(r.xys, x)
			if !ok {
				continue
			}
			sum, n, mn, mx = sum+y, n+1, min(mn, y), max(mx, y)
		}
		if n == 0 {
			continue
		}
		b.mean = append(b.mean, plotter.XY{X: x, Y: sum / float64(n)})
		b.lo = append(b.lo, plotter.XY{X: x, Y: mn})
		b.hi = append(b.hi, plotter.XY{X: x, Y: mx})
	}
	return b
}

// valueAt is the curve xys (sorted by x) at x: linear between records, the
// last value after the end, none before the start.
func valueAt(xys plotter.XYs, x float64) (float64, bool) {
	if len(xys) == 0 || x < xys[0].X {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(xys, x, func(p plotter.XY, x float64) int { return compareFloat(p.X, x) })
	switch {
	case i >= len(xys):
		return xys[len(xys)-1].Y, true
	case xys[i].X == x || i == 0:
		return xys[i].Y, true
	}
	a, b := xys[i-1], xys[i]
	return a.Y + (b.Y-a.Y)*(x-a.X)/(b.X-a.X), true
}

// makePlot draws the runs: one line per ungrouped run, a mean line and a
// min–max band per group of seeds.
func makePlot(runs []plotRun, name string, byTime bool, height int) (*plot.Plot, error) {
	p := plot.New()
	var envs []string
	var order []string
	groups := map[string][]plotRun{}
	for _, r := range runs {
		if _, ok := groups[r.group]; !ok {
			order = append(order, r.group)
		}
		groups[r.group] = append(groups[r.group], r)
		if r.env != "" && !slices.Contains(envs, r.env) {
			envs = append(envs, r.env)
		}
	}
	p.Title.Text = name
	p.Title.Padding = vg.Points(6)
	if len(envs) > 0 {
		p.Title.Text += " — " + strings.Join(envs, ", ")
	}
	p.X.Label.Text = "env steps"
	if byTime {
		p.X.Label.Text = "wall time (s)"
	}
	p.Y.Label.Text = name
	p.X.Tick.Marker = siTicks{}
	p.Y.Tick.Marker = siTicks{}
	p.Add(plotter.NewGrid())
	labels := map[string]bool{}
	for i, g := range order {
		rs := groups[g]
		col := plotutil.Color(i)
		xys, label := rs[0].xys, runLabel(rs[0])
		var poly *plotter.Polygon
		if len(rs) > 1 {
			b := aggregate(rs, bandGridPoints)
			xys = b.mean
			label = fmt.Sprintf("%s: mean of %d seeds, min–max", rs[0].env, len(rs))
			ring := append(slices.Clone(b.hi), reversed(b.lo)...)
			var err error
			if poly, err = plotter.NewPolygon(ring); err != nil {
				return nil, fmt.Errorf("plot %s: %w", rs[0].dir, err)
			}
			r, gg, bb, _ := col.RGBA()
			poly.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(gg >> 8), B: uint8(bb >> 8), A: 0x50}
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		if labels[label] { // two groups of one env with different configs
			label += " (" + filepath.Base(rs[0].dir) + ")"
		}
		labels[label] = true
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", rs[0].dir, err)
		}
		line.Color = col
		line.Width = vg.Points(1.5)
		p.Add(line)
		if poly != nil {
			p.Legend.Add(label, line, poly)
		} else {
			p.Legend.Add(label, line)
		}
	}
	rows := len(order)
	if name == "mean100" || name == EvalName {
		n, err := addEvalBands(p, runs, len(order))
		if err != nil {
			return nil, err
		}
		rows += n
	}
	reserveLegendRoom(p, rows, height)
	return p, nil
}

// addEvalBands draws each run's evaluations, when it has them, as a dashed
// line of their mean return with a band of ± one standard deviation, in
// colours after the first colors; it returns the legend rows it added.
func addEvalBands(p *plot.Plot, runs []plotRun, colors int) (int, error) {
	rows := 0
	for _, r := range runs {
		if len(r.eval) == 0 || len(r.evalStd) != len(r.eval) {
			continue // none, or a file cut between a mean and its std
		}
		col := plotutil.Color(colors + rows)
		lo, hi := make(plotter.XYs, len(r.eval)), make(plotter.XYs, len(r.eval))
		for i, e := range r.eval {
			lo[i], hi[i] = plotter.XY{X: e.X, Y: e.Y - r.evalStd[i]}, plotter.XY{X: e.X, Y: e.Y + r.evalStd[i]}
		}
		poly, err := plotter.NewPolygon(append(hi, reversed(lo)...))
		if err != nil {
			return rows, fmt.Errorf("plot %s: %w", r.dir, err)
		}
		cr, cg, cb, _ := col.RGBA()
		poly.Color = color.NRGBA{R: uint8(cr >> 8), G: uint8(cg >> 8), B: uint8(cb >> 8), A: 0x40}
		poly.LineStyle.Width = 0
		line, err := plotter.NewLine(r.eval)
		if err != nil {
			return rows, fmt.Errorf("plot %s: %w", r.dir, err)
		}
		line.Color, line.Width, line.Dashes = col, vg.Points(1.5), []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(poly, line)
		p.Legend.Add(runLabel(r)+": evaluation, mean ± std", line, poly)
		rows++
	}
	return rows, nil
}

// reserveLegendRoom raises the top of the y axis so that the legend, at the
// top right, sits above the curves instead of over them (gonum's legend
// has no background of its own).
func reserveLegendRoom(p *plot.Plot, rows, heightPx int) {
	const dpi, marginsPx = 96, 80 // vgimg's resolution; title, x axis and labels
	rowPx := float64(p.Legend.TextStyle.Font.Size.Points()) * 1.25 * dpi / 72
	f := min(0.5, (float64(rows)*rowPx+6)/float64(max(heightPx-marginsPx, 1)))
	// A fraction f of the new range [min, max'] lies above the data:
	// (max' − max) = f·(max' − min).
	lo, hi := p.Y.Min, p.Y.Max
	if hi <= lo {
		hi = lo + 1 // one flat value: give the axis a range
	}
	p.Y.Min, p.Y.Max = lo, (hi-f*lo)/(1-f)
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.XOffs = -vg.Points(4)
}

// runLabel names a run drawn alone.
func runLabel(r plotRun) string {
	if r.env == "" {
		return filepath.Base(r.dir)
	}
	return r.env + " seed " + r.seed
}

func reversed(xys plotter.XYs) plotter.XYs {
	out := slices.Clone(xys)
	slices.Reverse(out)
	return out
}

// savePNG draws p into a width × height pixel image at path.
func savePNG(p *plot.Plot, path string, width, height int) error {
	c := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, width, height))))
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err // *fs.PathError names the file
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// siTicks are plot's default ticks labelled 20k, 1.5M: step counts in
// full are too wide for the axis.
type siTicks struct{}

func (siTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = siLabel(ts[i].Value)
		}
	}
	return ts
}

func siLabel(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
