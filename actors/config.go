package actors

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qfleet/qfleet/nets"
)

// Config is the one hyper-parameter struct of a DQN run, grouped as in Acme's
// DQNConfig and CleanRL's Args. The command maps flags and the YAML config file
// straight onto it (yaml keys are the snake_case names below).
type Config struct {
	// Learning rule
	Hidden             []int   `yaml:"hidden"`                                // hidden layer widths of the MLP Q-network (after the conv torso, if any)
	ConvFilters        int     `yaml:"conv_filters"`                          // 3×3 conv filters before the dense layers, for image observations (MinAtar: 16); 0: none
	Network            string  `yaml:"network" json:",omitempty"`             // the Q-network's torso: "" (dense layers of hidden; with conv_filters a MinAtar conv first) or "nature" (Mnih et al. 2015's 3 conv layers 32×8×8/4, 64×4×4/2, 64×3×3/1 and dense 512 on inputs/255; for image observations; hidden and conv_filters unused)
	FrameStack         int     `yaml:"frame_stack" json:",omitempty"`         // the network sees the env's last frame_stack frames, stacked channel-last by the runner (Atari: 4); the env sends one frame a step and the replay stores each frame once; 0 or 1: one frame
	Dueling            bool    `yaml:"dueling"`                               // dueling head: Q = V + A − mean(A) (Wang et al. 2016)
	LayerNorm          bool    `yaml:"layer_norm" json:",omitempty"`          // LayerNorm (no gain or bias) before each hidden ReLU, as PQN (Gallici et al. 2024); the same parameters, ~27% more per CartPole update
	BatchSize          int     `yaml:"batch_size"`                            // transitions per learner update
	LearningRate       float64 `yaml:"learning_rate"`                         // Adam step size
	LearningRateEnd    float64 `yaml:"learning_rate_end" json:",omitempty"`   // Adam step size at the end of the decay
	LearningRateDecay  int     `yaml:"learning_rate_decay" json:",omitempty"` // learner updates of a linear decay from learning_rate to learning_rate_end (then constant); 0: learning_rate throughout
	Gamma              float64 `yaml:"gamma"`                                 // discount γ per env step
	NStep              int     `yaml:"n_step"`                                // n of the n-step return computed by runners
	MaxGradNorm        float64 `yaml:"max_grad_norm"`                         // global gradient-norm clip; 0 disables
	DoubleDQN          bool    `yaml:"double_dqn"`                            // select a' with the online net, value it with the target net
	TargetUpdatePeriod int     `yaml:"target_update_period"`                  // learner updates between hard target syncs (ignored when TargetTau > 0)
	TargetTau          float64 `yaml:"target_tau"`                            // Polyak rate per update; 0 means hard syncs
	PublishEvery       int     `yaml:"publish_every"`                         // learner updates between weight publications to runners

	// Replay
	ReplayCapacity   int     `yaml:"replay_capacity"`    // transitions kept (ring buffer, oldest overwritten)
	MinReplaySize    int     `yaml:"min_replay_size"`    // transitions inserted before the first sample
	SamplesPerInsert float64 `yaml:"samples_per_insert"` // target sampled:inserted transitions ratio (batch/train-frequency); 0 disables the limiter
	RateTolerance    float64 `yaml:"rate_tolerance"`     // how far, in sampled transitions, either side may run ahead of the ratio
	PrefetchBatches  int     `yaml:"prefetch_batches"`   // sample requests the learner keeps outstanding
	// Prioritized replay (Schaul et al. 2016; Ape-X, Horgan et al. 2018)
	Prioritized       bool    `yaml:"prioritized"`         // sample ∝ priority^α instead of uniformly
	PriorityExponent  float64 `yaml:"priority_exponent"`   // α: 0 is uniform, 1 fully proportional
	ImportanceBeta    float64 `yaml:"importance_beta"`     // β at the start; annealed linearly to 1
	BetaAnnealUpdates int     `yaml:"beta_anneal_updates"` // learner updates over which β reaches 1
	RunnerPriorities  bool    `yaml:"runner_priorities"`   // runners send initial priorities |TD| from their own net (Ape-X); else new transitions get the max priority

	// Exploration
	EpsilonStart      float64 `yaml:"epsilon_start"`       // ε at a runner's first step
	EpsilonEnd        float64 `yaml:"epsilon_end"`         // ε after the decay (the lowest runner's, with a ladder)
	EpsilonDecaySteps int     `yaml:"epsilon_decay_steps"` // env steps (all runners together) of the linear decay
	EpsilonLadder     float64 `yaml:"epsilon_ladder"`      // Ape-X α: env i ends at ε_end^(1+α·i/(N−1)), i and N over every env of every runner of the cluster (by node name, runner, then env); 0 gives every env ε_end

	// Runners
	Runners       int           `yaml:"runners"`                           // env runner actors
	EnvsPerRunner int           `yaml:"envs_per_runner" json:",omitempty"` // envs each runner steps together (1..4096): one batched forward pass per step for all of them, each env its own rung of the ε ladder
	SendBatch     int           `yaml:"send_batch"`                        // transitions per experience message
	CreditWindow  int           `yaml:"credit_window"`                     // transitions a runner may have un-acknowledged by the replay
	StepsPerChunk int           `yaml:"steps_per_chunk"`                   // env steps per mailbox turn; keeps weights and credits flowing in
	OutboxLimit   int           `yaml:"outbox_limit"`                      // transitions a runner buffers while it has no credit or no replay
	DropWhenFull  bool          `yaml:"drop_when_full"`                    // full outbox: keep stepping and drop the oldest (counted), instead of pausing
	CreditTimeout time.Duration `yaml:"credit_timeout"`                    // no credit back for this long: presume it lost in flight and restore the window

	// Wire (between hosts only; local messages are never encoded)
	WireFloat16        bool          `yaml:"wire_float16"`                           // observations as half floats on the wire (lossy, ~3 digits); frames and zstd are always on
	WeightsChunkBytes  int           `yaml:"weights_chunk_bytes"`                    // weights travel to another host in chunks of this size, at most 8 in flight per runner, so credits never wait behind a big transfer
	WeightsDelta       bool          `yaml:"weights_delta"`                          // send weights as a delta against the version the runner acknowledged
	WeightsMaxRate     int           `yaml:"weights_max_rate" json:",omitempty"`     // bytes/s of weights the broadcaster may send each runner on another host, resends included (0: unlimited; else at least one weights chunk per 6s); a version waiting for it is replaced by a newer one
	WeightsMinInterval time.Duration `yaml:"weights_min_interval" json:",omitempty"` // least time between the starts of two weights versions sent to a runner on another host, e.g. 250ms (0: none; at most 6s)
	ProgressEverySteps int           `yaml:"progress_every_steps"`                   // env steps between progress reports to the stats actor

	// Evaluation (the evaluator role, as Stable-Baselines3's EvalCallback)
	EvalEvery    int     `yaml:"eval_every" json:",omitempty"`    // run env steps between evaluations of the newest weights (greedy episodes on env copies of the evaluator's own); 0: no evaluator
	EvalEpisodes int     `yaml:"eval_episodes" json:",omitempty"` // episodes per evaluation, on seeds of their own, the same at every evaluation so that evaluations compare
	EvalEpsilon  float64 `yaml:"eval_epsilon" json:",omitempty"`  // ε of the evaluation episodes (0: greedy)
}

// DefaultConfig returns the defaults of an environment qfleet knows nothing
// about (a user's own). They were tuned for a solved task that stays solved,
// on CartPole-v1 and Acrobot-v1, on a 2-core machine (BENCHMARKS.md);
// DefaultConfigFor adds what each built-in env family does better with.
func DefaultConfig() Config {
	tc := nets.DefaultTrainConfig()
	return Config{
		Hidden:             []int{64, 64},
		BatchSize:          tc.BatchSize,
		LearningRate:       1e-3,
		LearningRateEnd:    1e-4,
		LearningRateDecay:  25_000,
		Gamma:              0.99,
		NStep:              3,
		MaxGradNorm:        tc.MaxGradNorm,
		DoubleDQN:          tc.DoubleDQN,
		TargetUpdatePeriod: 500,
		TargetTau:          0.005,
		PublishEvery:       10,

		ReplayCapacity:   100_000,
		MinReplaySize:    1_000,
		SamplesPerInsert: 32,
		RateTolerance:    2_048,
		PrefetchBatches:  2,

		PriorityExponent:  0.6,
		ImportanceBeta:    0.4,
		BetaAnnealUpdates: 100_000,
		RunnerPriorities:  true,

		EpsilonStart: 1.0,
		// ε 0.01 after the decay: with 0.05, mean100 of a greedy policy
		// that scores 500 in every evaluation still fell below 450 on 4 of
		// 20 CartPole seeds (5% random actions tip the pole); with 0.01 all
		// 20 held (BENCHMARKS.md).
		EpsilonEnd:        0.01,
		EpsilonDecaySteps: 10_000,

		Runners:       1,
		EnvsPerRunner: 1,
		SendBatch:     32,
		CreditWindow:  256,
		StepsPerChunk: 64,
		OutboxLimit:   64,
		CreditTimeout: 3 * time.Second,

		WireFloat16:        true,
		WeightsChunkBytes:  32 << 10,
		WeightsDelta:       true,
		ProgressEverySteps: 500,

		EvalEvery:    DefaultEvalEvery,
		EvalEpisodes: DefaultEvalEpisodes,
	}
}

// Evaluation defaults. Every 5,000 env steps suits the classic-control
// envs, solved in 20k–200k steps: a curve of tens of points, each costing
// at most eval_episodes × 500 forward passes (under 1% of a CartPole run's
// time). MinAtar runs last millions of steps with episodes of thousands of
// steps through a conv net, so it evaluates every 100,000
// (DefaultConfigFor).
const (
	DefaultEvalEvery        = 5_000
	DefaultEvalEveryMinAtar = 100_000
	DefaultEvalEpisodes     = 20 // 10 let a lucky evaluation pick the best checkpoint (100 episodes of it: 387)
)

// DefaultEvalMaxSteps ends evaluation episodes of envs without a time limit
// (MinAtar's): a good enough agent could otherwise play one forever. The
// evaluator role and 'qfleet eval' (the root package's Policy.Evaluate)
// both use it.
const DefaultEvalMaxSteps = 100_000

// DefaultConfigFor returns the defaults for an environment: DefaultConfig
// (tuned on CartPole-v1) with the changes that env family needs to learn out
// of the box (BENCHMARKS.md has the runs behind each).
func DefaultConfigFor(envID string) Config {
	c := DefaultConfig()
	if strings.HasPrefix(envID, "MinAtar/") {
		// The MinAtar paper's DQN (Young & Tian 2019): conv 16×3×3 → 128,
		// batch 32, one update per env step, target synced every 1000
		// updates, ε decayed over the first 100k frames; Adam here
		// instead of RMSProp, double DQN and 3-step returns on top.
		c.ConvFilters = 16
		c.Hidden = []int{128}
		c.BatchSize = 32
		c.LearningRate = 2.5e-4
		c.LearningRateDecay = 0 // constant, as the paper's
		c.SamplesPerInsert = 32
		c.RateTolerance = 1024
		c.TargetTau = 0
		c.TargetUpdatePeriod = 1000
		c.PublishEvery = 50
		c.MinReplaySize = 5_000
		c.EpsilonDecaySteps = 100_000 // to 0.05, not the paper's 0.1: mean100 counts episodes at ε ≤ 0.05
		c.EpsilonEnd = 0.05
		c.EvalEvery = DefaultEvalEveryMinAtar
		return c
	}
	switch envID {
	case "CartPolePixels-v1":
		// CartPole seen as 84×84 gray frames: the Nature DQN's network on
		// the last 4 frames (one frame has no velocities), its batch of 32
		// and one update per 4 env steps (samples_per_insert 8), Adam at
		// a constant 1e-4 instead of RMSProp, hard target syncs.
		c.Network = NetworkNature
		c.FrameStack = 4
		c.BatchSize = 32
		c.LearningRate = 1e-4
		c.LearningRateDecay = 0
		c.SamplesPerInsert = 8
		c.RateTolerance = 1024
		c.TargetTau = 0
		c.TargetUpdatePeriod = 1000
		c.MinReplaySize = 5_000
		c.EpsilonDecaySteps = 50_000
		c.EvalEvery = 10_000
	case "CartPole-v1":
		// LayerNorm before each hidden ReLU (PQN's), 48 samples per
		// insert and an evaluation every 2,500 env steps: 20/20 seeds
		// solved by evaluation at a median of 32.9k env steps (75k
		// without), and all 20 held to 200k. Not in DefaultConfig: on
		// Acrobot the same three keys solved 2 of 5 seeds in 100k env
		// steps, against 5 of 5 without (BENCHMARKS.md).
		c.LayerNorm = true
		c.SamplesPerInsert = 48
		c.EvalEvery = 2_500
	case "Acrobot-v1":
		// Sparse −1 rewards over up to 500 steps: a longer exploration phase
		// and a bigger replay than CartPole's.
		c.EpsilonDecaySteps = 20_000
	case "MountainCar-v0":
		// The reward is −1 until the goal, which random play reaches only
		// now and then: longer exploration, 8-step returns to carry the
		// goal's value back faster, prioritized replay to replay the rare
		// successes, a higher learning rate, a 256×256 network (with 64×64
		// every seed stalled near −125) and ε down to 0.01: near the −110
		// target, 5% random actions cost the few steps that decide it
		// (tuning runs in BENCHMARKS.md).
		c.Hidden = []int{256, 256}
		c.EpsilonDecaySteps = 30_000
		c.EpsilonEnd = 0.01
		// One update of 128 per 2 env steps at a constant 1e-3: with
		// CartPole's decay and half the updates, 4 of 5 seeds solved, at a
		// median of 128k env steps instead of 45k (BENCHMARKS.md).
		c.SamplesPerInsert = 64
		c.LearningRateDecay = 0
		c.NStep = 8
		c.Prioritized = true
		c.LearningRate = 1e-3
	}
	return c
}

// Networks are the values of Config.Network: "" (an MLP, with a MinAtar
// conv first when conv_filters > 0) and "nature" (nets.NatureSpec).
var Networks = []string{"", NetworkNature}

// NetworkNature is the Nature DQN network (Mnih et al. 2015).
const NetworkNature = "nature"

// MaxEnvsPerRunner bounds envs_per_runner: a runner holds each env, its
// observations and its n-step buffer, and acts on all of them in one
// mailbox turn per step.
const MaxEnvsPerRunner = 4096

// ErrInvalidConfig wraps every validation failure; the message names the field.
var ErrInvalidConfig = errors.New("invalid config")

// Validate checks every rule and names the first field that breaks one.
func (c Config) Validate() error {
	bad := func(field, rule string, v any) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, v, rule)
	}
	if err := c.checkRanges(); err != nil {
		return err
	}
	if c.EnvsPerRunner < 1 || c.EnvsPerRunner > MaxEnvsPerRunner {
		return fmt.Errorf("%w: envs_per_runner = %d: allowed 1..%d (envs each runner steps together)", ErrInvalidConfig, c.EnvsPerRunner, MaxEnvsPerRunner)
	}
	if !slices.Contains(Networks, c.Network) {
		return bad("network", `allowed "" (dense layers, with conv_filters a MinAtar conv first) or "nature"`, strconv.Quote(c.Network))
	}
	// The rules that relate settings (each setting's own range is checked
	// above).
	switch {
	case c.LearningRateDecay > 0 && !(c.LearningRateEnd > 0):
		return bad("learning_rate_end", "must be > 0 when learning_rate_decay is on (a step size of 0 learns nothing)", c.LearningRateEnd)
	case c.TargetTau == 0 && c.TargetUpdatePeriod <= 0:
		return bad("target_update_period", "must be > 0 when target_tau is 0", c.TargetUpdatePeriod)
	case c.MinReplaySize < c.BatchSize:
		return bad("min_replay_size", fmt.Sprintf("must be >= batch_size (%d)", c.BatchSize), c.MinReplaySize)
	case c.MinReplaySize > c.ReplayCapacity:
		return bad("min_replay_size", fmt.Sprintf("must be <= replay_capacity (%d)", c.ReplayCapacity), c.MinReplaySize)
	case c.SamplesPerInsert > 0 && c.RateTolerance < float64(c.BatchSize):
		return bad("rate_tolerance", fmt.Sprintf("must be >= batch_size (%d) or the learner can never sample", c.BatchSize), c.RateTolerance)
	case c.CreditWindow < c.SendBatch:
		return bad("credit_window", fmt.Sprintf("must be >= send_batch (%d)", c.SendBatch), c.CreditWindow)
	case c.OutboxLimit < c.SendBatch:
		return bad("outbox_limit", fmt.Sprintf("must be >= send_batch (%d)", c.SendBatch), c.OutboxLimit)
	case c.WeightsMaxRate > 0 && c.WeightsMaxRate < minWeightsRate(c.WeightsChunkBytes):
		return bad("weights_max_rate", fmt.Sprintf("must be 0 (unlimited) or >= %d bytes/s with weights_chunk_bytes %d: one chunk may take at most %v, "+
			"or a runner that hears nothing for %v subscribes again; raise it or lower weights_chunk_bytes",
			minWeightsRate(c.WeightsChunkBytes), c.WeightsChunkBytes, maxWeightsSilence, resubscribeAfter), c.WeightsMaxRate)
	}
	return nil
}
