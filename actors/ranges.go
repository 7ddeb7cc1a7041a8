package actors

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/qfleet/qfleet/envs"
)

// settingRange is the allowed values of one numeric setting. Validate checks
// every one, and 'qfleet config print' prints it beside the key, so that a
// typo of three zeros is one line naming the key instead of an
// out-of-memory crash. The bounds are far outside what a run needs but
// inside what a machine can hold per item; what the whole config needs is
// the memory budget's job (EstimateMemory).
type settingRange struct {
	key    string
	lo, hi float64
	get    func(c *Config) float64
	dur    bool // a duration: printed as one
}

func intRange(key string, lo, hi float64, get func(c *Config) int) settingRange {
	return settingRange{key: key, lo: lo, hi: hi, get: func(c *Config) float64 { return float64(get(c)) }}
}

func floatRange(key string, lo, hi float64, get func(c *Config) float64) settingRange {
	return settingRange{key: key, lo: lo, hi: hi, get: get}
}

// Bounds shared by the table and the rules that relate settings.
const (
	maxLayerWidth  = 1 << 16
	maxHiddenLayer = 16
	// MaxWeightsChunkBytes keeps a weights chunk inside the largest message
	// the remote carries (cluster.MaxMessageBytes, 2 MiB), with room for
	// the chunk's other fields.
	MaxWeightsChunkBytes = 2<<20 - 4<<10
)

var settingRanges = []settingRange{
	intRange("conv_filters", 0, 1024, func(c *Config) int { return c.ConvFilters }),
	intRange("frame_stack", 0, envs.MaxFrameStack, func(c *Config) int { return c.FrameStack }),
	intRange("batch_size", 1, 1<<16, func(c *Config) int { return c.BatchSize }),
	floatRange("learning_rate", 1e-12, 1, func(c *Config) float64 { return c.LearningRate }),
	floatRange("learning_rate_end", 0, 1, func(c *Config) float64 { return c.LearningRateEnd }),
	intRange("learning_rate_decay", 0, 1e12, func(c *Config) int { return c.LearningRateDecay }),
	floatRange("gamma", 0, 1, func(c *Config) float64 { return c.Gamma }),
	intRange("n_step", 1, 1000, func(c *Config) int { return c.NStep }),
	floatRange("max_grad_norm", 0, 1e9, func(c *Config) float64 { return c.MaxGradNorm }),
	intRange("target_update_period", 0, 1e9, func(c *Config) int { return c.TargetUpdatePeriod }),
	floatRange("target_tau", 0, 1, func(c *Config) float64 { return c.TargetTau }),
	intRange("publish_every", 1, 1e9, func(c *Config) int { return c.PublishEvery }),
	intRange("replay_capacity", 1, 1e9, func(c *Config) int { return c.ReplayCapacity }),
	intRange("min_replay_size", 1, 1e9, func(c *Config) int { return c.MinReplaySize }),
	floatRange("samples_per_insert", 0, 1e6, func(c *Config) float64 { return c.SamplesPerInsert }),
	floatRange("rate_tolerance", 0, 1e12, func(c *Config) float64 { return c.RateTolerance }),
	intRange("prefetch_batches", 1, 64, func(c *Config) int { return c.PrefetchBatches }),
	floatRange("priority_exponent", 0, 1, func(c *Config) float64 { return c.PriorityExponent }),
	floatRange("importance_beta", 0, 1, func(c *Config) float64 { return c.ImportanceBeta }),
	intRange("beta_anneal_updates", 0, 1e12, func(c *Config) int { return c.BetaAnnealUpdates }),
	floatRange("epsilon_start", 0, 1, func(c *Config) float64 { return c.EpsilonStart }),
	floatRange("epsilon_end", 0, 1, func(c *Config) float64 { return c.EpsilonEnd }),
	intRange("epsilon_decay_steps", 0, 1e12, func(c *Config) int { return c.EpsilonDecaySteps }),
	floatRange("epsilon_ladder", 0, 100, func(c *Config) float64 { return c.EpsilonLadder }),
	intRange("runners", 1, MaxRunnersPerNode, func(c *Config) int { return c.Runners }),
	intRange("send_batch", 1, 1<<16, func(c *Config) int { return c.SendBatch }),
	intRange("credit_window", 1, 1<<24, func(c *Config) int { return c.CreditWindow }),
	intRange("steps_per_chunk", 1, 1<<20, func(c *Config) int { return c.StepsPerChunk }),
	intRange("outbox_limit", 1, 1<<24, func(c *Config) int { return c.OutboxLimit }),
	{key: "credit_timeout", lo: float64(time.Millisecond), hi: float64(time.Hour), dur: true,
		get: func(c *Config) float64 { return float64(c.CreditTimeout) }},
	intRange("weights_chunk_bytes", 1024, MaxWeightsChunkBytes, func(c *Config) int { return c.WeightsChunkBytes }),
	intRange("weights_max_rate", 0, 1e12, func(c *Config) int { return c.WeightsMaxRate }),
	{key: "weights_min_interval", lo: 0, hi: float64(maxWeightsSilence), dur: true,
		get: func(c *Config) float64 { return float64(c.WeightsMinInterval) }},
	intRange("progress_every_steps", 1, 1e9, func(c *Config) int { return c.ProgressEverySteps }),
	intRange("eval_every", 0, 1e12, func(c *Config) int { return c.EvalEvery }),
	intRange("eval_episodes", 1, MaxEvalEpisodes, func(c *Config) int { return c.EvalEpisodes }),
	floatRange("eval_epsilon", 0, 1, func(c *Config) float64 { return c.EvalEpsilon }),
}

// MaxEvalEpisodes bounds eval_episodes: an evaluation plays them all with
// one weights version before the next can start.
const MaxEvalEpisodes = 10_000

// MaxRunnersPerNode bounds the runners setting: each runner is an actor
// with its own env and network copy.
const MaxRunnersPerNode = 1024

// SettingRange returns the allowed values of a config key as config print
// shows them ("1..65536"), or "" for keys without a numeric range.
func SettingRange(key string) string {
	if key == "hidden" {
		return fmt.Sprintf("1..%d layers of width 1..%d", maxHiddenLayer, maxLayerWidth)
	}
	for _, r := range settingRanges {
		if r.key == key {
			return r.format(r.lo) + ".." + r.format(r.hi)
		}
	}
	return ""
}

func (r settingRange) format(v float64) string {
	if r.dur {
		return time.Duration(v).String()
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64) // whole numbers as a config file writes them
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// checkRanges returns the first setting outside its range, naming the key,
// the value and the range.
func (c *Config) checkRanges() error {
	if n := len(c.Hidden); n < 1 || n > maxHiddenLayer {
		return fmt.Errorf("%w: hidden = %v: allowed %s", ErrInvalidConfig, c.Hidden, SettingRange("hidden"))
	}
	for _, h := range c.Hidden {
		if h < 1 || h > maxLayerWidth {
			return fmt.Errorf("%w: hidden = %v: allowed %s", ErrInvalidConfig, c.Hidden, SettingRange("hidden"))
		}
	}
	for _, r := range settingRanges {
		if v := r.get(c); !(v >= r.lo && v <= r.hi) { // NaN fails too
			return fmt.Errorf("%w: %s = %s: allowed %s..%s", ErrInvalidConfig, r.key, r.format(v), r.format(r.lo), r.format(r.hi))
		}
	}
	return nil
}
