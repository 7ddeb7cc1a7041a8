package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
)

const configHelp = `Usage: qfleet config print [--env ID] [--config FILE]

Prints the full effective config of a run as YAML: the run options and every
hyper-parameter of actors.Config, with the defaults for the env (--env, else
the env of --config FILE, else CartPole-v1), then FILE's settings over them,
each with a comment saying what it does. The output is a valid --config file:

  qfleet config print --env Acrobot-v1 > acrobot.yaml   # edit, then
  qfleet dev --config acrobot.yaml

A config that breaks a rule (say batch_size: 0) is refused with a one-line
error naming the field and the rule, and exit code 2, as 'qfleet dev' would.

Flags:
`

// fieldComment is what the printed config says above and beside one key.
type fieldComment struct {
	group string // section comment starting a group of keys ("" inside one)
	text  string // the key's own comment
}

// runOptionComments are the comments of the runOptions keys; the
// hyper-parameters' come from actors/config.go (configComments, generated).
// TestConfigComments checks that every key of configFile has one.
func runOptionComments() map[string]fieldComment {
	return map[string]fieldComment{
		"env":            {group: "Run options (flags of the same name override them)", text: "environment id: " + strings.Join(envs.IDs(), ", ")},
		"seed":           {text: "random seed of the run (env resets, exploration, initial weights, replay sampling)"},
		"max_steps":      {text: "stop after this many env steps"},
		"max_time":       {text: "stop after this much wall time, e.g. 10m; 0 for no limit"},
		"target_return":  {text: "stop when mean100 reaches this return (default: the env's reward threshold)"},
		"http":           {text: "serve the dashboard (/), /metrics, /status and /history on this address (empty: no HTTP)"},
		"pprof":          {text: "also serve the Go profiles at /debug/pprof/ on the http address (off: they reveal internals and cost CPU)"},
		"checkpoint_dir": {text: "learner checkpoints (empty: none, or RUN_DIR/checkpoints when a checkpoint flag is given)"},
		"summary":        {text: "JSON summary at exit (empty: RUN_DIR/summary.json)"},
		"progress":       {text: "interval between progress log lines on stderr, for logs kept in files; 0 turns them off"},
		"live":           {text: "the live progress line on stderr (bar, rates, mean100, ETA): auto (only when stdout and stderr are terminals), always or never"},
		"log_level":      {text: "debug, info, warn or error"},
	}
}

// runConfig is 'qfleet config SUBCOMMAND'.
func runConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, configHelp)
		return usageError{errors.New("missing subcommand (want: print)")}
	}
	switch args[0] {
	case "print":
		return runConfigPrint(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, configHelp)
		return errHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q (want: print)", args[0])}
}

func runConfigPrint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet config print", flag.ContinueOnError)
	// The other training flags keep their defaults on a set of their own, so
	// that resolve (the same code as 'dev') computes the effective config.
	// The node's flags too, so that the cluster settings print their
	// defaults.
	flags := flag.NewFlagSet("", flag.ContinueOnError)
	tf := addTrainFlags(flags)
	addNodeFlags(flags)
	fs.StringVar(tf.envID, "env", "CartPole-v1", "environment `id` ("+strings.Join(envs.IDs(), ", ")+"); default: the config file's, else CartPole-v1")
	fs.StringVar(tf.cfgPath, "config", "", "YAML config `file` to apply over the env's defaults")
	if err := parseFlags(fs, configHelp, args, stdout, stderr); err != nil {
		return err
	}
	t, err := tf.resolve(fs)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("qfleet config for %s: every setting, the env's defaults overridden by the config file given.\n"+
		"Use it with 'qfleet dev --config FILE' (or node); flags given on the command line override it.", t.cf.Env)
	data, err := marshalConfig(t.effective(), header)
	if err != nil {
		return err
	}
	roles := splitList(flags.Lookup("roles").Value.String())
	est := t.memoryEstimate(roles)
	limit, err := maxMemory(*tf.maxMemory)
	if err != nil {
		return err
	}
	data = append(data, estimateComment(est, roles, limit)...)
	_, err = stdout.Write(data)
	return err
}

// effective is the resolved config as a config file says it: the target
// return the run uses (the env's threshold unless set) and the progress
// interval the flags chose, so that reading it back gives the same run.
func (t *training) effective() configFile {
	cf := t.cf
	target := t.targetReturn
	cf.TargetReturn = &target
	cf.Progress = t.progressEvery.String()
	cf.MaxTime = t.maxTime.String()
	cf.flagSettings.fromFlags(t.flags)
	cf.Hidden = slices.Clone(cf.Hidden)
	return cf
}

// marshalConfig writes cf as YAML with header on top and a comment on every
// key (section comments before each group of hyper-parameters).
func marshalConfig(cf configFile, header string) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(cf); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: encoded as YAML kind %d, want a mapping", n.Kind)
	}
	comments := runOptionComments()
	for k, c := range flagSettingComments {
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

// netsHelp lists each env's default Q-network for --help ('hidden',
// 'conv_filters' and 'dueling' change it).
var netsHelp = func() string {
	var b strings.Builder
	b.WriteString("The Q-network of each env by default (the settings hidden, conv_filters and\ndueling change it):\n")
	for _, id := range envs.IDs() {
		env, err := envs.Make(id)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "  %-26s %s\n", id, actors.NetSpec(env, actors.DefaultConfigFor(id)))
	}
	return b.String()
}()
