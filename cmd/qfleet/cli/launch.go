package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet/cluster/launch"
)

const launchHelp = `Usage: qfleet launch CLUSTER.yaml [--restart] [--wait D]

Brings up the cluster that CLUSTER.yaml describes, over SSH: it checks every
host first (login, host key, architecture, free ports, a node already
running), so a bad host means nothing is started anywhere; makes the
credentials (CA, gossip key, a certificate per node) that the credentials
directory lacks; copies the qfleet binary, each node's credentials and its
config to the host; starts the nodes, the learner's host first, so that they
outlive the SSH session (a systemd service where systemd runs the host, else
a detached process with a pid file); and waits until every node has joined
and the learner's /status lists them all. Nodes already running are left
alone (--restart restarts them). Then:

  qfleet status CLUSTER.yaml       each node's process, and the learner's /status
  qfleet logs CLUSTER.yaml NODE    the node's log (-n lines, -f to follow)
  qfleet down CLUSTER.yaml         stop every node (SIGTERM, SIGKILL after stop_grace)

A cluster file, three hosts:

  name: cartpole                  # names the hosts' directory and systemd units
  ssh:                            # how to log in: for every host, unless a host's ssh: says otherwise
    user: ubuntu                  #   default: your user name
    key: ~/.ssh/id_ed25519        #   a private key file; or agent: true for ssh-agent's keys
    known_hosts: ~/.ssh/known_hosts  # host keys are checked against it (the default)
  settings:                       # config keys of every node ('qfleet config print' lists them)
    env: CartPole-v1
    target_return: 475
    profile: lan
  hosts:
    - name: A
      address: 203.0.113.10       # SSH dials it; the node binds it and peers dial it
      roles: [replay, learner, broadcaster]
      settings: {checkpoint_every: 30s}
    - name: B
      address: 203.0.113.11
      roles: [runner]
    - name: C
      address: 198.51.100.7
      roles: [runner]
      ssh: {port: 2222, host_key_fingerprint: "SHA256:..."}  # instead of known_hosts

Keys at the top (defaults of every host) and of a host:
  name          the cluster's name (default: the file's name); top only
  credentials   local directory of ca.crt, ca.key, cluster.key and NAME.crt/.key
                (default NAME-credentials beside the file); what is missing is
                made; give your own 'qfleet certs' directory to use it; top only
  binary        the local qfleet binary hosts get (default: this one)
  binaries      per architecture, GOARCH: PATH ({arm64: ./qfleet-arm64});
                a host gets binary, else binaries[its arch], else this one;
                the binary must be built for the host (uname -m); top only
  dir           the node's directory on the host: binary, credentials,
                node.yaml, node.log, node.pid, runs/ (default qfleet-NAME in the
                login's home; absolute or relative to the home)
  start         auto (default: systemd-run when systemd runs the host and the
                login is root, else detached), systemd, or detached (setsid +
                nohup; the log in node.log, the pid in node.pid)
  stop_grace    how long down waits after SIGTERM before SIGKILL (default 30s); top only
  ssh           user, port (22), key or keys (private key files), agent
                (true: also ssh-agent's keys), known_hosts (default
                ~/.ssh/known_hosts), host_key_fingerprint (SHA256:... as
                'ssh-keygen -lf' prints it, instead of known_hosts), timeout
                (10s, to connect and log in)
  ports         gossip (7946, TCP and UDP), remote (7947, TCP), http (9090: the
                learner's dashboard and /status, on the host's 127.0.0.1;
                status reads it through SSH)
  config        a local qfleet config file for the node(s) ('qfleet config print')
  settings      config keys over it (a host's over the top's); not the keys the
                launch sets itself: name, roles, join, gossip_addr, remote_addr,
                advertise, http, the TLS and key files, insecure. Paths in them
                (run_dir, checkpoint_dir, ...) are on the host, relative to dir
  args          extra 'qfleet node' flags (e.g. [--resume])
Keys of a host only:
  name          the node's name (required)
  address       host name or IP that SSH dials (required)
  roles         replay, learner, broadcaster, runner, evaluator, trials (a list
                or comma-separated; required). A sweep's hosts have the trials
                role; then 'qfleet sweep --join' the learner-less cluster
  bind          the IP the node listens on (default: address; 0.0.0.0 with advertise)
  advertise     behind NAT: the IP other nodes dial (the node then binds 0.0.0.0)
  http          the node's dashboard address, IP:PORT (default: the learner's
                127.0.0.1:ports.http, none elsewhere)

The hosts must run Linux with a POSIX sh. Every node must reach every other
node's gossip and remote ports, as for 'qfleet node' (README, "Run on several
machines").

Flags:
`

func runLaunch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet launch", flag.ContinueOnError)
	restart := fs.Bool("restart", false, "stop the nodes that run and start them again (default: leave them alone)")
	wait := fs.Duration("wait", launch.DefaultWait, "how long to wait for the nodes to join")
	spec, err := specArg(fs, launchHelp, args, stdout, stderr, 1)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	err = launch.Launch(ctx, spec, launch.Options{Out: stdout, Executable: exe, Restart: *restart, Wait: *wait})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%v: launch stopped; the nodes it started run on ('qfleet status', 'qfleet down')", context.Cause(ctx))
	}
	return err
}

const statusHelp = `Usage: qfleet status CLUSTER.yaml

Shows each node of the cluster that 'qfleet launch CLUSTER.yaml' started:
whether its process runs (or the last line of its log), then the learner's
/status, read through SSH: the members, the run's env steps, episodes,
mean100 and each runner's share. Exit code 0 when every node runs, 3 when
some do not (as systemctl status; 'qfleet status C.yaml || qfleet launch
C.yaml' starts them again), 1 when a host cannot be reached.
`

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet status", flag.ContinueOnError)
	spec, err := specArg(fs, statusHelp, args, stdout, stderr, 1)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return launch.Status(ctx, spec, launch.Options{Out: stdout})
}

const downHelp = `Usage: qfleet down CLUSTER.yaml

Stops every node of the cluster: SIGTERM, then SIGKILL after the cluster
file's stop_grace (30s) to a node still running and to anything left in its
process group; systemctl stop for a node systemd runs. The learner's node
goes first, as when a run ends by itself: it writes its checkpoint and
summary and leaves, and runner nodes that see it leave end on their own
(said so), the rest by SIGTERM. --restart of 'qfleet launch' stops nodes the
same way. Nodes that do not run are skipped. Nothing is deleted: the nodes'
directories keep their logs, run directories and credentials.
`

func runDown(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet down", flag.ContinueOnError)
	spec, err := specArg(fs, downHelp, args, stdout, stderr, 1)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return launch.Down(ctx, spec, launch.Options{Out: stdout})
}

const logsHelp = `Usage: qfleet logs [-n LINES] [-f] CLUSTER.yaml NODE

Prints the last lines of NODE's log (node.log in its directory on its host:
what the node wrote to stdout and stderr since its last start; the start
before is node.log.1). -f follows it until Ctrl-C.

Flags:
`

func runLogs(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet logs", flag.ContinueOnError)
	lines := fs.Int("n", 50, "`lines` to print from the end of the log")
	follow := fs.Bool("f", false, "follow the log as it grows, until Ctrl-C")
	spec, err := specArg(fs, logsHelp, args, stdout, stderr, 2)
	if err != nil {
		return err
	}
	if *lines < 0 {
		return usageError{errors.New("-n " + strconv.Itoa(*lines) + ": must be >= 0")}
	}
	if spec.Host(fs.Arg(1)) == nil {
		return usageError{fmt.Errorf("no node %q in %s (nodes: %s)", fs.Arg(1), spec.Path, strings.Join(spec.Names(), ", "))}
	}
	ctx, stop := signalContext()
	defer stop()
	return launch.Logs(ctx, spec, fs.Arg(1), *lines, *follow, stdout)
}

// specArg parses the flags (before or after the arguments) and loads the
// cluster file, the first of want arguments. A bad file is a usage error.
func specArg(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer, want int) (*launch.Spec, error) {
	if err := parseInterspersed(fs, help, args, stdout, stderr); err != nil {
		return nil, err
	}
	if fs.NArg() != want {
		what := "CLUSTER.yaml"
		if want == 2 {
			what = "CLUSTER.yaml NODE"
		}
		return nil, usageError{errors.New("want " + what + " (see --help)")}
	}
	spec, err := launch.Load(fs.Arg(0))
	if err != nil {
		return nil, usageError{err}
	}
	return spec, nil
}

// parseInterspersed parses flags wherever they are among the arguments
// ('qfleet launch c.yaml --restart' as well as 'qfleet launch --restart
// c.yaml'), leaving the arguments in fs.Args.
func parseInterspersed(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer) error {
	var pos []string
	for {
		if err := parseFlagsOnly(fs, help, args, stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
