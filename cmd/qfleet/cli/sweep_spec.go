package cli

// The sweep spec (SPEC.yaml of 'qfleet sweep'): what to search, and its
// expansion into trials. Expansion is deterministic — the same spec always
// gives the same trials, with the same ids and keys — so that a resumed
// sweep finds the trials it already finished. Every trial's config is
// validated as 'qfleet dev --config' would (config keys, types, the rules of
// actors.Config) before anything runs.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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

// lineRef matches yaml's "line N: " in an error message.
var lineRef = regexp.MustCompile(`line [0-9]+: `)

// maxSweepTrials bounds a spec's expansion: a grid's size is the product of
// its value counts, easy to get wrong by a factor of a thousand.
const maxSweepTrials = 10_000

// specFile is SPEC.yaml as written.
type specFile struct {
	Name         string    `yaml:"name"`
	Env          string    `yaml:"env"`
	Base         yaml.Node `yaml:"base"`
	Method       string    `yaml:"method"`
	Trials       int       `yaml:"trials"`
	Seed         *uint64   `yaml:"seed"`
	Seeds        []uint64  `yaml:"seeds"`
	Params       yaml.Node `yaml:"params"`
	MaxSteps     *uint64   `yaml:"max_steps"`
	TargetReturn *float64  `yaml:"target_return"`
	MaxTime      string    `yaml:"max_time"`
}

var specKeys = "name, env, base, method, trials, seed, seeds, params, max_steps, target_return, max_time"

// sweepSpec is a parsed, validated spec.
type sweepSpec struct {
	Name         string
	Env          string
	Base         map[string]any // config keys of base, without env and seed
	Method       string         // "grid" or "random"
	Trials       int            // random: parameter points drawn
	Seed         uint64         // random: seed of the draws
	Seeds        []uint64       // run seeds; each point runs once per seed
	Params       []sweepParam   // in the spec's order
	MaxSteps     *uint64
	TargetReturn *float64
	MaxTime      time.Duration
}

// sweepParam is one searched config key: a list of values (grid, or a
// random choice) or a distribution (random).
type sweepParam struct {
	Key    string
	Values []any  // the values (Dist "")
	Dist   string // "", "uniform", "log_uniform", "int_uniform"
	Lo, Hi float64
}

// sweepTrial is one run of the sweep.
type sweepTrial struct {
	Index   int
	ID      string         // t<index>-<key prefix>: for people
	Key     string         // hash of the effective config and max_time: for resuming
	Params  map[string]any // the searched values
	Seed    uint64
	Config  []byte // the full effective config, a 'qfleet dev --config' file
	MaxTime time.Duration
}

// Keys a sweep sets itself (or that make no sense per trial).
var sweepOwnKeys = map[string]string{
	"env":            "set env at the top of the spec",
	"seed":           "list run seeds in seeds: [...]",
	"http":           "trials run without HTTP",
	"checkpoint_dir": "trials write into their own run directories",
	"summary":        "each trial writes summary.json into its run directory",
	"run_dir":        "each trial runs in a directory of its own",
	"progress":       "trials run without progress lines",
	"live":           "trials run without the live progress line",
	"log_level":      "trials log at warn",
}

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
// uint field of configFile, inline structs included).
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

// loadSweepSpec reads and validates SPEC.yaml.
func loadSweepSpec(path string) (*sweepSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return parseSweepSpec(data, path, filepath.Dir(path), name)
}

// parseSweepSpec parses spec data (path names it in errors; a base config
// given as a path is relative to dir; defaultName is the name when the spec
// gives none).
func parseSweepSpec(data []byte, path, dir, defaultName string) (*sweepSpec, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("spec %s: %s", path, fmt.Sprintf(format, args...))
	}
	var sf specFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad("empty (want env, method and params; see 'qfleet sweep --help')")
		}
		msg := strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n  ", "")
		msg = strings.ReplaceAll(msg, "\n  ", "; ")
		msg = strings.ReplaceAll(msg, " in type main.specFile", " (spec keys: "+specKeys+")")
		msg = strings.ReplaceAll(msg, " into main.specFile", " into the spec (want key: value settings)")
		return nil, bad("%s", escapeNewlines(msg))
	}
	s := &sweepSpec{Name: sf.Name, Env: sf.Env, Method: sf.Method, Trials: sf.Trials,
		Seeds: sf.Seeds, MaxSteps: sf.MaxSteps, TargetReturn: sf.TargetReturn}
	if s.Name == "" {
		s.Name = defaultName
	}
	if s.Name == "" || strings.ContainsAny(s.Name, `/\`) || s.Name == "." || s.Name == ".." {
		return nil, bad("name = %q: want a plain name (it names the output directory)", s.Name)
	}
	// base: inline keys, or a config file.
	base := map[string]any{}
	baseWhere := "base"
	switch sf.Base.Kind {
	case 0:
	case yaml.ScalarNode:
		if sf.Base.Tag == "!!null" {
			break
		}
		p := sf.Base.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		bd, err := os.ReadFile(p)
		if err != nil {
			return nil, bad("base: %v", err)
		}
		baseWhere = "base " + p
		var n yaml.Node
		if err := yaml.Unmarshal(bd, &n); err != nil {
			return nil, bad("%s: %s", baseWhere, escapeNewlines(err.Error()))
		}
		if len(n.Content) == 1 {
			if err := decodeBase(n.Content[0], base); err != nil {
				return nil, bad("%s: %v", baseWhere, err)
			}
		}
	case yaml.MappingNode:
		if err := decodeBase(&sf.Base, base); err != nil {
			return nil, bad("base: %v", err)
		}
	default:
		return nil, bad("base: want a map of config keys, or the path of a config file")
	}
	known := configKeys()
	for k, v := range base {
		if !slices.Contains(known, k) {
			return nil, bad("%s: %s: unknown config key (see 'qfleet config print')", baseWhere, k)
		}
		switch k {
		case "http", "checkpoint_dir", "summary", "run_dir":
			if v != nil && v != "" {
				return nil, bad("%s: %s = %v: not allowed in a sweep (%s)", baseWhere, k, v, sweepOwnKeys[k])
			}
			delete(base, k)
		case "progress", "live", "log_level":
			delete(base, k)
		default:
			if _, nodeOnly := nodeSettingKeys()[k]; nodeOnly {
				delete(base, k) // a node's place in the cluster: trials run as 'qfleet dev'
			}
		}
	}
	if e, ok := base["env"]; ok {
		es, _ := e.(string)
		if s.Env == "" {
			s.Env = es
		} else if es != "" && es != s.Env {
			return nil, bad("%s: env = %s, but the spec's env is %s", baseWhere, es, s.Env)
		}
		delete(base, "env")
	}
	if s.Env == "" {
		return nil, bad("env: missing (e.g. env: CartPole-v1; envs: %s)", strings.Join(envs.IDs(), ", "))
	}
	if _, err := envs.Make(s.Env); err != nil {
		return nil, bad("env: %v", err)
	}
	if bs, ok := base["seed"]; ok {
		if len(s.Seeds) == 0 {
			n, err := strconv.ParseUint(fmt.Sprint(bs), 10, 64)
			if err != nil {
				return nil, bad("%s: seed = %v: not a seed", baseWhere, bs)
			}
			s.Seeds = []uint64{n}
		}
		delete(base, "seed")
	}
	s.Base = base
	if _, err := s.resolve(nil, 1); err != nil {
		return nil, bad("%s: %v", baseWhere, err)
	}
	if len(s.Seeds) == 0 {
		s.Seeds = []uint64{1}
	}
	// Each seed is a trial of every point: more than maxSweepTrials can
	// never run (and would make the check for repeats below quadratic).
	if len(s.Seeds) > maxSweepTrials {
		return nil, bad("seeds: %d listed, at most %d (each runs every point)", len(s.Seeds), maxSweepTrials)
	}
	for i, a := range s.Seeds {
		if slices.Contains(s.Seeds[:i], a) {
			return nil, bad("seeds: %d listed twice", a)
		}
	}
	if sf.MaxTime != "" {
		d, err := time.ParseDuration(sf.MaxTime)
		if err != nil || d <= 0 {
			return nil, bad("max_time = %q: want a positive duration such as 90s or 10m", sf.MaxTime)
		}
		s.MaxTime = d
	}
	if s.MaxSteps != nil && *s.MaxSteps == 0 {
		return nil, bad("max_steps = 0: must be > 0")
	}
	if s.TargetReturn != nil && (math.IsNaN(*s.TargetReturn) || math.IsInf(*s.TargetReturn, 0)) {
		return nil, bad("target_return = %v: want a number", *s.TargetReturn)
	}
	switch s.Method {
	case "":
		return nil, bad("method: missing (grid or random)")
	case "grid":
		if sf.Trials != 0 {
			return nil, bad("trials = %d: only for method: random (a grid runs every point)", sf.Trials)
		}
		if sf.Seed != nil {
			return nil, bad("seed: only for method: random (it seeds the draws; run seeds go in seeds: [...])")
		}
	case "random":
		if s.Trials <= 0 {
			return nil, bad("trials = %d: method random needs trials > 0 (parameter points to draw)", s.Trials)
		}
		if s.Trials > maxSweepTrials {
			return nil, bad("trials = %d: at most %d", s.Trials, maxSweepTrials)
		}
		s.Seed = 1
		if sf.Seed != nil {
			s.Seed = *sf.Seed
		}
	default:
		return nil, bad("method = %q: want grid or random", s.Method)
	}
	params, err := s.parseParams(&sf.Params, known)
	if err != nil {
		return nil, bad("%v", err)
	}
	s.Params = params
	return s, nil
}

// decodeBase decodes a config mapping into out (the values as YAML gives them).
func decodeBase(n *yaml.Node, out map[string]any) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("want a map of config keys")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var v any
		if err := n.Content[i+1].Decode(&v); err != nil {
			return fmt.Errorf("%s: %s", n.Content[i].Value, escapeNewlines(err.Error()))
		}
		out[n.Content[i].Value] = v
	}
	return nil
}

// parseParams reads the params map and checks every value (and the bounds
// of every distribution) against the config rules.
func (s *sweepSpec) parseParams(n *yaml.Node, known []string) ([]sweepParam, error) {
	if n.Kind == 0 || n.Tag == "!!null" {
		return nil, nil // no params: each seed runs the base config
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("params: want a map of config key: [values] (or a distribution)")
	}
	var out []sweepParam
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		where := "params." + key
		if why, ok := sweepOwnKeys[key]; ok {
			return nil, fmt.Errorf("%s: cannot be searched (%s)", where, why)
		}
		if nodeSettingKeys()[key] {
			return nil, fmt.Errorf("%s: cannot be searched (a 'qfleet node' setting; trials run as 'qfleet dev')", where)
		}
		if !slices.Contains(known, key) {
			return nil, fmt.Errorf("%s: unknown config key (see 'qfleet config print')", where)
		}
		if slices.ContainsFunc(out, func(p sweepParam) bool { return p.Key == key }) {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		p := sweepParam{Key: key}
		switch val.Kind {
		case yaml.SequenceNode:
			if err := val.Decode(&p.Values); err != nil {
				return nil, fmt.Errorf("%s: %s", where, escapeNewlines(err.Error()))
			}
		case yaml.MappingNode:
			if len(val.Content) != 2 {
				return nil, fmt.Errorf("%s: a distribution is one of {values: [...]}, {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int_uniform: [lo, hi]}", where)
			}
			kind := val.Content[0].Value
			switch kind {
			case "values":
				if err := val.Content[1].Decode(&p.Values); err != nil {
					return nil, fmt.Errorf("%s.values: %s", where, escapeNewlines(err.Error()))
				}
			case "uniform", "log_uniform", "int_uniform":
				if s.Method != "random" {
					return nil, fmt.Errorf("%s: %s is for method: random (a grid takes a list of values)", where, kind)
				}
				var b []float64
				if err := val.Content[1].Decode(&b); err != nil || len(b) != 2 {
					return nil, fmt.Errorf("%s.%s: want [lo, hi], two numbers", where, kind)
				}
				p.Dist, p.Lo, p.Hi = kind, b[0], b[1]
				if err := p.checkBounds(); err != nil {
					return nil, fmt.Errorf("%s.%s: %v", where, kind, err)
				}
			default:
				return nil, fmt.Errorf("%s: unknown distribution %q (want values, uniform, log_uniform or int_uniform)", where, kind)
			}
		default:
			var v any
			if err := val.Decode(&v); err != nil {
				return nil, fmt.Errorf("%s: %s", where, escapeNewlines(err.Error()))
			}
			p.Values = []any{v} // one value: the same for every trial
		}
		if p.Dist == "" && len(p.Values) == 0 {
			return nil, fmt.Errorf("%s: no values", where)
		}
		// Every value, and a distribution's bounds, must make a valid
		// config: a bad value is refused now, not when its trial runs.
		check := func(what string, v any) error {
			if _, err := s.resolve(map[string]any{key: v}, s.firstSeed()); err != nil {
				return fmt.Errorf("%s%s: %v", where, what, err)
			}
			return nil
		}
		for j, v := range p.Values {
			// YAML would silently cut 51.7 to 51 for an integer key.
			if f, ok := v.(float64); ok && integerKey(key) && f != math.Trunc(f) {
				return nil, fmt.Errorf("%s[%d] = %v: %s takes whole numbers", where, j, f, key)
			}
			if err := check(fmt.Sprintf("[%d] = %s", j, formatParam(v)), v); err != nil {
				if strings.Contains(err.Error(), "into []") {
					err = fmt.Errorf("%v (a list-valued key takes a list of lists, e.g. %s: [[64, 64], [128]])", err, key)
				}
				return nil, err
			}
		}
		if p.Dist != "" {
			lo, hi := any(p.Lo), any(p.Hi)
			if p.Dist == "int_uniform" {
				lo, hi = int64(p.Lo), int64(p.Hi)
			} else if integerKey(key) {
				return nil, fmt.Errorf("%s: %s draws real numbers, but %s takes whole numbers: use int_uniform", where, p.Dist, key)
			}
			if err := check("."+p.Dist+" low bound", lo); err != nil {
				return nil, err
			}
			if err := check("."+p.Dist+" high bound", hi); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *sweepSpec) firstSeed() uint64 {
	if len(s.Seeds) > 0 {
		return s.Seeds[0]
	}
	return 1
}

func (p sweepParam) checkBounds() error {
	switch {
	case math.IsNaN(p.Lo) || math.IsNaN(p.Hi) || math.IsInf(p.Lo, 0) || math.IsInf(p.Hi, 0):
		return errors.New("bounds must be finite")
	case p.Lo > p.Hi:
		return fmt.Errorf("low bound %v is above high bound %v", p.Lo, p.Hi)
	case p.Dist == "log_uniform" && p.Lo <= 0:
		return fmt.Errorf("low bound %v: log_uniform needs bounds > 0", p.Lo)
	case p.Dist == "int_uniform" && (p.Lo != math.Trunc(p.Lo) || p.Hi != math.Trunc(p.Hi)):
		return fmt.Errorf("[%v, %v]: int_uniform needs whole-number bounds", p.Lo, p.Hi)
	}
	return nil
}

// resolve builds a trial's effective config: the env's defaults, then base,
// then the stop rules, then params, then the seed. It validates it as 'qfleet
// dev --config' does.
func (s *sweepSpec) resolve(params map[string]any, seed uint64) (qfleet.Config, error) {
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
	cf.Env, cf.Seed, cf.MaxSteps, cf.Progress, cf.Live, cf.LogLevel = s.Env, seed, 500_000, "0s", console.LiveNever, "warn"
	if err := qfleet.ParseConfig(data, "", &cf); err != nil {
		// The line numbers are of the merged config, not of the spec.
		msg := strings.TrimPrefix(err.Error(), "config : ")
		return qfleet.Config{}, errors.New(lineRef.ReplaceAllString(msg, ""))
	}
	cf.Env, cf.Seed = s.Env, seed
	env, err := envs.Make(cf.Env)
	if err != nil {
		return qfleet.Config{}, err
	}
	if err := cf.Config.Validate(); err != nil {
		return qfleet.Config{}, err
	}
	if cf.MaxSteps == 0 {
		return qfleet.Config{}, errors.New("max_steps = 0: must be > 0")
	}
	target := env.Spec().RewardThreshold
	if cf.TargetReturn != nil && !math.IsNaN(*cf.TargetReturn) {
		target = *cf.TargetReturn
	}
	cf.TargetReturn = &target
	cf.Hidden = slices.Clone(cf.Hidden)
	return cf, nil
}

// points are the parameter points: the grid's every combination (the first
// param varying slowest), or the random draws.
func (s *sweepSpec) points() []map[string]any {
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
func (s *sweepSpec) gridSize() int {
	n := 1
	for _, p := range s.Params {
		n *= len(p.Values)
		if n > maxSweepTrials {
			return maxSweepTrials + 1
		}
	}
	return n
}

// draw draws one value. Reals keep 6 significant digits (readable tables;
// the config file holds exactly the value shown), within the bounds.
func (p sweepParam) draw(r *rand.Rand) any {
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

// expand lists the sweep's trials: each point once per seed, in order,
// duplicates (the same effective config) once. Every trial's config is
// validated; the first bad one is the error.
func (s *sweepSpec) expand() ([]sweepTrial, error) {
	if s.Method == "grid" {
		if n := s.gridSize() * len(s.Seeds); n > maxSweepTrials {
			return nil, fmt.Errorf("spec: the grid has more than %d trials (points × seeds): narrow it", maxSweepTrials)
		}
	} else if s.Trials > maxSweepTrials/max(1, len(s.Seeds)) { // trials × seeds, which could overflow
		return nil, fmt.Errorf("spec: trials × seeds = %d: at most %d", s.Trials*len(s.Seeds), maxSweepTrials)
	}
	var out []sweepTrial
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
			out = append(out, sweepTrial{Index: idx, ID: id, Key: key, Params: pt, Seed: seed, Config: data, MaxTime: s.MaxTime})
		}
	}
	return out, nil
}

// trialKey is a hash of what decides a trial's run: its effective config and
// its time limit. Resuming skips a trial only when a finished row has its key.
func trialKey(cf qfleet.Config, maxTime time.Duration) (string, error) {
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
