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
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

const evalHelp = `Usage: qfleet eval --checkpoint DIR [flags]

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

--render FILE.gif draws the first episode as an animated GIF, from the
observations (what the agent sees): CartPole as the cart on its ±2.4 track
with the pole, Acrobot as its two links and the height to swing above,
MountainCar as the hill with the car and the flag, MinAtar as its 10×10 grid,
one colour per channel (the cubehelix palette of MinAtar's display). At most
1000 frames (25 a second) are kept.

Flags:
`

// defaultEvalMaxSteps ends episodes of envs without a time limit (MinAtar's):
// a good enough agent could otherwise play one forever.
const defaultEvalMaxSteps = 100_000

type evalEpisode struct {
	Seed      int64   `json:"seed"`
	Return    float64 `json:"return"`
	Length    int     `json:"length"`
	Truncated bool    `json:"truncated"` // by the env's time limit or --max-episode-steps
}

// evalResult is the --json output.
type evalResult struct {
	Env            string        `json:"env"`
	Checkpoint     string        `json:"checkpoint"`
	Config         string        `json:"config"` // where the net's shape came from
	LearnerUpdates uint64        `json:"learner_updates"`
	EnvSteps       uint64        `json:"env_steps"`
	Seed           uint64        `json:"seed"`
	Epsilon        float64       `json:"epsilon"`
	Episodes       []evalEpisode `json:"episodes"`
	MeanReturn     float64       `json:"mean_return"`
	StdReturn      float64       `json:"std_return"`
	MinReturn      float64       `json:"min_return"`
	MaxReturn      float64       `json:"max_return"`
	MeanLength     float64       `json:"mean_length"`
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet eval", flag.ContinueOnError)
	dir := fs.String("checkpoint", "", "checkpoint `directory`, or a run directory with checkpoints/ (required)")
	n := fs.Int("episodes", 10, "episodes to play")
	seed := fs.Uint64("seed", 1, "seed of the episodes' starts and of the ε draws")
	eps := fs.Float64("epsilon", 0, "probability of a uniformly random action instead of the greedy one")
	maxSteps := fs.Int("max-episode-steps", 0, fmt.Sprintf("end an episode after this many steps (default: the env's time limit, or %d for envs without one)", defaultEvalMaxSteps))
	cfgPath := fs.String("config", "", "YAML config `file` of the training run, for the network's shape (default: the run directory's config.yaml, else the env's defaults)")
	render := fs.String("render", "", "write the first episode as an animated GIF to this `file`.gif")
	asJSON := fs.Bool("json", false, "print the result as one JSON object instead of text")
	if err := parseFlags(fs, evalHelp, args, stdout, stderr); err != nil {
		return err
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
	case *render != "" && !isGIFPath(*render):
		return usageError{fmt.Errorf("--render %s: want a .gif file", *render)}
	}
	if *render != "" {
		// Fail before the episodes, not after them.
		if fi, err := os.Stat(filepath.Dir(*render)); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("--render %s: no directory %s", *render, filepath.Dir(*render))}
		}
	}

	ld, err := loadEvalNet(*dir, *cfgPath, stderr)
	if err != nil {
		return err
	}
	sp := ld.env.Spec()
	limit := *maxSteps
	if limit == 0 {
		limit = sp.MaxEpisodeSteps
		if limit == 0 {
			limit = defaultEvalMaxSteps
		}
	}
	var rec *frameRecorder
	if *render != "" {
		draw, err := newRenderer(sp)
		if err != nil {
			return usageError{err}
		}
		rec = &frameRecorder{draw: draw}
	}
	fmt.Fprintf(stderr, "qfleet eval: %s, checkpoint %s (%d learner updates, %d env steps), net (%s) from %s; %d episode(s) at ε=%g, seed %d\n",
		sp.ID, ld.path, ld.ckpt.GetLearnerUpdates(), ld.ckpt.GetEnvSteps(), netShape(ld.cfg, ld.fwd.Spec()), ld.cfgFrom, *n, *eps, *seed)

	res := evalResult{
		Env: sp.ID, Checkpoint: ld.path, Config: ld.cfgFrom, LearnerUpdates: ld.ckpt.GetLearnerUpdates(),
		EnvSteps: ld.ckpt.GetEnvSteps(), Seed: *seed, Epsilon: *eps,
	}
	// Two streams: the episodes' starts do not depend on how many ε draws
	// the episodes before them made.
	starts := rand.New(rand.NewPCG(*seed, 1))
	acts := rand.New(rand.NewPCG(*seed, 2))
	for i := range *n {
		r := rec
		if i > 0 {
			r = nil
		}
		ep := playEpisode(ld.env, ld.fwd, starts.Int64(), *eps, acts, limit, r)
		res.Episodes = append(res.Episodes, ep)
		if !*asJSON {
			trunc := ""
			if ep.Truncated {
				trunc = " truncated"
			}
			fmt.Fprintf(stdout, "episode %d/%d: seed=%d return=%g length=%d%s\n", i+1, *n, ep.Seed, ep.Return, ep.Length, trunc)
		}
	}
	res.summarize()
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
	if rec != nil {
		if err := rec.writeGIF(*render); err != nil {
			return err
		}
		note := ""
		if rec.dropped > 0 {
			note = fmt.Sprintf(" (the first %d of %d: GIFs are capped at %d frames)", len(rec.frames), len(rec.frames)+rec.dropped, maxRenderFrames)
		}
		fmt.Fprintf(stderr, "qfleet eval: wrote %d frames of episode 1 to %s%s\n", len(rec.frames), *render, note)
	}
	return nil
}

// playEpisode plays one episode: greedy on f, a uniform action with
// probability eps; rec, when non-nil, gets every observation, the first
// included (so steps+1 frames).
func playEpisode(env envs.Env, f *nets.Forward, seed int64, eps float64, rng *rand.Rand, limit int, rec *frameRecorder) evalEpisode {
	ep := evalEpisode{Seed: seed}
	obs := env.Reset(seed)
	nA := env.Spec().NumActions
	for {
		if rec != nil {
			rec.add(obs)
		}
		if ep.Length >= limit {
			ep.Truncated = true
			return ep
		}
		a := f.Greedy(obs)
		if eps > 0 && rng.Float64() < eps {
			a = rng.IntN(nA)
		}
		var r float64
		var term, trunc bool
		obs, r, term, trunc = env.Step(a)
		ep.Return += r
		ep.Length++
		if term || trunc {
			if rec != nil {
				rec.add(obs)
			}
			ep.Truncated = trunc && !term
			return ep
		}
	}
}

// summarize computes the statistics over the episodes (at least one).
func (r *evalResult) summarize() {
	var sum, sumLen float64
	r.MinReturn, r.MaxReturn = math.Inf(1), math.Inf(-1)
	for _, e := range r.Episodes {
		sum += e.Return
		sumLen += float64(e.Length)
		r.MinReturn, r.MaxReturn = min(r.MinReturn, e.Return), max(r.MaxReturn, e.Return)
	}
	k := float64(len(r.Episodes))
	r.MeanReturn, r.MeanLength = sum/k, sumLen/k
	var ss float64
	for _, e := range r.Episodes {
		ss += (e.Return - r.MeanReturn) * (e.Return - r.MeanReturn)
	}
	r.StdReturn = math.Sqrt(ss / k)
}

// evalNet is a checkpoint loaded into a network for its env.
type evalNet struct {
	ckpt    *messages.Checkpoint
	path    string // the checkpoint directory it came from
	cfgFrom string // the config file that shaped the net, or "the defaults for ENV"
	cfg     actors.Config
	env     envs.Env
	fwd     *nets.Forward
}

// loadEvalNet finds the newest good checkpoint in dir or dir/checkpoints,
// the config of its run, and builds the network they describe.
func loadEvalNet(dir, cfgPath string, stderr io.Writer) (*evalNet, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError{fmt.Errorf("--checkpoint %s: no such directory", dir)}
	case err != nil:
		return nil, usageError{fmt.Errorf("--checkpoint: %w", err)}
	case !fi.IsDir():
		return nil, usageError{fmt.Errorf("--checkpoint %s: not a directory", dir)}
	}
	ld := &evalNet{}
	// A run directory holds config.yaml next to checkpoints/; a checkpoint
	// directory may be that checkpoints/, or a run directory itself when
	// --checkpoint-dir pointed there.
	var runDirs []string
	for _, cand := range []string{dir, filepath.Join(dir, qfleet.RunCheckpointsDir)} {
		c, skipped, err := actors.ReadLatestCheckpoint(cand)
		if err == nil {
			for _, e := range skipped {
				fmt.Fprintf(stderr, "qfleet eval: warning: skipped %v\n", e)
			}
			ld.ckpt, ld.path = c, cand
			runDirs = []string{dir}
			if cand == dir {
				runDirs = append(runDirs, filepath.Join(dir, ".."))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			// All there are corrupt: one line that says why each is.
			for _, e := range skipped {
				err = fmt.Errorf("%w; %v", err, e)
			}
			return nil, err
		}
	}
	if ld.ckpt == nil {
		return nil, fmt.Errorf("no checkpoint (%s) in %s or %s", actors.CheckpointFile, dir, filepath.Join(dir, qfleet.RunCheckpointsDir))
	}
	envID := ld.ckpt.GetEnv()
	if ld.env, err = envs.Make(envID); err != nil {
		return nil, fmt.Errorf("checkpoint in %s: %w", ld.path, err)
	}
	cf := qfleet.Config{Config: actors.DefaultConfigFor(envID)}
	ld.cfgFrom = "the defaults for " + envID
	if cfgPath == "" {
		for _, d := range runDirs {
			if p := filepath.Join(d, qfleet.RunConfigFile); fileExists(p) {
				cfgPath = p
				break
			}
		}
	}
	if cfgPath != "" {
		if err := qfleet.LoadConfig(cfgPath, &cf); err != nil {
			return nil, usageError{err}
		}
		ld.cfgFrom = cfgPath
		if cf.Env != "" && cf.Env != envID {
			fmt.Fprintf(stderr, "qfleet eval: warning: %s is a config for %s, the checkpoint is for %s\n", cfgPath, cf.Env, envID)
		}
	}
	spec := actors.NetSpec(ld.env, cf.Config)
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", ld.cfgFrom, err)
	}
	if err := checkFits(ld.ckpt, spec); err != nil {
		return nil, fmt.Errorf("checkpoint in %s does not fit the net of %s (%s): %w; give the training run's config with --config",
			ld.path, ld.cfgFrom, netShape(cf.Config, spec), err)
	}
	ld.cfg, ld.fwd = cf.Config, nets.NewForward(spec)
	if err := ld.fwd.SetParams(ld.ckpt.GetOnline()); err != nil {
		return nil, err // checkFits compared the lengths already
	}
	return ld, nil
}

// checkFits compares the checkpoint's layer widths (when it records them)
// and parameter count with the net's.
func checkFits(c *messages.Checkpoint, s nets.Spec) error {
	want := []uint32{uint32(s.Inputs)}
	for _, h := range s.Hidden {
		want = append(want, uint32(h))
	}
	want = append(want, uint32(s.Outputs))
	if got := c.GetLayers(); len(got) > 0 && !slices.Equal(got, want) {
		return fmt.Errorf("its layers are %v, the net's %v", got, want)
	}
	if got, n := len(c.GetOnline()), s.NumParams(); got != n {
		return fmt.Errorf("it has %d parameters, the net %d", got, n)
	}
	return nil
}

// netShape names the settings that shape the net, to say what to fix.
func netShape(c actors.Config, s nets.Spec) string {
	return fmt.Sprintf("hidden %v, conv_filters %d, dueling %v: %d parameters", c.Hidden, c.ConvFilters, c.Dueling, s.NumParams())
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
