package sweep

// A spec's expansion into trials: the parameter points (a grid's every
// combination, or seeded random draws), each resolved into a trial's full
// config over the env's defaults and validated as 'qfleet dev --config'
// validates a config, and keyed by a hash of that config, so that the same
// spec always gives the same trials and a resumed sweep finds those it
// finished.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/console"
)

// configKeys are the keys of a config file, in the order 'qfleet config
// print' writes them.
func configKeys() []string {
	var n yaml.Node
	if err := n.Encode(qfleet.Config{}); err != nil || n.Kind != yaml.MappingNode {
		panic(fmt.Sprintf("config keys: %v", err))
	}
	var keys []string
	for i := 0; i < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// integerKey reports whether a config key takes whole numbers (an int or
// uint field of qfleet.Config, inline structs included).
func integerKey(key string) bool {
	var kind func(t reflect.Type) (reflect.Kind, bool)
	kind = func(t reflect.Type) (reflect.Kind, bool) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" && f.Type.Kind() == reflect.Struct {
				if k, ok := kind(f.Type); ok {
					return k, true
				}
				continue
			}
			if name == key {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft == reflect.TypeFor[time.Duration]() {
					return reflect.String, true // "3s"
				}
				return ft.Kind(), true
			}
		}
		return reflect.Invalid, false
	}
	k, _ := kind(reflect.TypeFor[qfleet.Config]())
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// resolve builds a trial's effective config: the env's defaults, then base,
// then the stop rules, then params, then the seed. It validates it as 'qfleet
// dev --config' does.
func (s *Spec) resolve(params map[string]any, seed uint64) (qfleet.Config, error) {
	merged := map[string]any{}
	for k, v := range s.Base {
		merged[k] = v
	}
	if s.MaxSteps != nil {
		merged["max_steps"] = *s.MaxSteps
	}
	if s.TargetReturn != nil {
		merged["target_return"] = *s.TargetReturn
	}
	for k, v := range params {
		merged[k] = v
	}
	data, err := yaml.Marshal(merged)
	if err != nil {
		return qfleet.Config{}, err
	}
	cf := qfleet.Config{Config: actors.DefaultConfigFor(s.Env)}
	// The run options of 'qfleet dev' as a trial runs it. These go into the
	// trial's key: a change here would make every finished trial run again.
	cf.Env, cf.Seed, cf.MaxSteps, cf.Progress, cf.Live, cf.LogLevel = s.Env, seed, qfleet.DefaultMaxSteps, "0s", console.LiveNever, qfleet.DefaultLogLevel
	if err := qfleet.ParseConfig(data, "", &cf); err != nil {
		// The line numbers are of the merged config, not of the spec.
		msg := strings.TrimPrefix(err.Error(), "config : ")
		return qfleet.Config{}, errors.New(lineRef.ReplaceAllString(msg, ""))
	}
	cf.Env, cf.Seed = s.Env, seed
	env, err := envs.SpecOf(cf.Env)
	if err != nil {
		return qfleet.Config{}, err
	}
	if err := cf.Config.Validate(); err != nil {
		return qfleet.Config{}, err
	}
	if cf.MaxSteps == 0 {
		return qfleet.Config{}, errors.New("max_steps = 0: must be > 0")
	}
	target := env.RewardThreshold
	if cf.TargetReturn != nil && !math.IsNaN(*cf.TargetReturn) {
		target = *cf.TargetReturn
	}
	cf.TargetReturn = &target
	cf.Hidden = slices.Clone(cf.Hidden)
	return cf, nil
}

// points are the parameter points: the grid's every combination (the first
// param varying slowest), or the random draws.
func (s *Spec) points() []map[string]any {
	if s.Method == "random" {
		r := rand.New(rand.NewPCG(s.Seed, 0x5ee9))
		out := make([]map[string]any, s.Trials)
		for i := range out {
			pt := map[string]any{}
			for _, p := range s.Params {
				pt[p.Key] = p.draw(r)
			}
			out[i] = pt
		}
		return out
	}
	out := []map[string]any{{}}
	for _, p := range s.Params {
		var next []map[string]any
		for _, pt := range out {
			for _, v := range p.Values {
				q := make(map[string]any, len(pt)+1)
				for k, x := range pt {
					q[k] = x
				}
				q[p.Key] = v
				next = append(next, q)
			}
		}
		out = next
	}
	return out
}

// gridSize is the number of grid points, without building them (capped).
func (s *Spec) gridSize() int {
	n := 1
	for _, p := range s.Params {
		n *= len(p.Values)
		if n > maxTrials {
			return maxTrials + 1
		}
	}
	return n
}

// draw draws one value. Reals keep 6 significant digits (readable tables;
// the config file holds exactly the value shown), within the bounds.
func (p Param) draw(r *rand.Rand) any {
	switch p.Dist {
	case "uniform":
		return round6(p.Lo+(p.Hi-p.Lo)*r.Float64(), p.Lo, p.Hi)
	case "log_uniform":
		return round6(math.Exp(math.Log(p.Lo)+(math.Log(p.Hi)-math.Log(p.Lo))*r.Float64()), p.Lo, p.Hi)
	case "int_uniform":
		return int64(p.Lo) + r.Int64N(int64(p.Hi)-int64(p.Lo)+1)
	}
	return p.Values[r.IntN(len(p.Values))]
}

func round6(x, lo, hi float64) float64 {
	y, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return min(max(y, lo), hi)
}

// Expand lists the sweep's trials: each point once per seed, in order,
// duplicates (the same effective config) once. Every trial's config is
// validated; the first bad one is the error, as is a spec of more than
// 10,000 trials.
func (s *Spec) Expand() ([]Trial, error) {
	if s.Method == "grid" {
		if n := s.gridSize() * len(s.Seeds); n > maxTrials {
			return nil, fmt.Errorf("spec: the grid has more than %d trials (points × seeds): narrow it", maxTrials)
		}
	} else if s.Trials > maxTrials/max(1, len(s.Seeds)) { // trials × seeds, which could overflow
		return nil, fmt.Errorf("spec: trials × seeds = %d: at most %d", s.Trials*len(s.Seeds), maxTrials)
	}
	var out []Trial
	seen := map[string]bool{}
	for _, pt := range s.points() {
		for _, seed := range s.Seeds {
			cf, err := s.resolve(pt, seed)
			if err != nil {
				return nil, fmt.Errorf("spec: trial %s seed %d: %v", formatParams(pt), seed, err)
			}
			key, err := trialKey(cf, s.MaxTime)
			if err != nil {
				return nil, err
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			idx := len(out)
			id := fmt.Sprintf("t%03d-%s", idx, key[:6])
			header := fmt.Sprintf("Trial %s of sweep %s: %s seed %d.\nRun it alone with 'qfleet dev --config FILE'.",
				id, s.Name, formatParams(pt), seed)
			data, err := qfleet.MarshalConfig(cf, header)
			if err != nil {
				return nil, err
			}
			out = append(out, Trial{Index: idx, ID: id, Key: key, Params: pt, Seed: seed, Config: data, MaxTime: s.MaxTime})
		}
	}
	return out, nil
}

// trialConfig is the config file of params with seed (what PBT's explore
// runs a member with).
func (s *Spec) trialConfig(params map[string]any, seed uint64) ([]byte, error) {
	cf, err := s.resolve(params, seed)
	if err != nil {
		return nil, err
	}
	return qfleet.MarshalConfig(cf, fmt.Sprintf("A PBT member of sweep %s: %s seed %d.", s.Name, formatParams(params), seed))
}

// trialKey is a hash of what decides a trial's run: its effective config and
// its time limit. Resuming skips a trial only when a finished row has its key.
func trialKey(cf qfleet.Config, maxTime time.Duration) (string, error) {
	// Keys added since sweeps began are left out of the hash at their
	// defaults (omitempty, and envs_per_runner's default 1 as 0), so that
	// the trials of an older sweep keep their keys and it still resumes.
	if cf.EnvsPerRunner == 1 {
		cf.EnvsPerRunner = 0
	}
	// The evaluation's keys likewise: eval_every at the env's default,
	// eval_episodes at 10, stop_on at mean100 (eval_epsilon's default is
	// 0 already).
	switch cf.EvalEvery {
	case actors.DefaultConfigFor(cf.Env).EvalEvery:
		cf.EvalEvery = 0
	case 0:
		cf.EvalEvery = -1 // off: not the default's key
	}
	if cf.EvalEpisodes == actors.DefaultEvalEpisodes {
		cf.EvalEpisodes = 0
	}
	if cf.StopOn == qfleet.StopOnMean100 {
		cf.StopOn = ""
	}
	// The weights budget likewise, whatever its value: a trial runs as
	// 'qfleet dev', whose runners are all on the broadcaster's node, where
	// the budget never applies.
	cf.WeightsMaxRate, cf.WeightsMinInterval = 0, 0
	b, err := json.Marshal(struct {
		Config  qfleet.Config
		MaxTime time.Duration
	}{cf, maxTime})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8]), nil
}

// formatParams writes a point as key=value pairs, keys sorted.
func formatParams(pt map[string]any) string {
	if len(pt) == 0 {
		return "(base config)"
	}
	keys := make([]string, 0, len(pt))
	for k := range pt {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + formatParam(pt[k])
	}
	return strings.Join(parts, " ")
}

// formatParam writes one value compactly: 0.0005, [64,64], true.
func formatParam(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
