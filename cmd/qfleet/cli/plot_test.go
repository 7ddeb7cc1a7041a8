package cli

import (
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/internal/testutil"
	"gonum.org/v1/plot/plotutil"
)

// fakeRun writes a run directory with config.yaml and a scalars.jsonl whose
// mean100 rises from 10 to top over steps 0..10000 (a record every 500).
func fakeRun(t *testing.T, root, name, env string, seed int, top float64) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, dir, qfleet.RunConfigFile, fmt.Sprintf("env: %s\nseed: %d\nprogress: 2s\n", env, seed))
	var b strings.Builder
	for i := 0; i <= 20; i++ {
		step := 500 * i
		fmt.Fprintf(&b, `{"step":%d,"wall":%g,"name":"mean100","value":%g}`+"\n", step, float64(i)/2, 10+(top-10)*float64(i)/20)
		fmt.Fprintf(&b, `{"step":%d,"wall":%g,"name":"learner_loss","value":%g}`+"\n", step, float64(i)/2, 1/float64(i+1))
	}
	testutil.WriteFile(t, dir, qfleet.RunScalarsFile, b.String())
	return dir
}

// colorPixels counts the pixels within 6 of c in every channel.
func colorPixels(t *testing.T, path string, c color.Color, w, h int) int {
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
	near := func(a, b uint32) bool { return math.Abs(float64(a>>8)-float64(b>>8)) <= 6 }
	cr, cg, cb, _ := c.RGBA()
	n := 0
	for y := range h {
		for x := range w {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, cr) && near(g, cg) && near(b, cb) {
				n++
			}
		}
	}
	return n
}

// TestPlot: two seeds of one env (drawn as mean and band) and a run of
// another env make a PNG of the size asked for, with both curves in it.
func TestPlot(t *testing.T) {
	root := t.TempDir()
	a := fakeRun(t, root, "a", "CartPole-v1", 1, 400)
	b := fakeRun(t, root, "b", "CartPole-v1", 2, 300)
	c := fakeRun(t, root, "c", "Acrobot-v1", 1, -100)
	// A run that has no mean100 yet (fewer than 100 low-ε episodes) is left
	// out with a warning, not an error.
	early := filepath.Join(root, "early")
	if err := os.Mkdir(early, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, early, qfleet.RunScalarsFile, `{"step":100,"wall":1,"name":"env_steps_per_s","value":100}`+"\n")
	out := filepath.Join(root, "curves.png")
	code, _, stderr := runQfleet(t, "plot", a, b, c, early, "-o", out, "--width", "640", "--height", "400")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oneLine(t, stderr, early, "left out")
	if os.Getenv("QFLEET_KEEP_PLOT") != "" {
		data, _ := os.ReadFile(out)
		os.WriteFile(os.Getenv("QFLEET_KEEP_PLOT"), data, 0o644)
	}
	for i, what := range []string{"the CartPole-v1 mean", "the Acrobot-v1 run"} {
		if n := colorPixels(t, out, plotutil.Color(i), 640, 400); n < 100 {
			t.Errorf("%s: %d pixels of its colour, want a drawn curve (>= 100)", what, n)
		}
	}
	// Flags before the directories, time on x, another scalar, the default size.
	out2 := filepath.Join(root, "loss.png")
	if code, _, stderr := runQfleet(t, "plot", "--x", "time", "--name", "learner_loss", "-o", out2, a); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := colorPixels(t, out2, plotutil.Color(0), 800, 500); n < 100 {
		t.Errorf("loss curve: %d pixels of its colour", n)
	}
}

func TestPlotErrors(t *testing.T) {
	root := t.TempDir()
	good := fakeRun(t, root, "good", "CartPole-v1", 1, 400)
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(root, "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, bad, qfleet.RunScalarsFile, `{"step":1,"wall":1,"name":"mean100","value":1}`+"\n{oops\n")
	out := filepath.Join(root, "out.png")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"dir without scalars.jsonl", []string{good, empty, "-o", out}, 1, []string{empty, "scalars.jsonl"}},
		{"no such dir", []string{filepath.Join(root, "nope"), "-o", out}, 1, []string{filepath.Join(root, "nope"), "scalars.jsonl"}},
		{"malformed scalars", []string{bad, "-o", out}, 1, []string{filepath.Join(bad, qfleet.RunScalarsFile) + ":2:"}},
		{"no records of the name", []string{good, "-o", out, "--name", "nope"}, 1, []string{`"nope"`, "learner_loss, mean100"}},
		{"unwritable output", []string{good, "-o", filepath.Join(root, "no-dir", "x.png")}, 1, []string{"no-dir"}},
		{"no -o", []string{good}, 2, []string{"-o"}},
		{"not png", []string{good, "-o", "x.svg"}, 2, []string{"x.svg", ".png"}},
		{"bad x", []string{good, "-o", out, "--x", "episodes"}, 2, []string{"episodes"}},
		{"bad size", []string{good, "-o", out, "--width", "0"}, 2, []string{"--width 0"}},
		{"no dirs", []string{"-o", out}, 2, []string{"no run or sweep directories"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runQfleet(t, append([]string{"plot"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			oneLine(t, stderr, c.want...)
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed plot wrote %s", out)
	}
	for _, args := range [][]string{{"plot", "--help"}, {"help", "plot"}} {
		code, stdout, _ := runQfleet(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage: qfleet plot RUN_DIR...") || !strings.Contains(stdout, "qfleet plot SWEEP_DIR...") {
			t.Errorf("qfleet %v: exit %d, stdout %q", args, code, stdout)
		}
	}
}

// fakeSweep writes a sweep directory: results.jsonl with an ok trial, a
// pruned one and an ok one whose scalars are missing, and the first two's
// scalars under trials/.
func fakeSweep(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "sweep")
	var rows strings.Builder
	for _, r := range []struct {
		id, status string
		best       float64
	}{{"t000", "ok", 400}, {"t001", "pruned", 50}, {"t002", "ok", 100}} {
		fmt.Fprintf(&rows, `{"trial":%q,"key":"k%s","params":{"learning_rate":0.001},"status":%q,"best_mean100":%g}`+"\n", r.id, r.id, r.status, r.best)
		if r.id == "t002" {
			continue
		}
		trial := filepath.Join(dir, "trials", r.id)
		if err := os.MkdirAll(trial, 0o755); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := 1; i <= 10; i++ {
			fmt.Fprintf(&b, `{"step":%d,"wall":%d,"name":"mean100","value":%g}`+"\n", 1000*i, 2*i, r.best*float64(i)/10)
		}
		testutil.WriteFile(t, trial, qfleet.RunScalarsFile, b.String())
	}
	testutil.WriteFile(t, dir, "results.jsonl", rows.String())
	return dir
}

// TestPlotSweep: a sweep directory draws its trials (the one without
// scalars left out with a warning); a sweep with a run directory, or by
// time, is refused on one line.
func TestPlotSweep(t *testing.T) {
	root := t.TempDir()
	dir := fakeSweep(t, root)
	out := filepath.Join(root, "sweep.png")
	code, stdout, stderr := runQfleet(t, "plot", dir, "-o", out, "--width", "500", "--height", "300")
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q: %s", code, stdout, stderr)
	}
	oneLine(t, stderr, "t002", "left out")
	// The best trial is drawn thick in its colour (green, #2ca02c).
	if n := colorPixels(t, out, color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, 500, 300); n < 100 {
		t.Errorf("%d pixels of the best trial's colour", n)
	}
	run := fakeRun(t, root, "run", "CartPole-v1", 1, 400)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"sweep and run", []string{dir, run, "-o", out}, []string{dir, "results.jsonl", run, "not both"}},
		{"by time", []string{dir, "-o", out, "--x", "time"}, []string{"--x time"}},
	} {
		code, _, stderr := runQfleet(t, append([]string{"plot"}, c.args...)...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", c.name, code)
		}
		oneLine(t, stderr, c.want...)
	}
}
