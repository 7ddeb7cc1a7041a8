// Package cli is the qfleet command: its flags, help texts and dispatch. A Go
// program that registers environments of its own (envs.Register) and calls
// Main is a qfleet binary with those environments in it: every command,
// including the sweep's trials and the bench's children, which re-run the
// binary they are in.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/launch"
)

const usage = `qfleet — distributed deep Q-learning on supervised actors

Usage:
  qfleet dev [flags]     train with every role (runners, replay, learner,
                         broadcaster) in one process
  qfleet node [flags]    run one cluster node with the roles it is given
  qfleet config print [--env ID] [--config FILE]
                         print the full effective config, every default
                         and a comment per setting, as YAML
  qfleet certs [flags]   make a CA, node certificates and a gossip key
  qfleet launch CLUSTER.yaml [--restart]
                         start the cluster a file describes on its hosts
                         over SSH: credentials, binary, config, the nodes
  qfleet status CLUSTER.yaml
                         each launched node's state and the learner's /status
  qfleet logs CLUSTER.yaml NODE [-f]
                         a launched node's log
  qfleet down CLUSTER.yaml
                         stop the launched nodes (SIGTERM, then SIGKILL)
  qfleet eval --checkpoint DIR [--episodes N] [--render FILE.gif]
                         play episodes with a saved learner's network and
                         print their returns; draw the first as a GIF
  qfleet report FILE...  tabulate 'qfleet dev --summary' JSON files as
                         Markdown, with seeds solved and median solve times
  qfleet plot RUN_DIR... -o FILE.png
                         draw the learning curves of run directories (the
                         mean and min–max band of runs that differ by seed),
                         or of a sweep's trials by outcome (SWEEP_DIR...)
  qfleet sweep SPEC.yaml [flags]
                         hyper-parameter search (grid or random), each
                         trial a 'qfleet dev' process, here or spread over
                         the cluster's nodes with the trials role; resumable
  qfleet bench wire|weights  measure the cross-host flows between processes
  qfleet help [command]  show help

Run 'qfleet help COMMAND' (or 'qfleet COMMAND --help') for its flags.
`

// usageError is a mistake in how the command was called: exit code 2, as
// for a run that qfleet refused before it started (a qfleet.UsageError).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs the qfleet command with args (without the program name) and
// returns its exit code: 0 on success, 2 for a usage error, 3 when
// 'qfleet status' finds nodes that do not run, 1 otherwise.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, stdout, stderr)
}

// run is main without the process exit, so tests can call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "dev":
		err = runDev(args[1:], stdout, stderr)
	case "node":
		err = runNode(args[1:], stdout, stderr)
	case "certs":
		err = runCerts(args[1:], stdout, stderr)
	case "launch":
		err = runLaunch(args[1:], stdout, stderr)
	case "status":
		err = runStatus(args[1:], stdout, stderr)
	case "logs":
		err = runLogs(args[1:], stdout, stderr)
	case "down":
		err = runDown(args[1:], stdout, stderr)
	case "eval":
		err = runEval(args[1:], stdout, stderr)
	case "report":
		err = runReport(args[1:], stdout, stderr)
	case "config":
		err = runConfig(args[1:], stdout, stderr)
	case "plot":
		err = runPlot(args[1:], stdout, stderr)
	case "bench":
		err = runBench(args[1:], stdout, stderr)
	case "sweep":
		err = runSweep(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] != "help" && !strings.HasPrefix(args[1], "-") {
			// 'qfleet help CMD' is 'qfleet CMD --help'.
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "qfleet: unknown command %q (try 'qfleet help')\n", args[0])
		return 2
	}
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "qfleet %s: %v\n", args[0], err)
	var ue usageError
	var re qfleet.UsageError
	var nd *launch.NodesDownError
	switch {
	case errors.As(err, &ue) || errors.As(err, &re):
		return 2
	case errors.As(err, &nd):
		return 3
	}
	return 1
}

// parseFlags parses args, sending asked-for help to stdout; arguments that
// are not flags are usage errors.
func parseFlags(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer) error {
	if err := parseFlagsOnly(fs, help, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseFlagsOnly is parseFlags without the check for non-flag arguments.
func parseFlagsOnly(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(stderr)
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout) // asked-for help goes to stdout, like 'qfleet help'
		}
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	return nil
}
