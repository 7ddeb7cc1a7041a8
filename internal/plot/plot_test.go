package plot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

func TestAggregate(t *testing.T) {
	runs := []plotRun{
		{xys: plotter.XYs{{X: 0, Y: 0}, {X: 10, Y: 10}}},
		{xys: plotter.XYs{{X: 5, Y: 100}, {X: 20, Y: 100}}},
	}
	// From x=5 (both runs have begun) to 20; run 0 keeps 10 after its end.
	b := aggregate(runs, 4)
	want := band{
		mean: plotter.XYs{{X: 5, Y: 52.5}, {X: 10, Y: 55}, {X: 15, Y: 55}, {X: 20, Y: 55}},
		lo:   plotter.XYs{{X: 5, Y: 5}, {X: 10, Y: 10}, {X: 15, Y: 10}, {X: 20, Y: 10}},
		hi:   plotter.XYs{{X: 5, Y: 100}, {X: 10, Y: 100}, {X: 15, Y: 100}, {X: 20, Y: 100}},
	}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("aggregate = %v\nwant %v", b, want)
	}
	if _, ok := valueAt(runs[1].xys, 4); ok {
		t.Errorf("valueAt before a run's first record has a value")
	}
}

func TestSILabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 475: "475", -100: "-100", 2500: "2500", 20000: "20k", 150000: "150k", 1.5e6: "1.5M", 0.25: "0.25"} {
		if got := siLabel(v); got != want {
			t.Errorf("siLabel(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestEvalBands: a run with evaluations gets them drawn as mean ± std
// beside mean100 (one legend row), and --name eval draws them alone.
func TestEvalBands(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 1; i <= 4; i++ {
		lines = append(lines,
			fmt.Sprintf(`{"step":%d,"wall":%d,"name":"mean100","value":%d}`, 1000*i, i, 20*i),
			fmt.Sprintf(`{"step":%d,"wall":%d,"name":"eval_mean_return","value":%d}`, 1000*i, i, 30*i),
			fmt.Sprintf(`{"step":%d,"wall":%d,"name":"eval_std_return","value":%d}`, 1000*i, i, 5))
	}
	if err := os.WriteFile(filepath.Join(dir, "scalars.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _, err := loadPlotRun(dir, "mean100", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.eval) != 4 || len(r.evalStd) != 4 || r.eval[3] != (plotter.XY{X: 4000, Y: 120}) {
		t.Fatalf("evaluations %v ± %v, want 4 of them, the last 120 at 4000", r.eval, r.evalStd)
	}
	if n, err := addEvalBands(plot.New(), []plotRun{r}, 1); n != 1 || err != nil {
		t.Errorf("%d evaluation curves (%v), want 1", n, err)
	}
	for _, name := range []string{"mean100", "eval"} {
		out := filepath.Join(dir, name+".png")
		if err := Draw([]string{dir}, Options{Out: out, Name: name, Width: 400, Height: 300}, io.Discard); err != nil {
			t.Errorf("--name %s: %v", name, err)
		} else if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Errorf("--name %s: no image (%v)", name, err)
		}
	}
}
