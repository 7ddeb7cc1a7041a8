package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/qfleet/qfleet/internal/plot"
)

const plotHelp = `Usage: qfleet plot RUN_DIR... -o FILE.png [--x steps|time] [--name mean100] [--width 800] [--height 500]
       qfleet plot SWEEP_DIR... -o FILE.png [--name mean100] [--width 800] [--height 500]

Draws learning curves from the scalars.jsonl of each run directory (see
'qfleet dev --help') into one PNG. Runs whose config.yaml is the same but for
the seed (and the output options: http, summary, checkpoint_dir, progress,
log_level) are one group: drawn as the mean over the seeds with a shaded
band from the lowest to the highest seed, from the first x where every seed
has a value; after a run's last record it counts with its last value (a run
that stopped at the target keeps its final score). Other runs are drawn
alone. A run with no records of --name yet is left out with a warning.

A sweep's output directory ('qfleet sweep --out', the one with results.jsonl)
draws every trial's curve from trials/<id>/scalars.jsonl, coloured by the
trial's outcome (its last row in results.jsonl): the best ok trial (highest
best mean100) thick in green, its params in the title; other ok trials blue;
pruned ones orange, with a cross where ASHA stopped each (its rungs dashed);
failed ones red; paused ones (the sweep has not finished) grey. A PBT member
is drawn by the env steps its records have: where it took another member's
checkpoint, its curve starts again, and a purple line joins the point of the
source's curve where that checkpoint was taken (dot) to where the member went
on (ring). Several sweeps make one plot, with the best of them all; sweeps and
run directories together are an error, and so is --x time. A trial without
scalars (or without records of --name) is left out with a warning.

Examples:
  qfleet plot runs/CartPole-v1-* -o cartpole.png
  qfleet plot runs/a runs/b -o loss.png --name learner_loss --x time
  qfleet plot sweeps/cartpole-pbt8 -o pbt.png

Flags:
`

func runPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet plot", flag.ContinueOnError)
	out := fs.String("o", "", "output `file` (.png)")
	xAxis := fs.String("x", "steps", "x axis: steps (the run's env steps) or time (wall seconds since the start; not for sweeps)")
	name := fs.String("name", "mean100", "the `scalar` to draw: mean100, eval (eval_mean_return; with mean100, runs with evaluations also get their evaluations as mean ± std), mean100_all, env_steps_per_s, learner_updates_per_s, replay_size, learner_loss, weights_lag/<runner>")
	width := fs.Int("width", 800, "image width in `pixels`")
	height := fs.Int("height", 500, "image height in `pixels`")
	// Flags may come after the directories: parse, take an argument, repeat.
	var dirs []string
	for rest := args; ; {
		if err := parseFlagsOnly(fs, plotHelp, rest, stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case len(dirs) == 0:
		return usageError{errors.New("no run or sweep directories given")}
	case *out == "":
		return usageError{errors.New("-o FILE.png is required")}
	case !strings.EqualFold(filepath.Ext(*out), ".png"):
		return usageError{fmt.Errorf("-o %s: only .png is supported", *out)}
	case *xAxis != "steps" && *xAxis != "time":
		return usageError{fmt.Errorf("--x %q: want steps or time", *xAxis)}
	case *width < plot.MinPixels || *width > plot.MaxPixels || *height < plot.MinPixels || *height > plot.MaxPixels:
		return usageError{fmt.Errorf("--width %d --height %d: each must be in [%d, %d]", *width, *height, plot.MinPixels, plot.MaxPixels)}
	}
	return plot.Draw(dirs, plot.Options{Out: *out, Name: *name, ByTime: *xAxis == "time", Width: *width, Height: *height}, stderr)
}
