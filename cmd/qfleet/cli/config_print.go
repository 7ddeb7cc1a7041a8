package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/envs"
)

const configHelp = `Usage: qfleet config print [--env ID] [--config FILE] [--profile P] [--env-command CMD | --env-address HOST:PORT]

Prints the full effective config of a run as YAML: the run options and every
hyper-parameter of actors.Config, with the defaults for the env (--env, else
the env of --config FILE, else CartPole-v1) and the cluster profile (--profile,
else FILE's, else wan: its weights budget), then FILE's settings over them,
each with a comment saying what it does. The output is a valid --config file:

  qfleet config print --env Acrobot-v1 > acrobot.yaml   # edit, then
  qfleet dev --config acrobot.yaml

A config that breaks a rule (say batch_size: 0) is refused with a one-line
error naming the field and the rule, and exit code 2, as 'qfleet dev' would.

Flags:
`

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
	fs.StringVar(tf.envID, "env", qfleet.DefaultEnv, "environment `id` ("+strings.Join(envs.IDs(), ", ")+"); default: the config file's, else CartPole-v1")
	fs.StringVar(tf.cfgPath, "config", "", "YAML config `file` to apply over the env's defaults")
	fs.StringVar(tf.envCommand, "env-command", "", "your own env's `program` (as 'qfleet dev --env-command'): its handshake fills in env_spec")
	fs.StringVar(tf.envAddress, "env-address", "", "your own env's server at `host:port` (as 'qfleet dev --env-address')")
	profile := fs.String("profile", cluster.ProfileWAN, "cluster `profile` whose defaults to print (local, lan, wan), as 'qfleet node --profile'; default: the config file's, else wan")
	if err := parseFlags(fs, configHelp, args, stdout, stderr); err != nil {
		return err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "profile" })
	if given {
		if _, _, ok := cluster.WeightsBudget(*profile); !ok {
			return usageError{fmt.Errorf("--profile %q: want %s, %s or %s", *profile, cluster.ProfileLocal, cluster.ProfileLAN, cluster.ProfileWAN)}
		}
		// The node's flag too: the printed profile key, over the file's.
		if err := flags.Set("profile", *profile); err != nil {
			return usageError{err}
		}
	}
	t, err := tf.resolve(fs, nil)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("qfleet config for %s: every setting, the env's defaults overridden by the config file given.\n"+
		"Use it with 'qfleet dev --config FILE' (or node); flags given on the command line override it.", t.Effective().Env)
	data, err := qfleet.MarshalConfig(t.Effective(), header)
	if err != nil {
		return err
	}
	roles := splitList(flags.Lookup("roles").Value.String())
	est := t.MemoryEstimate(roles)
	limit, err := qfleet.ParseMaxMemory(*tf.maxMemory)
	if err != nil {
		return err
	}
	data = append(data, estimateComment(est, roles, limit)...)
	_, err = stdout.Write(data)
	return err
}

// netsHelp lists each env's default Q-network for --help ('hidden',
// 'conv_filters' and 'dueling' change it): when help is shown, so that the
// envs a program registers in its own init are listed too.
func netsHelp() string {
	var b strings.Builder
	b.WriteString("The Q-network of each env by default (the settings hidden, conv_filters and\ndueling change it):\n")
	for _, id := range envs.IDs() {
		spec, err := envs.SpecOf(id)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "  %-26s %s\n", id, actors.NetSpec(spec, actors.DefaultConfigFor(id)))
	}
	return b.String()
}

// estimateComment is the estimate as YAML comment lines for config print.
func estimateComment(e actors.MemoryEstimate, roles []string, limit uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Memory this config needs on a node with roles %s (estimate, checked against max_memory, now %s):\n",
		strings.Join(roles, ","), limitString(limit))
	for _, line := range strings.Split(e.String(), "\n") {
		b.WriteString("#   " + line + "\n")
	}
	return b.String()
}

func limitString(limit uint64) string {
	if limit == 0 {
		return "no limit"
	}
	return humanize.IBytes(limit)
}
