package qfleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/console"
	"gopkg.in/yaml.v3"
)

// RunOptions are the settings of one training run that are not
// hyper-parameters: which env, when to stop, where the outputs go.
type RunOptions struct {
	Env           string   `yaml:"env"`
	Seed          uint64   `yaml:"seed"`
	MaxSteps      uint64   `yaml:"max_steps"`
	MaxTime       string   `yaml:"max_time"`      // stop after this much wall time, e.g. "10m"; "0" for no limit
	TargetReturn  *float64 `yaml:"target_return"` // nil: the env's reward threshold
	StopOn        string   `yaml:"stop_on" json:",omitempty"`
	HTTP          string   `yaml:"http"`
	Pprof         bool     `yaml:"pprof" json:"-"` // not in a sweep trial's key: profiling changes no run
	CheckpointDir string   `yaml:"checkpoint_dir"`
	Summary       string   `yaml:"summary"`
	Progress      string   `yaml:"progress"` // interval between progress lines, e.g. "10s"; "0" turns them off
	Live          string   `yaml:"live"`     // the live progress line: auto, always or never
	LogLevel      string   `yaml:"log_level"`
	// An env of the user's own, outside this program (external.go).
	EnvCommand string `yaml:"env_command" json:",omitempty"`
	EnvAddress string `yaml:"env_address" json:",omitempty"`
	EnvWorkers int    `yaml:"env_workers" json:",omitempty"`
	EnvSpec    string `yaml:"env_spec" json:",omitempty"`
}

// Config is everything a run is given, as its YAML config file holds it:
// the run options, the command settings and the hyper-parameters, flat
// (each key once, snake_case). DefaultConfig fills in every default;
// LoadConfig reads a file over it; 'qfleet config print' prints one with a
// comment per key.
type Config struct {
	RunOptions      `yaml:",inline"`
	CommandSettings `yaml:",inline"`
	actors.Config   `yaml:",inline"`
}

// Defaults of the run options and command settings (the hyper-parameters'
// are actors.DefaultConfigFor's). The command's flags take theirs from here.
const (
	DefaultEnv             = "CartPole-v1"
	DefaultSeed            = 1
	DefaultMaxSteps        = 500_000
	DefaultCheckpointEvery = 10 * time.Second
	DefaultLogLevel        = "warn"
	DefaultMaxMemory       = "auto"
	DefaultGossipAddr      = "0.0.0.0:7946"
	DefaultRemoteAddr      = "0.0.0.0:7947"
	DefaultTrialSlots      = 1
	// What target_return applies to (RunOptions.StopOn, key stop_on;
	// omitted from a sweep trial's key at its default, so that earlier
	// trials keep their keys).
	StopOnMean100 = "mean100"
	StopOnEval    = "eval"
	// StopOnNone: reaching the target is recorded (solved, and the lowest
	// mean100 after it) but the run goes on to max_steps or max_time.
	StopOnNone = "none"
)

// DefaultConfig is the config of a run of env with every default: the
// env's hyper-parameters (actors.DefaultConfigFor), no time limit, no
// progress lines, the live line when on a terminal, checkpoints every 10 s
// once they are asked for, a memory budget of 80% of the machine's, and a
// cluster node with every training role on the wan profile.
func DefaultConfig(env string) Config {
	return DefaultConfigForProfile(env, cluster.ProfileWAN)
}

// DefaultConfigForProfile is DefaultConfig for a node on a cluster profile
// (local, lan, wan): the profile's weights bandwidth budget
// (weights_max_rate, weights_min_interval) in place of wan's. A config file
// read over it overrides them as any default. An unknown profile keeps the
// budget off; the node refuses the profile itself.
func DefaultConfigForProfile(env, profile string) Config {
	cf := defaultConfig(env)
	cf.Profile = profile
	if rate, interval, ok := cluster.WeightsBudget(profile); ok {
		cf.WeightsMaxRate, cf.WeightsMinInterval = rate, interval
	}
	return cf
}

func defaultConfig(env string) Config {
	return Config{
		RunOptions: RunOptions{
			Env: env, Seed: DefaultSeed, MaxSteps: DefaultMaxSteps, MaxTime: "0s", Progress: "0s", StopOn: StopOnMean100,
			Live: console.LiveAuto, LogLevel: DefaultLogLevel,
		},
		CommandSettings: CommandSettings{
			CheckpointEvery: DefaultCheckpointEvery.String(), ReplaySnapshotEvery: "0s", MaxMemory: DefaultMaxMemory,
			Roles: strings.Join(actors.AllRoles, ","), GossipAddr: DefaultGossipAddr, RemoteAddr: DefaultRemoteAddr,
			Profile: cluster.ProfileWAN, TrialSlots: DefaultTrialSlots,
		},
		Config: actors.DefaultConfigFor(env),
	}
}

// CommandSettings are the settings that are command-line flags too: the
// run's outputs and, for a cluster node, its place in the cluster. Each
// YAML key is its flag's name with _ for -, so one config file can say
// everything a command line can; a flag given on the command line wins, and
// a key the command has no flag for (e.g. join in 'qfleet dev') is ignored.
type CommandSettings struct {
	RunDir              string `yaml:"run_dir"`
	CheckpointEvery     string `yaml:"checkpoint_every"`
	ReplaySnapshotEvery string `yaml:"replay_snapshot_every"`
	MaxMemory           string `yaml:"max_memory"`

	Name           string `yaml:"name"`
	Roles          string `yaml:"roles"`
	Join           string `yaml:"join"`
	GossipAddr     string `yaml:"gossip_addr"`
	RemoteAddr     string `yaml:"remote_addr"`
	Advertise      string `yaml:"advertise"`
	Profile        string `yaml:"profile"`
	ClusterKeyFile string `yaml:"cluster_key_file"`
	TLSCert        string `yaml:"tls_cert"`
	TLSKey         string `yaml:"tls_key"`
	TLSCA          string `yaml:"tls_ca"`
	Insecure       bool   `yaml:"insecure"`
	TrialsDir      string `yaml:"trials_dir"`
	TrialSlots     int    `yaml:"trial_slots"`
}

// NodeSettingKeys are the keys of CommandSettings that only 'qfleet node'
// reads: a node's place in the cluster and its roles. A sweep's trials run
// as 'qfleet dev', so a sweep spec drops these from a base config and
// refuses them as searched params. The cli checks that they are the flags
// of 'qfleet node' beyond the training flags.
func NodeSettingKeys() []string {
	return []string{"name", "roles", "join", "gossip_addr", "remote_addr", "advertise", "profile",
		"cluster_key_file", "tls_cert", "tls_key", "tls_ca", "insecure", "trials_dir", "trial_slots"}
}

// fieldComment is what the printed config says above and beside one key.
type fieldComment struct {
	group string // section comment starting a group of keys ("" inside one)
	text  string // the key's own comment
}

// runOptionComments are the comments of the RunOptions keys; the
// hyper-parameters' come from actors/config.go (configComments, generated).
// TestConfigComments checks that every key of Config has one.
func runOptionComments() map[string]fieldComment {
	return map[string]fieldComment{
		"env":            {group: "Run options (flags of the same name override them)", text: "environment id: " + strings.Join(envs.IDs(), ", ")},
		"seed":           {text: "random seed of the run (env resets, exploration, initial weights, replay sampling)"},
		"max_steps":      {text: "stop after this many env steps"},
		"max_time":       {text: "stop after this much wall time, e.g. 10m; 0 for no limit"},
		"target_return":  {text: "stop when mean100 reaches this return (default: the env's reward threshold)"},
		"stop_on":        {text: "what target_return applies to: mean100 (the last 100 episodes at ε ≤ 0.05), eval (an evaluation's mean return; needs eval_every > 0) or none (reaching it is recorded, the run goes on to max_steps or max_time: does it hold?)"},
		"http":           {text: "serve the dashboard (/), /metrics, /status and /history on this address (empty: no HTTP)"},
		"pprof":          {text: "also serve the Go profiles at /debug/pprof/ on the http address (off: they reveal internals and cost CPU)"},
		"checkpoint_dir": {text: "learner checkpoints (empty: none, or RUN_DIR/checkpoints when a checkpoint flag is given)"},
		"summary":        {text: "JSON summary at exit (empty: RUN_DIR/summary.json)"},
		"progress":       {text: "interval between progress log lines on stderr, for logs kept in files; 0 turns them off"},
		"live":           {text: "the live progress line on stderr (bar, rates, mean100, ETA): auto (only when stdout and stderr are terminals), always or never"},
		"log_level":      {text: "debug, info, warn or error"},
		"env_command":    {text: "your own env, served by this program over the env protocol (e.g. python3 my_env.py; docs/env-protocol.md): started by each runner (and once to learn its spec); env names it (default: the id the env gives)"},
		"env_address":    {text: "or your own env, served by an env server already running at host:port"},
		"env_workers":    {text: "with env_command: worker processes per runner, each stepping a share of its envs_per_runner envs (0: 1)"},
		"env_spec":       {text: "your own env's spec (obs=4 dtype=float32 actions=2 max_steps=500 threshold=475), for a node that does not run it (a learner's): a run with env_command or env_address writes it here"},
	}
}

// commandSettingComments are the comments 'qfleet config print' writes.
var commandSettingComments = map[string]fieldComment{
	"run_dir":               {group: "Command settings (flags of the same name override them; the cluster ones are read by 'qfleet node' only)", text: "run directory (empty: a new runs/<env>-<seed>-<UTC time>)"},
	"checkpoint_every":      {text: "interval of periodic learner checkpoints; a value other than the default turns checkpoints on"},
	"replay_snapshot_every": {text: "interval of replay snapshots (0s: none)"},
	"max_memory":            {text: "memory the node may plan to use (16GiB, 500MB; auto: 80% of the machine's or cgroup's; 0: no limit); the estimate is at the end of this file"},
	"name":                  {text: "node name, unique in the cluster (empty: the host name)"},
	"roles":                 {text: "comma-separated roles of the node: replay, learner, broadcaster, runner, evaluator (needs eval_every > 0), trials"},
	"join":                  {text: "comma-separated seed gossip addresses (host:port); empty for the first node"},
	"gossip_addr":           {text: "memberlist gossip bind address (TCP and UDP)"},
	"remote_addr":           {text: "protoactor remote bind address (TCP)"},
	"advertise":             {text: "host[:port] other nodes reach this node at (empty: the bind host)"},
	"profile":               {text: "failure detection profile: local, lan, wan"},
	"cluster_key_file":      {text: "file with the shared gossip key"},
	"tls_cert":              {text: "this node's TLS certificate file (PEM)"},
	"tls_key":               {text: "this node's TLS private key file (PEM)"},
	"tls_ca":                {text: "CA certificate file: peers must present certificates it signed"},
	"insecure":              {text: "allow non-loopback addresses without a cluster key and TLS"},
	"trials_dir":            {text: "with the trials role: directory of the sweep trials' run directories"},
	"trial_slots":           {text: "with the trials role: sweep trials the node runs at a time"},
}

// LoadConfig reads a YAML config file over cf strictly: unknown keys are errors that name
// the key, so a typo never silently falls back to a default.
func LoadConfig(path string, cf *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data, path, cf)
}

// ParseConfig decodes YAML config data (named path in errors) over cf.
func ParseConfig(data []byte, path string, cf *Config) error {
	if err := checkWholeNumbers(data); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cf)
	var te *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("config %s: %s", path, singleLine(typeErrorText(data, te)))
	default:
		return fmt.Errorf("config %s: %s", path, singleLine(err.Error()))
	}
}

// checkWholeNumbers refuses a fraction for an integer setting: yaml.v3
// decodes `batch_size: 51.7` into an int as 51, silently.
func checkWholeNumbers(data []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // the decoder reports what is wrong with it
	}
	kinds := integerKeys()
	m := doc.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		key, val := m[i].Value, m[i+1]
		if !kinds[key] {
			continue
		}
		values := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			values = val.Content
		}
		for _, v := range values {
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!float" {
				continue
			}
			if x, err := strconv.ParseFloat(v.Value, 64); err == nil && x == math.Trunc(x) {
				continue // 1e5 is a whole number
			}
			return fmt.Errorf("line %d: %s = %s: must be a whole number", v.Line, key, v.Value)
		}
	}
	return nil
}

// integerKeys are the yaml keys of Config whose values are integers or
// lists of integers.
func integerKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				walk(f.Type)
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				if ft != reflect.TypeFor[time.Duration]() {
					keys[name] = true
				}
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return keys
}

// singleLine keeps an error message on one line whatever the input quoted in it.
func singleLine(s string) string {
	s = strings.ReplaceAll(s, " into qfleet.Config", " into the config (want key: value settings)")
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// typeErrorText turns yaml's multi-line type error into one line that names
// each offending key ("line 2: batch_size: cannot unmarshal !!str `abc` into int").
func typeErrorText(data []byte, te *yaml.TypeError) string {
	keyAt := map[int]string{} // line of a top-level value → its key
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			keyAt[m[i+1].Line] = m[i].Value
		}
	}
	parts := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		e = strings.ReplaceAll(e, " in type qfleet.Config", "")
		var line int
		if _, err := fmt.Sscanf(e, "line %d:", &line); err == nil && keyAt[line] != "" {
			e = strings.Replace(e, ": ", ": "+keyAt[line]+": ", 1)
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, "; ")
}

// MarshalConfig writes cf as YAML with header on top and a comment on every
// key (section comments before each group of hyper-parameters).
func MarshalConfig(cf Config, header string) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(cf); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: encoded as YAML kind %d, want a mapping", n.Kind)
	}
	comments := runOptionComments()
	for k, c := range commandSettingComments {
		comments[k] = c
	}
	for k, c := range configComments {
		comments[k] = c
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		c := comments[key.Value]
		if c.group != "" {
			key.HeadComment = "\n" + c.group // "\n": a blank line before each section
		}
		if i == 0 {
			key.HeadComment = header + "\n" + key.HeadComment
		}
		val.LineComment = c.text
		if r := actors.SettingRange(key.Value); r != "" {
			val.LineComment += " [" + r + "]"
		}
		if val.Kind == yaml.SequenceNode {
			val.Style = yaml.FlowStyle // hidden: [64, 64]
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b.Bytes(), nil
}
