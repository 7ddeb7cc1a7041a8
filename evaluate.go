package qfleet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/render"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// Evaluation of a saved network apart from training: greedy episodes (or
// ε-greedy ones) on fresh env copies, with seeds of their own.

// DefaultEvalMaxSteps ends episodes of envs without a time limit (MinAtar's):
// a good enough agent could otherwise play one forever. The evaluator role
// caps its episodes at the same number.
const DefaultEvalMaxSteps = actors.DefaultEvalMaxSteps

// Episode is one evaluation episode.
type Episode struct {
	Seed      int64   `json:"seed"`
	Return    float64 `json:"return"`
	Length    int     `json:"length"`
	Truncated bool    `json:"truncated"` // by the env's time limit or EvalOptions.MaxEpisodeSteps
}

// EvalResult is an evaluation: where the network came from, the episodes
// and their statistics ('qfleet eval --json').
type EvalResult struct {
	Env            string    `json:"env"`
	Checkpoint     string    `json:"checkpoint"`
	Config         string    `json:"config"` // where the net's shape came from
	LearnerUpdates uint64    `json:"learner_updates"`
	EnvSteps       uint64    `json:"env_steps"`
	Seed           uint64    `json:"seed"`
	Epsilon        float64   `json:"epsilon"`
	Episodes       []Episode `json:"episodes"`
	// Error ends the evaluation early: the env failed (an external env's
	// process, say); Episodes holds the episodes played before.
	Error      string  `json:"error,omitempty"`
	MeanReturn float64 `json:"mean_return"`
	StdReturn  float64 `json:"std_return"`
	MinReturn  float64 `json:"min_return"`
	MaxReturn  float64 `json:"max_return"`
	MeanLength float64 `json:"mean_length"`
}

// EvalOptions say how to evaluate.
type EvalOptions struct {
	Episodes        int     // at least 1
	Seed            uint64  // of the episodes' starts and of the ε draws
	Epsilon         float64 // probability of a uniformly random action instead of the greedy one
	MaxEpisodeSteps int     // 0: the env's time limit, or DefaultEvalMaxSteps for envs without one
	// Record, when set, gets every observation of the first episode, the
	// first included (steps+1 frames).
	Record *render.Recorder
	// OnEpisode, when set, sees each episode as it ends (i from 0).
	OnEpisode func(i int, ep Episode)
}

// Evaluate plays o.Episodes episodes with p's network on its env.
func (p *Policy) Evaluate(o EvalOptions) EvalResult {
	sp := p.env.Spec()
	limit := o.MaxEpisodeSteps
	if limit == 0 {
		limit = sp.MaxEpisodeSteps
		if limit == 0 {
			limit = DefaultEvalMaxSteps
		}
	}
	res := EvalResult{
		Env: sp.ID, Checkpoint: p.path, Config: p.cfgFrom, LearnerUpdates: p.ckpt.GetLearnerUpdates(),
		EnvSteps: p.ckpt.GetEnvSteps(), Seed: o.Seed, Epsilon: o.Epsilon,
	}
	// Two streams: the episodes' starts do not depend on how many ε draws
	// the episodes before them made. The starts are actors.EpisodeSeeds',
	// the evaluator role's too: with Seed actors.EvalSeed(run seed) this
	// plays the episodes the run's evaluator played.
	starts := actors.EpisodeSeeds(o.Seed, o.Episodes)
	acts := rand.New(rand.NewPCG(o.Seed, 2))
	for i := range o.Episodes {
		rec := o.Record
		if i > 0 {
			rec = nil
		}
		ep := playEpisode(p.env, p.fwd, starts[i], o.Epsilon, acts, limit, rec)
		if err := envs.Err(p.env); err != nil {
			res.Error = err.Error()
			break
		}
		res.Episodes = append(res.Episodes, ep)
		if o.OnEpisode != nil {
			o.OnEpisode(i, ep)
		}
	}
	res.Summarize()
	return res
}

// playEpisode plays one episode (actors.PlayEpisode); rec, when non-nil,
// gets every observation, the first included (so steps+1 frames).
func playEpisode(env envs.Env, f *nets.Forward, seed int64, eps float64, rng *rand.Rand, limit int, rec *render.Recorder) Episode {
	var observe func([]float32)
	if rec != nil {
		observe = rec.Add
	}
	p := actors.PlayEpisode(env, f, seed, eps, rng, limit, observe)
	return Episode{Seed: seed, Return: p.Return, Length: p.Length, Truncated: p.Truncated}
}

// Summarize computes the statistics of r.Episodes (at least one).
func (r *EvalResult) Summarize() {
	returns := make([]float64, len(r.Episodes))
	var sumLen float64
	for i, e := range r.Episodes {
		returns[i] = e.Return
		sumLen += float64(e.Length)
	}
	r.MeanReturn, r.StdReturn, r.MinReturn, r.MaxReturn = actors.ReturnStats(returns)
	r.MeanLength = sumLen / float64(len(r.Episodes))
}

// Policy is a saved learner's network loaded for its env: the greedy
// policy of its Q-values.
type Policy struct {
	ckpt    *messages.Checkpoint
	path    string // the checkpoint directory it came from
	cfgFrom string // the config file that shaped the net, or "the defaults for ENV"
	cfg     actors.Config
	env     envs.Env
	fwd     *nets.Forward
}

// LoadPolicy finds the newest good checkpoint in dir (a checkpoint
// directory or a run directory), the config of its run (cfgPath, else the
// run directory's config.yaml, else the env's defaults), and builds the
// network they describe. Warnings (a corrupt newer checkpoint skipped, a
// config of another env) go to warn.
func LoadPolicy(dir, cfgPath string, warn io.Writer) (*Policy, error) {
	return loadPolicy(dir, cfgPath, warn, false)
}

// LoadBestPolicy is LoadPolicy of the best-evaluated weights: the
// best.ckpt the learner wrote beside its checkpoints (the evaluator role).
// dir may also name the best.ckpt file itself.
func LoadBestPolicy(dir, cfgPath string, warn io.Writer) (*Policy, error) {
	if filepath.Base(dir) == actors.BestCheckpointFile {
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
	}
	return loadPolicy(dir, cfgPath, warn, true)
}

// readPolicyCheckpoint reads the checkpoint a policy plays from cand: the
// newest good learner.ckpt, or with best best.ckpt.
func readPolicyCheckpoint(cand string, best bool) (*messages.Checkpoint, []error, error) {
	if best {
		c, err := actors.ReadBestCheckpoint(cand)
		return c, nil, err
	}
	return actors.ReadLatestCheckpoint(cand)
}

func loadPolicy(dir, cfgPath string, warn io.Writer, best bool) (*Policy, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, UsageError{fmt.Errorf("--checkpoint %s: no such directory", dir)}
	case err != nil:
		return nil, UsageError{fmt.Errorf("--checkpoint: %w", err)}
	case !fi.IsDir():
		return nil, UsageError{fmt.Errorf("--checkpoint %s: not a directory", dir)}
	}
	ld := &Policy{}
	// A run directory holds config.yaml next to checkpoints/; a checkpoint
	// directory may be that checkpoints/, or a run directory itself when
	// --checkpoint-dir pointed there.
	var runDirs []string
	for _, cand := range []string{dir, filepath.Join(dir, RunCheckpointsDir)} {
		c, skipped, err := readPolicyCheckpoint(cand, best)
		if err == nil {
			for _, e := range skipped {
				fmt.Fprintf(warn, "qfleet eval: warning: skipped %v\n", e)
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
		name := actors.CheckpointFile
		if best {
			name = actors.BestCheckpointFile + ": no evaluation was the best yet, or the run had no evaluator or no checkpoints"
		}
		return nil, fmt.Errorf("no checkpoint (%s) in %s or %s", name, dir, filepath.Join(dir, RunCheckpointsDir))
	}
	envID := ld.ckpt.GetEnv()
	cf := Config{Config: actors.DefaultConfigFor(envID)}
	ld.cfgFrom = "the defaults for " + envID
	if cfgPath == "" {
		for _, d := range runDirs {
			if p := filepath.Join(d, RunConfigFile); fileExists(p) {
				cfgPath = p
				break
			}
		}
	}
	if cfgPath != "" {
		if err := LoadConfig(cfgPath, &cf); err != nil {
			return nil, UsageError{err}
		}
		ld.cfgFrom = cfgPath
		if cf.Env != "" && cf.Env != envID {
			fmt.Fprintf(warn, "qfleet eval: warning: %s is a config for %s, the checkpoint is for %s\n", cfgPath, cf.Env, envID)
		}
		// An env of the run's own (env_command, env_address) is started as
		// the run started it, under the checkpoint's env id.
		cf.Env = envID
		if err := useExternalEnv(&cf); err != nil {
			return nil, fmt.Errorf("config %s: %w", cfgPath, err)
		}
	}
	if ld.env, err = envs.Make(envID); err != nil {
		return nil, fmt.Errorf("checkpoint in %s: %w", ld.path, err)
	}
	if err := actors.CheckNetwork(ld.env.Spec(), cf.Config); err != nil {
		return nil, fmt.Errorf("config %s: %w", ld.cfgFrom, err)
	}
	spec := actors.NetSpec(ld.env.Spec(), cf.Config)
	if ld.env, err = envs.StackEnv(ld.env, cf.FrameStack); err != nil { // as the run's runners did
		return nil, fmt.Errorf("config %s: %w", ld.cfgFrom, err)
	}
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
	if c.GetLayerNorm() != s.LayerNorm {
		return fmt.Errorf("its net has layer_norm %v, the config's %v", c.GetLayerNorm(), s.LayerNorm)
	}
	if got, n := len(c.GetOnline()), s.NumParams(); got != n {
		return fmt.Errorf("it has %d parameters, the net %d", got, n)
	}
	return nil
}

// netShape names the settings that shape the net, to say what to fix.
func netShape(c actors.Config, s nets.Spec) string {
	return fmt.Sprintf("hidden %v, conv_filters %d, dueling %v, layer_norm %v: %d parameters", c.Hidden, c.ConvFilters, c.Dueling, c.LayerNorm, s.NumParams())
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// Env is the policy's env (a fresh instance of the checkpoint's).
func (p *Policy) Env() envs.Env { return p.env }

// Close releases the policy's env (an external env's process or
// connection).
func (p *Policy) Close() error { return envs.Close(p.env) }

// Describe says where the policy came from, for a person.
func (p *Policy) Describe() string {
	if p.ckpt.GetEvaluated() {
		term, pub := actors.SplitVersion(p.ckpt.GetWeightsVersion())
		return fmt.Sprintf("best checkpoint in %s (weights version t%d/v%d, evaluated at %d env steps: mean return %.2f), net (%s) from %s",
			p.path, term, pub, p.ckpt.GetEnvSteps(), p.ckpt.GetEvalMeanReturn(), netShape(p.cfg, p.fwd.Spec()), p.cfgFrom)
	}
	return fmt.Sprintf("checkpoint %s (%d learner updates, %d env steps), net (%s) from %s",
		p.path, p.ckpt.GetLearnerUpdates(), p.ckpt.GetEnvSteps(), netShape(p.cfg, p.fwd.Spec()), p.cfgFrom)
}
