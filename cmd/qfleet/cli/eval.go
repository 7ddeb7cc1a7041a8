package cli

// 'qfleet eval': play episodes with a saved learner's online network, to
// see what a checkpoint is worth apart from the training run's mean100
// (which mixes weights versions and exploration).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/envs/render"
)

const evalHelp = `Usage: qfleet eval --checkpoint DIR [flags]
       qfleet eval RUN_DIR [--best] [flags]

Plays --episodes episodes with the online network of the newest good
checkpoint in DIR (a checkpoint directory, or a run directory whose
checkpoints/ holds it), greedily unless --epsilon says otherwise, and prints
one line per episode and a summary: mean return, standard deviation
(population), min, max and mean length. Episode seeds come from --seed, so a
seed gives the same episodes whatever --epsilon is. MinAtar games keep their
sticky actions (p = 0.1): that randomness is part of the env.

The network must have the shape it was trained with. It is built from the
config of the run: --config FILE when given, else the config.yaml of the run
directory (DIR, or DIR/.. for a checkpoint directory inside one), else the
env's defaults; a checkpoint that does not fit it is refused with a message
naming both shapes.

--best plays the best-evaluated weights instead: the best.ckpt the learner
keeps beside its checkpoints when the run had evaluations (eval_every > 0)
and checkpoints. --checkpoint may also name that best.ckpt file.

--render FILE.gif draws the first episode as an animated GIF, from the
observations (what the agent sees): CartPole as the cart on its ±2.4 track
with the pole, Acrobot as its two links and the height to swing above,
MountainCar as the hill with the car and the flag, MinAtar as its 10×10 grid,
one colour per channel (the cubehelix palette of MinAtar's display). At most
1000 frames (25 a second) are kept.

Flags:
`

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet eval", flag.ContinueOnError)
	dir := fs.String("checkpoint", "", "checkpoint `directory`, or a run directory with checkpoints/ (required)")
	n := fs.Int("episodes", 10, "episodes to play")
	seed := fs.Uint64("seed", 1, "seed of the episodes' starts and of the ε draws")
	eps := fs.Float64("epsilon", 0, "probability of a uniformly random action instead of the greedy one")
	maxSteps := fs.Int("max-episode-steps", 0, fmt.Sprintf("end an episode after this many steps (default: the env's time limit, or %d for envs without one)", qfleet.DefaultEvalMaxSteps))
	cfgPath := fs.String("config", "", "YAML config `file` of the training run, for the network's shape (default: the run directory's config.yaml, else the env's defaults)")
	gifPath := fs.String("render", "", "write the first episode as an animated GIF to this `file`.gif")
	asJSON := fs.Bool("json", false, "print the result as one JSON object instead of text")
	best := fs.Bool("best", false, "play the best-evaluated weights (best.ckpt) instead of the newest checkpoint")
	// The directory may come first or after the flags: parse, take it, parse the rest.
	var pos []string
	for rest := args; ; {
		if err := parseFlagsOnly(fs, evalHelp, rest, stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case len(pos) > 1 || len(pos) == 1 && *dir != "":
		return usageError{fmt.Errorf("one checkpoint or run directory, got %q and --checkpoint %q", pos, *dir)}
	case len(pos) == 1:
		*dir = pos[0]
	}
	switch {
	case *dir == "":
		return usageError{errors.New("--checkpoint DIR is required")}
	case *n < 1:
		return usageError{fmt.Errorf("--episodes must be >= 1, got %d", *n)}
	case !(*eps >= 0 && *eps <= 1):
		return usageError{fmt.Errorf("--epsilon must be in [0, 1], got %g", *eps)}
	case *maxSteps < 0:
		return usageError{fmt.Errorf("--max-episode-steps must be >= 0, got %d", *maxSteps)}
	case *gifPath != "" && !render.IsGIFPath(*gifPath):
		return usageError{fmt.Errorf("--render %s: want a .gif file", *gifPath)}
	}
	if *gifPath != "" {
		// Fail before the episodes, not after them.
		if fi, err := os.Stat(filepath.Dir(*gifPath)); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("--render %s: no directory %s", *gifPath, filepath.Dir(*gifPath))}
		}
	}

	load := qfleet.LoadPolicy
	if *best || filepath.Base(*dir) == qfleet.BestCheckpointFile {
		load = qfleet.LoadBestPolicy
	}
	pol, err := load(*dir, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer pol.Close()
	sp := pol.Env().Spec()
	o := qfleet.EvalOptions{Episodes: *n, Seed: *seed, Epsilon: *eps, MaxEpisodeSteps: *maxSteps}
	if *gifPath != "" {
		draw, err := render.For(sp)
		if err != nil {
			return usageError{err}
		}
		o.Record = render.NewRecorder(draw)
	}
	if !*asJSON {
		o.OnEpisode = func(i int, ep qfleet.Episode) {
			trunc := ""
			if ep.Truncated {
				trunc = " truncated"
			}
			fmt.Fprintf(stdout, "episode %d/%d: seed=%d return=%g length=%d%s\n", i+1, *n, ep.Seed, ep.Return, ep.Length, trunc)
		}
	}
	fmt.Fprintf(stderr, "qfleet eval: %s, %s; %d episode(s) at ε=%g, seed %d\n", sp.ID, pol.Describe(), *n, *eps, *seed)
	res := pol.Evaluate(o)
	if res.Error != "" {
		return fmt.Errorf("the env failed after %d episode(s): %s", len(res.Episodes), res.Error)
	}
	if *asJSON {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		fmt.Fprintf(stdout, "%s: %d episodes: mean return %.2f std %.2f min %g max %g mean length %.2f\n",
			sp.ID, len(res.Episodes), res.MeanReturn, res.StdReturn, res.MinReturn, res.MaxReturn, res.MeanLength)
	}
	if rec := o.Record; rec != nil {
		if err := rec.WriteGIF(*gifPath); err != nil {
			return err
		}
		note := ""
		if rec.Dropped() > 0 {
			note = fmt.Sprintf(" (the first %d of %d: GIFs are capped at %d frames)", rec.Frames(), rec.Frames()+rec.Dropped(), render.MaxFrames)
		}
		fmt.Fprintf(stderr, "qfleet eval: wrote %d frames of episode 1 to %s%s\n", rec.Frames(), *gifPath, note)
	}
	return nil
}
