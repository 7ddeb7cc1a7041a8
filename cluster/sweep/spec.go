package sweep

// The sweep spec (SPEC.yaml of 'qfleet sweep'): what to search, read
// strictly (an unknown key or a value a trial's config would refuse is an
// error naming it) so that a mistake shows before any trial runs, not when
// its trial does. The expansion into trials is in expand.go.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/yamlstrict"
)

// lineRef matches yaml's "line N: " in an error message.
var lineRef = regexp.MustCompile(`line [0-9]+: `)

// maxTrials bounds a spec's expansion: a grid's size is the product of
// its value counts, easy to get wrong by a factor of a thousand.
const maxTrials = 10_000

// specFile is SPEC.yaml as written.
type specFile struct {
	Name         string         `yaml:"name"`
	Env          string         `yaml:"env"`
	Base         yaml.Node      `yaml:"base"`
	Method       string         `yaml:"method"`
	Trials       int            `yaml:"trials"`
	Seed         *uint64        `yaml:"seed"`
	Seeds        []uint64       `yaml:"seeds"`
	Params       yaml.Node      `yaml:"params"`
	MaxSteps     *uint64        `yaml:"max_steps"`
	TargetReturn *float64       `yaml:"target_return"`
	MaxTime      string         `yaml:"max_time"`
	Scheduler    *schedulerFile `yaml:"scheduler"`
}

// schedulerFile is the spec's scheduler as written.
type schedulerFile struct {
	Name     string  `yaml:"name"`
	MinSteps uint64  `yaml:"min_steps"`
	Eta      float64 `yaml:"eta"`
	Mode     string  `yaml:"mode"`
	// pbt
	PerturbEvery        uint64   `yaml:"perturb_every"`
	Quantile            *float64 `yaml:"quantile"`
	ResampleProbability *float64 `yaml:"resample_probability"`
	Replay              bool     `yaml:"replay"`
}

var (
	specKeys      = "name, env, base, method, trials, seed, seeds, params, max_steps, target_return, max_time, scheduler"
	schedulerKeys = "name, min_steps, eta, mode (asha); name, perturb_every, quantile, resample_probability, replay (pbt)"
)

// Spec is a parsed, validated sweep spec: what LoadSpec and ParseSpec
// return, and what Run runs. Its fields are as the spec gave them, with its
// defaults filled in; build one with ParseSpec rather than by hand, which
// checks every value a trial's config could take.
type Spec struct {
	Name         string         // names the output directory (default: the file's name)
	Env          string         // every trial's env
	Base         map[string]any // config keys of base, without env and seed
	Method       string         // "grid" or "random"
	Trials       int            // random: parameter points drawn
	Seed         uint64         // random: seed of the draws
	Seeds        []uint64       // run seeds; each point runs once per seed
	Params       []Param        // in the spec's order
	MaxSteps     *uint64        // nil: base's, or the default
	TargetReturn *float64       // nil: base's, or the env's reward threshold
	MaxTime      time.Duration  // per trial; 0: no limit
	Scheduler    *ASHA          // ASHA; nil: every trial runs to its end
	PBT          *PBT           // population based training; nil: none

	source []byte // the spec as written, which Run keeps as OUT/spec.yaml
}

// Param is one searched config key: a list of values (grid, or a
// random choice) or a distribution (random).
type Param struct {
	Key    string
	Values []any  // the values (Dist "")
	Dist   string // "", "uniform", "log_uniform", "int_uniform"
	Lo, Hi float64
}

// Trial is one run of a sweep: one parameter point with one seed.
// Spec.Expand lists them; its ID and Key depend on the spec alone, which is
// what lets a sweep run again resume.
type Trial struct {
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

// LoadSpec reads and validates a spec file; its name (without the
// extension) is the sweep's name unless the spec gives one, and a base
// given as a file is relative to the spec's directory.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return ParseSpec(data, path, filepath.Dir(path), name)
}

// ParseSpec parses and validates spec data: path names it in errors, a
// base config given as a file is relative to dir, and defaultName is the
// sweep's name when the spec gives none. Errors are one line, start with
// "spec PATH: " and name the key at fault.
func ParseSpec(data []byte, path, dir, defaultName string) (*Spec, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("spec %s: %s", path, fmt.Sprintf(format, args...))
	}
	var sf specFile
	if err := decodeSpecFile(data, &sf); err != nil {
		return nil, bad("%v", err)
	}
	s := &Spec{Name: sf.Name, Env: sf.Env, Method: sf.Method, Trials: sf.Trials,
		Seeds: sf.Seeds, MaxSteps: sf.MaxSteps, TargetReturn: sf.TargetReturn, source: data}
	if s.Name == "" {
		s.Name = defaultName
	}
	if s.Name == "" || strings.ContainsAny(s.Name, `/\`) || s.Name == "." || s.Name == ".." {
		return nil, bad("name = %q: want a plain name (it names the output directory)", s.Name)
	}
	known := configKeys()
	baseWhere, err := s.readBase(&sf.Base, dir, known)
	if err != nil {
		return nil, bad("%v", err)
	}
	if _, err := s.resolve(nil, 1); err != nil {
		return nil, bad("%s: %v", baseWhere, err)
	}
	if err := s.readLimits(&sf); err != nil {
		return nil, bad("%v", err)
	}
	if err := s.readMethod(&sf); err != nil {
		return nil, bad("%v", err)
	}
	if err := s.readScheduler(&sf); err != nil {
		return nil, bad("%v", err)
	}
	params, err := s.parseParams(&sf.Params, known)
	if err != nil {
		return nil, bad("%v", err)
	}
	s.Params = params
	if s.PBT != nil {
		if err := s.PBT.validate(params); err != nil {
			return nil, bad("%v", err)
		}
	}
	return s, nil
}

// decodeSpecFile decodes the spec's keys strictly, its errors on one line.
func decodeSpecFile(data []byte, sf *specFile) error {
	typ := reflect.TypeFor[specFile]().String() // what yaml names the spec
	err := yamlstrict.Decode(data, sf, map[string]yamlstrict.Place{
		typ: {Keys: "spec keys: " + specKeys, Into: "the spec (want key: value settings)"},
		reflect.TypeFor[schedulerFile]().String(): {Keys: "scheduler keys: " + schedulerKeys, Into: "the scheduler (want key: value settings)"},
	})
	if errors.Is(err, io.EOF) {
		return errors.New("empty (want env, method and params; see 'qfleet sweep --help')")
	}
	return err
}

// readBase reads the spec's base (inline config keys, or a config file)
// into s.Base, without the keys a sweep sets itself; an env or seed in it
// is the spec's when the spec gives none. It returns what errors about
// base call it ("base", or "base FILE").
func (s *Spec) readBase(n *yaml.Node, dir string, known []string) (string, error) {
	base := map[string]any{}
	baseWhere := "base"
	switch n.Kind {
	case 0:
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			break
		}
		p := n.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		bd, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("base: %v", err)
		}
		baseWhere = "base " + p
		var doc yaml.Node
		if err := yaml.Unmarshal(bd, &doc); err != nil {
			return "", fmt.Errorf("%s: %s", baseWhere, escapeNewlines(err.Error()))
		}
		if len(doc.Content) == 1 {
			if err := decodeBase(doc.Content[0], base); err != nil {
				return "", fmt.Errorf("%s: %v", baseWhere, err)
			}
		}
	case yaml.MappingNode:
		if err := decodeBase(n, base); err != nil {
			return "", fmt.Errorf("base: %v", err)
		}
	default:
		return "", errors.New("base: want a map of config keys, or the path of a config file")
	}
	nodeOnly := qfleet.NodeSettingKeys()
	for k, v := range base {
		if !slices.Contains(known, k) {
			return "", fmt.Errorf("%s: %s: unknown config key (see 'qfleet config print')", baseWhere, k)
		}
		switch {
		case k == "http" || k == "checkpoint_dir" || k == "summary" || k == "run_dir":
			if v != nil && v != "" {
				return "", fmt.Errorf("%s: %s = %v: not allowed in a sweep (%s)", baseWhere, k, v, sweepOwnKeys[k])
			}
			delete(base, k)
		case k == "progress" || k == "live" || k == "log_level":
			delete(base, k)
		case slices.Contains(nodeOnly, k):
			delete(base, k) // a node's place in the cluster: trials run as 'qfleet dev'
		}
	}
	if e, ok := base["env"]; ok {
		es, _ := e.(string)
		if s.Env == "" {
			s.Env = es
		} else if es != "" && es != s.Env {
			return "", fmt.Errorf("%s: env = %s, but the spec's env is %s", baseWhere, es, s.Env)
		}
		delete(base, "env")
	}
	if s.Env == "" {
		return "", fmt.Errorf("env: missing (e.g. env: CartPole-v1; envs: %s)", strings.Join(envs.IDs(), ", "))
	}
	if err := s.useExternalEnv(base); err != nil {
		return "", err
	}
	if _, err := envs.SpecOf(s.Env); err != nil {
		return "", fmt.Errorf("env: %v", err)
	}
	if bs, ok := base["seed"]; ok {
		if len(s.Seeds) == 0 {
			seed, err := strconv.ParseUint(fmt.Sprint(bs), 10, 64)
			if err != nil {
				return "", fmt.Errorf("%s: seed = %v: not a seed", baseWhere, bs)
			}
			s.Seeds = []uint64{seed}
		}
		delete(base, "seed")
	}
	s.Base = base
	return baseWhere, nil
}

// readLimits checks the run seeds (default [1]) and the stop rules.
func (s *Spec) readLimits(sf *specFile) error {
	if len(s.Seeds) == 0 {
		s.Seeds = []uint64{1}
	}
	// Each seed is a trial of every point: more than maxTrials can
	// never run (and would make the check for repeats below quadratic).
	if len(s.Seeds) > maxTrials {
		return fmt.Errorf("seeds: %d listed, at most %d (each runs every point)", len(s.Seeds), maxTrials)
	}
	for i, a := range s.Seeds {
		if slices.Contains(s.Seeds[:i], a) {
			return fmt.Errorf("seeds: %d listed twice", a)
		}
	}
	if sf.MaxTime != "" {
		d, err := time.ParseDuration(sf.MaxTime)
		if err != nil || d <= 0 {
			return fmt.Errorf("max_time = %q: want a positive duration such as 90s or 10m", sf.MaxTime)
		}
		s.MaxTime = d
	}
	if s.MaxSteps != nil && *s.MaxSteps == 0 {
		return errors.New("max_steps = 0: must be > 0")
	}
	if s.TargetReturn != nil && (math.IsNaN(*s.TargetReturn) || math.IsInf(*s.TargetReturn, 0)) {
		return fmt.Errorf("target_return = %v: want a number", *s.TargetReturn)
	}
	return nil
}

// readScheduler checks the scheduler: asha (see ASHA), eta 3 and the
// promotion form unless given; or pbt (see PBT), quantile and
// resample_probability 0.25 unless given.
func (s *Spec) readScheduler(sf *specFile) error {
	sc := sf.Scheduler
	if sc == nil {
		return nil
	}
	asha := sc.MinSteps != 0 || sc.Eta != 0 || sc.Mode != ""
	pbt := sc.PerturbEvery != 0 || sc.Quantile != nil || sc.ResampleProbability != nil || sc.Replay
	switch {
	case sc.Name == "pbt" && asha:
		return errors.New("scheduler: min_steps, eta and mode are asha's: pbt takes perturb_every, quantile, resample_probability, replay")
	case sc.Name == "asha" && pbt:
		return errors.New("scheduler: perturb_every, quantile, resample_probability and replay are pbt's: asha takes min_steps, eta, mode")
	case sc.Name == "pbt":
		p := PBT{PerturbEvery: sc.PerturbEvery, Quantile: 0.25, ResampleProbability: 0.25, Replay: sc.Replay}
		if sc.Quantile != nil {
			p.Quantile = *sc.Quantile
		}
		if sc.ResampleProbability != nil {
			p.ResampleProbability = *sc.ResampleProbability
		}
		s.PBT = &p
		return p.validate(nil)
	case sc.Name != "asha":
		return fmt.Errorf("scheduler: name = %q: want asha or pbt", sc.Name)
	}
	a := ASHA{MinSteps: sc.MinSteps, Eta: sc.Eta, Mode: sc.Mode}
	if a.Eta == 0 {
		a.Eta = 3
	}
	if a.Mode == "" {
		a.Mode = ASHAPromote
	}
	if err := a.validate(); err != nil {
		return err
	}
	s.Scheduler = &a
	return nil
}

// readMethod checks the method and the keys that only random takes.
func (s *Spec) readMethod(sf *specFile) error {
	switch s.Method {
	case "":
		return errors.New("method: missing (grid or random)")
	case "grid":
		if sf.Trials != 0 {
			return fmt.Errorf("trials = %d: only for method: random (a grid runs every point)", sf.Trials)
		}
		if sf.Seed != nil {
			return errors.New("seed: only for method: random (it seeds the draws; run seeds go in seeds: [...])")
		}
	case "random":
		if s.Trials <= 0 {
			return fmt.Errorf("trials = %d: method random needs trials > 0 (parameter points to draw)", s.Trials)
		}
		if s.Trials > maxTrials {
			return fmt.Errorf("trials = %d: at most %d", s.Trials, maxTrials)
		}
		s.Seed = 1
		if sf.Seed != nil {
			s.Seed = *sf.Seed
		}
	default:
		return fmt.Errorf("method = %q: want grid or random", s.Method)
	}
	return nil
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
func (s *Spec) parseParams(n *yaml.Node, known []string) ([]Param, error) {
	if n.Kind == 0 || n.Tag == "!!null" {
		return nil, nil // no params: each seed runs the base config
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("params: want a map of config key: [values] (or a distribution)")
	}
	var out []Param
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		where := "params." + key
		if why, ok := sweepOwnKeys[key]; ok {
			return nil, fmt.Errorf("%s: cannot be searched (%s)", where, why)
		}
		if slices.Contains(qfleet.NodeSettingKeys(), key) {
			return nil, fmt.Errorf("%s: cannot be searched (a 'qfleet node' setting; trials run as 'qfleet dev')", where)
		}
		if !slices.Contains(known, key) {
			return nil, fmt.Errorf("%s: unknown config key (see 'qfleet config print')", where)
		}
		if slices.ContainsFunc(out, func(p Param) bool { return p.Key == key }) {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		p := Param{Key: key}
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

func (s *Spec) firstSeed() uint64 {
	if len(s.Seeds) > 0 {
		return s.Seeds[0]
	}
	return 1
}

func (p Param) checkBounds() error {
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

// useExternalEnv registers the env a base's env_command or env_address
// serves, under the spec's env (one handshake), so that the trials' configs
// can be checked against its spec here; each trial starts its own.
func (s *Spec) useExternalEnv(base map[string]any) error {
	str := func(k string) string {
		if v, ok := base[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	cf := qfleet.Config{RunOptions: qfleet.RunOptions{Env: s.Env, EnvCommand: str("env_command"), EnvAddress: str("env_address")}}
	if w := str("env_workers"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil {
			return fmt.Errorf("base: env_workers = %v: not a number", w)
		}
		cf.EnvWorkers = n
	}
	if err := qfleet.UseExternalEnv(&cf); err != nil {
		return fmt.Errorf("base: %w", err)
	}
	return nil
}
