package plot

// Drawing a sweep: every trial's curve coloured by its outcome, the best
// trial on top, ASHA's rungs, and PBT's exploits as connectors from the
// point of the source's curve whose checkpoint a member took to where the
// member went on.

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/sweep"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The colours of a sweep's plot. Each outcome has one colour, whatever the
// number of trials: 36 colours, one per trial, could not be told apart.
var (
	bestColor    = color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff} // green
	okColor      = color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	prunedColor  = color.NRGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff} // orange
	failedColor  = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff} // red
	pausedColor  = color.NRGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff} // grey
	exploitColor = color.NRGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff} // purple
	rungStyle    = draw.LineStyle{Color: color.NRGBA{R: 0xc8, G: 0xc8, B: 0xc8, A: 0xff}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
)

// drawSweeps draws the trials of the sweep directories dirs into o.Out.
func drawSweeps(dirs []string, o Options, warn io.Writer) error {
	if o.ByTime {
		return errors.New("--x time: a sweep is drawn by env steps only (each segment of a trial restarts its wall clock)")
	}
	var infos []sweepInfo
	var trials []sweepTrial
	var names []string
	for i, dir := range dirs {
		info, ts, err := readSweep(dir, o.Name, i, warn, &names)
		if err != nil {
			return err
		}
		infos = append(infos, info)
		trials = append(trials, ts...)
	}
	if len(trials) == 0 {
		if len(names) == 0 {
			return fmt.Errorf("%s: no trial has scalars to draw (trials/<id>/%s)", strings.Join(dirs, ", "), qfleet.RunScalarsFile)
		}
		slices.Sort(names)
		return fmt.Errorf("no trial has %q records; the trials have: %s", o.Name, strings.Join(names, ", "))
	}
	p, err := makeSweepPlot(infos, trials, o.Name, o.Height)
	if err != nil {
		return err
	}
	return savePNG(p, o.Out, o.Width, o.Height)
}

// bestOf is the best trial of the sweeps (the highest best mean100 among
// the ok ones, the first sweep's of equals) and its sweep's index; nil
// for none.
func bestOf(infos []sweepInfo) (int, *sweep.Row) {
	at := -1
	for i, in := range infos {
		if in.best != nil && (at < 0 || *in.best.BestMean100 > *infos[at].best.BestMean100) {
			at = i
		}
	}
	if at < 0 {
		return -1, nil
	}
	return at, infos[at].best
}

// bestTrial is the index in trials of the best trial of the sweeps, -1
// when there is none or it is not drawn (its scalars are missing: then
// no other trial takes its place, the title says which it is).
func bestTrial(infos []sweepInfo, trials []sweepTrial) int {
	at, best := bestOf(infos)
	if best == nil {
		return -1
	}
	return slices.IndexFunc(trials, func(t sweepTrial) bool { return t.sweep == at && t.row.Trial == best.Trial })
}

// outcome classes, in drawing order: later ones on top.
const (
	classPaused = iota
	classFailed
	classPruned
	classOK
	classBest
	classes
)

func classOf(t sweepTrial) int {
	switch t.row.Status {
	case sweep.StatusOK:
		return classOK
	case sweep.StatusPruned:
		return classPruned
	case sweep.StatusFailed:
		return classFailed
	}
	return classPaused
}

var classColor = [classes]color.Color{pausedColor, failedColor, prunedColor, okColor, bestColor}

// legendEntry is a row of the legend: its text and its samples.
type legendEntry struct {
	label   string
	samples []plot.Thumbnailer
}

// makeSweepPlot draws the trials: each class of outcome in its colour, the
// exploits of PBT members over them, the best trial last and thickest.
func makeSweepPlot(infos []sweepInfo, trials []sweepTrial, name string, height int) (*plot.Plot, error) {
	p := plot.New()
	best := bestTrial(infos, trials)
	p.Title.Text = sweepTitle(infos, best >= 0, name)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "env steps"
	if slices.ContainsFunc(trials, func(t sweepTrial) bool { return len(t.exploits) > 0 }) {
		p.X.Label.Text = "env steps (a PBT member's curve starts again at the steps of the checkpoint it took)"
	}
	p.Y.Label.Text = name
	p.X.Tick.Marker = siTicks{}
	p.Y.Tick.Marker = siTicks{}
	p.Add(plotter.NewGrid())
	var rungs []float64
	for _, in := range infos {
		for _, r := range in.rungs {
			if !slices.Contains(rungs, float64(r)) {
				rungs = append(rungs, float64(r))
			}
		}
	}
	if len(rungs) > 0 {
		p.Add(vlines{xs: rungs, style: rungStyle})
	}
	var legend [classes]legendEntry
	var counts [classes]int
	for class := range classBest {
		var ends plotter.XYs // where the pruned trials stopped
		for i, t := range trials {
			if i == best || classOf(t) != class {
				continue
			}
			sample, err := addCurve(p, t, classColor[class], vg.Points(1.1))
			if err != nil {
				return nil, err
			}
			counts[class]++
			legend[class].samples = []plot.Thumbnailer{sample}
			if end, ok := t.last(); ok && class == classPruned {
				ends = append(ends, end)
			}
		}
		if len(ends) > 0 {
			s, err := plotter.NewScatter(ends)
			if err != nil {
				return nil, err
			}
			s.GlyphStyle = draw.GlyphStyle{Color: prunedColor, Radius: vg.Points(3.5), Shape: boldCross{}}
			p.Add(s)
			legend[class].samples = append(legend[class].samples, s)
		}
	}
	legend[classPaused].label = fmt.Sprintf("paused (%d): the sweep has not finished them", counts[classPaused])
	legend[classFailed].label = fmt.Sprintf("failed (%d)", counts[classFailed])
	legend[classPruned].label = fmt.Sprintf("pruned (%d), × where stopped", counts[classPruned])
	legend[classOK].label = fmt.Sprintf("ok (%d)", counts[classOK])
	if best >= 0 {
		legend[classOK].label = fmt.Sprintf("other ok (%d)", counts[classOK])
	}
	exploits, err := addExploits(p, trials)
	if err != nil {
		return nil, err
	}
	if best >= 0 {
		sample, err := addCurve(p, trials[best], bestColor, vg.Points(2.6))
		if err != nil {
			return nil, err
		}
		b := trials[best].row
		legend[classBest] = legendEntry{fmt.Sprintf("best: %s, best mean100 %.1f", b.Trial, *b.BestMean100), []plot.Thumbnailer{sample}}
		if len(infos) > 1 {
			legend[classBest].label += " (" + infos[trials[best].sweep].name + ")"
		}
	}
	rows := addSweepLegend(p, legend, exploits, len(rungs) > 0)
	reserveLegendRoom(p, rows, height)
	return p, nil
}

// addSweepLegend adds the legend's rows, the best first, then the outcomes
// by how much they tell (ok, pruned, failed, paused), the exploits and the
// rungs; it returns the number of rows.
func addSweepLegend(p *plot.Plot, legend [classes]legendEntry, exploits legendEntry, rungs bool) int {
	rows := 0
	for _, class := range []int{classBest, classOK, classPruned, classFailed, classPaused} {
		if e := legend[class]; len(e.samples) > 0 && e.samples[0] != nil {
			p.Legend.Add(e.label, e.samples...)
			rows++
		}
	}
	if exploits.label != "" {
		p.Legend.Add(exploits.label, exploits.samples...)
		rows++
	}
	if rungs {
		p.Legend.Add("ASHA rungs", &plotter.Line{LineStyle: rungStyle})
		rows++
	}
	return rows
}

// sweepTitle is the plot's title: the scalar, the sweeps, their env and
// schedulers, and on a second line the best trial's (final) params.
func sweepTitle(infos []sweepInfo, drawn bool, name string) string {
	var names, envs, kinds []string
	n := 0
	for _, in := range infos {
		names = append(names, in.name)
		if in.env != "" && !slices.Contains(envs, in.env) {
			envs = append(envs, in.env)
		}
		kind := ""
		switch {
		case in.pbt:
			kind = "PBT"
		case len(in.rungs) > 0:
			kind = "ASHA"
		}
		if kind != "" && !slices.Contains(kinds, kind) {
			kinds = append(kinds, kind)
		}
		n += in.trials
	}
	what := "sweep"
	if len(infos) > 1 {
		what = "sweeps"
	}
	title := fmt.Sprintf("%s — %s %s: %d trials", name, what, strings.Join(names, ", "), n)
	if len(kinds) > 0 {
		title += ", " + strings.Join(kinds, ", ")
	}
	if len(envs) > 0 {
		title += ", " + strings.Join(envs, ", ")
	}
	if at, best := bestOf(infos); best != nil {
		title += "\nbest " + best.Trial
		if len(infos) > 1 {
			title += " (" + infos[at].name + ")"
		}
		if !drawn {
			title += " (not drawn: no curve)"
		}
		if len(best.Params) > 0 {
			title += ": " + formatParams(best.Params)
		}
	}
	return title
}

// addCurve draws a trial's pieces in col; a piece of one point also gets
// a dot (a line of one point is not seen). It returns a legend sample.
func addCurve(p *plot.Plot, t sweepTrial, col color.Color, width vg.Length) (plot.Thumbnailer, error) {
	var sample plot.Thumbnailer
	for _, piece := range t.pieces {
		if len(piece) == 0 {
			continue
		}
		line, err := plotter.NewLine(piece)
		if err != nil {
			return nil, fmt.Errorf("plot trial %s: %w", t.row.Trial, err)
		}
		line.Color, line.Width = col, width
		p.Add(line)
		sample = line
		if len(piece) == 1 {
			s, err := plotter.NewScatter(piece)
			if err != nil {
				return nil, fmt.Errorf("plot trial %s: %w", t.row.Trial, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: width + vg.Points(1), Shape: draw.CircleGlyph{}}
			p.Add(s)
		}
	}
	return sample, nil
}

// addExploits draws each PBT exploit: a dot on the source's curve at the
// env steps of the checkpoint taken, a line from it to the first point of
// the member's piece that went on from it, and a ring there. An exploit
// whose source has no value there (its curve had not begun: mean100 needs
// 100 episodes) keeps only its ring. It returns the legend's row.
func addExploits(p *plot.Plot, trials []sweepTrial) (legendEntry, error) {
	var from, to plotter.XYs
	var sample plot.Thumbnailer
	for _, t := range trials {
		for _, e := range t.exploits {
			piece := t.pieces[e.piece]
			if len(piece) == 0 {
				continue
			}
			to = append(to, piece[0])
			src := slices.IndexFunc(trials, func(s sweepTrial) bool { return s.sweep == t.sweep && s.row.Trial == e.step.Source })
			if src < 0 {
				continue
			}
			at, ok := branchPoint(trials[src], e.step.SourceAt)
			if !ok {
				continue
			}
			from = append(from, at)
			line, err := plotter.NewLine(plotter.XYs{at, piece[0]})
			if err != nil {
				return legendEntry{}, fmt.Errorf("plot trial %s: %w", t.row.Trial, err)
			}
			line.Color, line.Width = exploitColor, vg.Points(1)
			p.Add(line)
			sample = line
		}
	}
	if len(to) == 0 {
		return legendEntry{}, nil
	}
	e := legendEntry{label: fmt.Sprintf("exploit (%d): ● checkpoint taken, ○ member went on", len(to))}
	if sample != nil {
		e.samples = append(e.samples, sample)
	}
	for _, g := range []struct {
		xys   plotter.XYs
		shape draw.GlyphDrawer
	}{{from, draw.CircleGlyph{}}, {to, draw.RingGlyph{}}} {
		if len(g.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(g.xys)
		if err != nil {
			return legendEntry{}, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: exploitColor, Radius: vg.Points(2.5), Shape: g.shape}
		p.Add(s)
		e.samples = append(e.samples, s)
	}
	return e, nil
}

// branchPoint is the point of src's curve where a member took its
// checkpoint of env steps at: the end of src's segment that left it; none
// when that segment had no value (mean100 needs 100 episodes) or src's
// segments could not be told apart.
func branchPoint(src sweepTrial, at uint64) (plotter.XY, bool) {
	xy, ok := src.checkpoints[at]
	return xy, ok
}

// vlines draws vertical lines across the data area at xs within the x
// axis's range: marks that do not widen the axes.
type vlines struct {
	xs    []float64
	style draw.LineStyle
}

func (v vlines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		if x >= p.X.Min && x <= p.X.Max {
			c.StrokeLine2(v.style, trX(x), c.Min.Y, trX(x), c.Max.Y)
		}
	}
}

// boldCross is draw.CrossGlyph with strokes wide enough to see (its own
// are half a point).
type boldCross struct{}

func (boldCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.6)})
	r := sty.Radius * math.Sqrt2 / 2
	for _, d := range []vg.Length{r, -r} {
		var path vg.Path
		path.Move(vg.Point{X: pt.X - r, Y: pt.Y - d})
		path.Line(vg.Point{X: pt.X + r, Y: pt.Y + d})
		c.Stroke(path)
	}
}
