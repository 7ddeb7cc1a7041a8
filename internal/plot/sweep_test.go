package plot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/sweep"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func fptr(x float64) *float64 { return &x }

// writeRows writes rows as the sweep's results.jsonl.
func writeRows(t *testing.T, dir string, rows []sweep.Row) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, sweep.ResultsFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// segment is the records a 'qfleet dev' process writes: every 2 s from
// steps from to to (every 2000 steps), mean100 by f(step), the rates, and
// no learner_updates_per_s in a resumed process's first record.
func segment(from, to uint64, resumed bool, f func(step float64) float64) []qfleet.Scalar {
	var recs []qfleet.Scalar
	wall := 0.0
	for step := from + 2000; step <= to; step += 2000 {
		wall += 2
		recs = append(recs, qfleet.Scalar{Step: step, Wall: wall, Name: "mean100", Value: f(float64(step))},
			qfleet.Scalar{Step: step, Wall: wall, Name: "env_steps_per_s", Value: 1000})
		if !resumed || step > from+2000 {
			recs = append(recs, qfleet.Scalar{Step: step, Wall: wall, Name: "learner_updates_per_s", Value: 500})
		}
	}
	return recs
}

// writeTrial writes a trial's scalars.jsonl under the sweep's trials/ and
// returns its directory.
func writeTrial(t *testing.T, sweepDir, id string, recs []qfleet.Scalar) string {
	t.Helper()
	dir := filepath.Join(sweepDir, sweep.TrialsDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, qfleet.RunScalarsFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func linear(a, b float64) func(float64) float64 {
	return func(step float64) float64 { return a + (b-a)*step/40000 }
}

// ashaSweep is a sweep of two ok trials (one of them failed first and ran
// again), two pruned at the 10k rung (paused there first), a failed one
// and an ok one whose scalars are missing.
func ashaSweep(t *testing.T) string {
	dir := t.TempDir()
	row := func(id, status string, best float64, steps uint64) sweep.Row {
		return sweep.Row{Trial: id, Key: "k" + id, Params: map[string]any{"learning_rate": 0.001}, Status: status,
			BestMean100: fptr(best), EnvSteps: steps, LocalDir: filepath.Join("/elsewhere", sweep.TrialsDir, id),
			Rungs: map[string]*float64{"10000": fptr(best)}}
	}
	pruned := func(id string, best float64) []sweep.Row {
		r := row(id, sweep.StatusPaused, best, 10000)
		p := r
		p.Status, p.PrunedAt = sweep.StatusPruned, 10000
		return []sweep.Row{r, p}
	}
	rows := []sweep.Row{row("t001", sweep.StatusFailed, 0, 0), row("t000", sweep.StatusOK, 450, 40000)}
	rows = append(rows, pruned("t002", 40)...)
	rows = append(rows, pruned("t003", 30)...)
	rows = append(rows, row("t004", sweep.StatusFailed, 150, 6000), row("t001", sweep.StatusOK, 300, 40000),
		row("t005", sweep.StatusOK, 250, 40000))
	writeRows(t, dir, rows)
	writeTrial(t, dir, "t000", segment(0, 40000, false, linear(50, 450)))
	writeTrial(t, dir, "t001", segment(0, 40000, false, linear(200, 300)))
	writeTrial(t, dir, "t002", segment(0, 10000, false, linear(10, 160)))
	writeTrial(t, dir, "t003", segment(0, 10000, false, linear(5, 120)))
	writeTrial(t, dir, "t004", segment(0, 6000, false, linear(100, 150)))
	return dir
}

// decodePNG reads the PNG at path and checks its size.
func decodePNG(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	return img
}

// near reports whether the pixel at x, y is within 8 of c in each channel.
func near(img image.Image, x, y int, c color.Color) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	cr, cg, cb, _ := c.RGBA()
	d := func(a, b uint32) bool { return math.Abs(float64(a>>8)-float64(b>>8)) <= 8 }
	return d(r, cr) && d(g, cg) && d(b, cb)
}

func countColor(img image.Image, c color.Color) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(img, x, y, c) {
				n++
			}
		}
	}
	return n
}

// TestPlotSweepASHA: every trial of an ASHA sweep is drawn in the colour
// of its outcome (its last row's), the one whose scalars are missing is
// left out with a warning, and the best is the best ok trial drawn or not.
func TestPlotSweepASHA(t *testing.T) {
	dir := ashaSweep(t)
	var warn bytes.Buffer
	var names []string
	info, trials, err := readSweep(dir, "mean100", 0, &warn, &names)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range trials {
		got = append(got, tr.row.Trial+":"+tr.row.Status)
	}
	if want := "t000:ok t001:ok t002:pruned t003:pruned t004:failed"; strings.Join(got, " ") != want {
		t.Errorf("trials %q, want %q", strings.Join(got, " "), want)
	}
	if info.trials != 6 || fmt.Sprint(info.rungs) != "[10000]" {
		t.Errorf("%d trials, rungs %v; want 6 and [10000]", info.trials, info.rungs)
	}
	if w := warn.String(); strings.Count(w, "\n") != 1 || !strings.Contains(w, "t005") || !strings.Contains(w, "left out") {
		t.Errorf("warnings %q, want one line leaving out t005", w)
	}
	if b := bestTrial([]sweepInfo{info}, trials); b != 0 {
		t.Errorf("best trial %d, want 0 (t000)", b)
	}
	out := filepath.Join(t.TempDir(), "asha.png")
	warn.Reset()
	if err := Draw([]string{dir}, Options{Out: out, Name: "mean100", Width: 640, Height: 400}, &warn); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, out, 640, 400)
	for _, c := range []struct {
		what string
		col  color.Color
		min  int
	}{{"best", bestColor, 300}, {"pruned", prunedColor, 100}, {"failed", failedColor, 20}, {"other ok", okColor, 100}} {
		if n := countColor(img, c.col); n < c.min {
			t.Errorf("%s: %d pixels of its colour, want >= %d", c.what, n, c.min)
		}
	}
	// Without t000's curve the best is still t000: no other trial is
	// highlighted in its place, and the title says so.
	if err := os.Remove(filepath.Join(dir, sweep.TrialsDir, "t000", qfleet.RunScalarsFile)); err != nil {
		t.Fatal(err)
	}
	info, trials, err = readSweep(dir, "mean100", 0, io.Discard, &names)
	if err != nil {
		t.Fatal(err)
	}
	if b := bestTrial([]sweepInfo{info}, trials); b != -1 {
		t.Errorf("best trial %d without t000's curve, want none (-1)", b)
	}
	if title := sweepTitle([]sweepInfo{info}, false, "mean100"); !strings.Contains(title, "best t000 (not drawn") {
		t.Errorf("title %q", title)
	}
	if err := Draw([]string{dir}, Options{Out: out, Name: "mean100", Width: 640, Height: 400}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := countColor(decodePNG(t, out, 640, 400), bestColor); n > 0 {
		t.Errorf("%d pixels of the best colour with the best trial not drawn", n)
	}
}

// pbtSweep is a population of four members in three segments of 10k env
// steps: t001 starts weak and, after its first segment, takes t000's
// checkpoint (there t000's mean100 is 210, while t001 goes on at 60: a
// long connector); the others go on alone. With lineage false the rows
// have no exploit.
func pbtSweep(t *testing.T, lineage bool) string {
	dir := t.TempDir()
	start := func(id string) sweep.LineageStep {
		return sweep.LineageStep{Source: id, Params: map[string]any{"learning_rate": 0.001}}
	}
	took := sweep.LineageStep{At: 10000, Source: "t000", SourceAt: 10000, Params: map[string]any{"learning_rate": 0.0012, "batch_size": 64}}
	var rows []sweep.Row
	for seg := 1; seg <= 3; seg++ {
		for _, id := range []string{"t000", "t001", "t002", "t003"} {
			r := sweep.Row{Trial: id, Key: "k" + id, Params: start(id).Params, Status: sweep.StatusPaused,
				BestMean100: fptr(100), EnvSteps: uint64(10000 * seg), Segments: seg,
				Lineage: []sweep.LineageStep{start(id)}, TrialSteps: uint64(10000 * seg)}
			if id == "t001" && seg > 1 && lineage {
				r.Lineage = append(r.Lineage, took)
				r.Params = took.Params
			}
			if seg == 3 {
				r.Status = sweep.StatusOK
			}
			if id == "t000" {
				r.BestMean100 = fptr(450)
			}
			rows = append(rows, r)
		}
	}
	writeRows(t, dir, rows)
	three := func(f1, f2, f3 func(float64) float64) []qfleet.Scalar {
		recs := segment(0, 10000, false, f1)
		recs = append(recs, segment(10000, 20000, true, f2)...)
		return append(recs, segment(20000, 30000, true, f3)...)
	}
	strong := func(s float64) float64 { return 10 + s/50 } // 210 at 10k
	writeTrial(t, dir, "t000", three(strong, strong, strong))
	weak := func(s float64) float64 { return 15 }
	resumed := func(s float64) float64 { return 60 + (s-12000)/100 }
	writeTrial(t, dir, "t001", three(weak, resumed, resumed))
	writeTrial(t, dir, "t002", three(weak, weak, weak))
	writeTrial(t, dir, "t003", three(weak, weak, weak))
	return dir
}

// renderSweep draws a sweep as Draw does, and keeps the image and the
// plot's data-to-pixel transform.
func renderSweep(t *testing.T, dir string, w, h int) (image.Image, []sweepTrial, func(x, y float64) (int, int)) {
	t.Helper()
	var names []string
	info, trials, err := readSweep(dir, "mean100", 0, io.Discard, &names)
	if err != nil {
		t.Fatal(err)
	}
	p, err := makeSweepPlot([]sweepInfo{info}, trials, "mean100", h)
	if err != nil {
		t.Fatal(err)
	}
	c := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, w, h))))
	dc := draw.New(c)
	p.Draw(dc)
	da := p.DataCanvas(dc)
	trX, trY := p.Transforms(&da)
	scale := c.DPI() / 72 // vg lengths are points
	return c.Image(), trials, func(x, y float64) (int, int) {
		return int(math.Round(float64(trX(x)) * scale)), h - int(math.Round(float64(trY(y))*scale))
	}
}

// colorAround reports whether a pixel of c is within r pixels of x, y.
func colorAround(img image.Image, x, y, r int, c color.Color) bool {
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if near(img, x+dx, y+dy, c) {
				return true
			}
		}
	}
	return false
}

// TestPlotSweepPBTLineage: t001 takes t000's checkpoint at 10k env steps;
// its curve goes on in a piece of its own, and a connector in the exploit
// colour joins t000's curve at 10k to where t001 went on, drawn along its
// length; the same sweep without the exploit has no such line.
func TestPlotSweepPBTLineage(t *testing.T) {
	const w, h = 800, 500
	img, trials, px := renderSweep(t, pbtSweep(t, true), w, h)
	if len(trials) != 4 || len(trials[1].pieces) != 2 || len(trials[1].exploits) != 1 {
		t.Fatalf("t001: %d pieces, %d exploits; want 2 and 1", len(trials[1].pieces), len(trials[1].exploits))
	}
	from, ok := branchPoint(trials[0], 10000)
	if !ok || from.X != 10000 || from.Y != 210 {
		t.Fatalf("t000's checkpoint at 10k is drawn at %v (%v), want (10000, 210)", from, ok)
	}
	to := trials[1].pieces[1][0]
	if to.X != 12000 || to.Y != 60 {
		t.Fatalf("t001 goes on at %v, want (12000, 60)", to)
	}
	// The transform is right: the best curve (t000) is where it says.
	if x, y := px(20000, 410); !colorAround(img, x, y, 2, bestColor) {
		t.Fatalf("no best-trial pixel at t000's (20000, 410), pixel (%d, %d)", x, y)
	}
	for _, f := range []float64{0.3, 0.5, 0.7} {
		x, y := px(from.X+f*(to.X-from.X), from.Y+f*(to.Y-from.Y))
		if !colorAround(img, x, y, 2, exploitColor) {
			t.Errorf("no connector pixel at %.0f%% of the way from t000's checkpoint to t001 (pixel %d, %d)", 100*f, x, y)
		}
	}
	if n := countColor(img, exploitColor); n < 30 {
		t.Errorf("%d pixels of the exploit colour", n)
	}
	img, trials, px = renderSweep(t, pbtSweep(t, false), w, h)
	if len(trials[1].pieces) != 1 || len(trials[1].exploits) != 0 {
		t.Fatalf("without the exploit t001 has %d pieces, %d exploits; want 1 and 0", len(trials[1].pieces), len(trials[1].exploits))
	}
	x, y := px(from.X+0.5*(to.X-from.X), from.Y+0.5*(to.Y-from.Y))
	if colorAround(img, x, y, 2, exploitColor) || countColor(img, exploitColor) > 0 {
		t.Errorf("a sweep without exploits has the exploit colour")
	}
}

// TestPlotSweepTitle: the best member's final params are in the title.
func TestPlotSweepTitle(t *testing.T) {
	dir := pbtSweep(t, true)
	var names []string
	info, trials, err := readSweep(dir, "mean100", 0, io.Discard, &names)
	if err != nil {
		t.Fatal(err)
	}
	if bestTrial([]sweepInfo{info}, trials) != 0 {
		t.Errorf("the best is not t000")
	}
	title := sweepTitle([]sweepInfo{info}, true, "mean100")
	if !strings.Contains(title, "4 trials, PBT") || !strings.Contains(title, "best t000: learning_rate=0.001") {
		t.Errorf("title %q", title)
	}
	if got := formatParams(map[string]any{"lr": 0.000921435, "hidden": []any{64, 64}, "n": 3}); got != "hidden=[64 64] lr=0.000921 n=3" {
		t.Errorf("formatParams = %q", got)
	}
}

// TestPlotSweepSegments: a segmented trial's records are numbered by the process
// that wrote them: where the wall clock restarts, where the steps go back,
// and for a short segment that shows neither, at its resumed first record.
func TestPlotSweepSegments(t *testing.T) {
	rec := func(step uint64, wall float64, names ...string) []qfleet.Scalar {
		var out []qfleet.Scalar
		for _, n := range names {
			out = append(out, qfleet.Scalar{Step: step, Wall: wall, Name: n})
		}
		return out
	}
	full := []string{"mean100", "env_steps_per_s", "learner_updates_per_s"}
	first := []string{"mean100", "env_steps_per_s"} // a resumed process's first record
	var recs []qfleet.Scalar
	recs = append(recs, rec(2000, 2, full...)...)
	recs = append(recs, rec(4000, 4, full...)...)
	recs = append(recs, rec(5000, 2, first...)...)           // the wall restarts
	recs = append(recs, rec(3000, 4, "eval_mean_return")...) // steps go back: an evaluation first
	recs = append(recs, rec(3100, 4, first...)...)
	recs = append(recs, rec(3200, 4.5, full...)...)
	recs = append(recs, rec(3500, 5, first...)...) // a short segment: neither goes back
	var got []int
	for i, s := range segments(recs) {
		if i == 0 || recs[i].Wall != recs[i-1].Wall {
			got = append(got, s)
		}
	}
	if fmt.Sprint(got) != "[0 0 1 2 2 3]" {
		t.Errorf("segments by moment %v, want [0 0 1 2 2 3]", got)
	}
}

// TestPlotSweepErrors: what a sweep directory cannot be drawn from.
func TestPlotSweepErrors(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRows(t, empty, nil)
	// A sweep that has only begun: its spec, no results.jsonl yet.
	begun := filepath.Join(root, "begun")
	if err := os.Mkdir(begun, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(begun, "spec.yaml"), []byte("name: begun\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noScalars := filepath.Join(root, "no-scalars")
	if err := os.Mkdir(noScalars, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRows(t, noScalars, []sweep.Row{{Trial: "t000", Key: "k", Status: sweep.StatusOK}})
	run := writeTrial(t, t.TempDir(), "run", segment(0, 4000, false, linear(1, 2)))
	good := ashaSweep(t)
	out := filepath.Join(root, "out.png")
	for _, c := range []struct {
		name string
		dirs []string
		o    Options
		want []string
	}{
		{"no rows", []string{empty}, Options{}, []string{empty, "no trial has a result yet"}},
		{"no results.jsonl yet", []string{begun}, Options{}, []string{begun, "no trial has a result yet"}},
		{"no trial has scalars", []string{noScalars}, Options{}, []string{noScalars, "no trial has scalars", "scalars.jsonl"}},
		{"sweep and run", []string{good, run}, Options{}, []string{good, "is a sweep directory", "not both"}},
		{"by time", []string{good}, Options{ByTime: true}, []string{"--x time", "env steps"}},
		{"no records of the name", []string{good}, Options{Name: "nope"}, []string{`"nope"`, "env_steps_per_s, learner_updates_per_s, mean100"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			o.Out, o.Width, o.Height = out, 300, 200
			if o.Name == "" {
				o.Name = "mean100"
			}
			err := Draw(c.dirs, o, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q: want one line with %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed plot wrote %s", out)
	}
}

// TestPlotSweepSegmentsMismatch: a member whose scalars show fewer
// segments than its rows (one wrote nothing) is still drawn, cut where its
// steps go back, with a warning that its exploits are not drawn.
func TestPlotSweepSegmentsMismatch(t *testing.T) {
	dir := pbtSweep(t, true)
	recs := segment(0, 10000, false, linear(10, 20))
	recs = append(recs, segment(10000, 20000, true, linear(60, 80))...)
	writeTrial(t, dir, "t001", recs)
	var warn bytes.Buffer
	var names []string
	_, trials, err := readSweep(dir, "mean100", 0, &warn, &names)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 4 || len(trials[1].exploits) != 0 || trials[1].checkpoints != nil {
		t.Errorf("t001: %d exploits, checkpoints %v; want none", len(trials[1].exploits), trials[1].checkpoints)
	}
	if w := warn.String(); !strings.Contains(w, "t001") || !strings.Contains(w, "2 segments") || !strings.Contains(w, "not drawn") {
		t.Errorf("warning %q", w)
	}
	if _, err := makeSweepPlot([]sweepInfo{{name: "x"}}, trials, "mean100", 400); err != nil {
		t.Errorf("plot: %v", err)
	}
}
