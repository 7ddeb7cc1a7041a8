// Package qfleet is distributed deep Q-learning on supervised actors, as a
// library: what the qfleet command does, a Go program can do with its own
// environments.
//
// # Train in this process
//
// A run is a Config: the run options (env, seed, when to stop, where the
// outputs go), the command settings (run directory, checkpoints, memory
// budget, a cluster node's place) and the hyper-parameters (actors.Config).
// DefaultConfig fills in every default for an env; LoadConfig reads a YAML
// file over it, the same file 'qfleet config print' writes. NewRun checks a
// Config and Run.Dev trains it with every role in this process:
//
//	cfg := qfleet.DefaultConfig("CartPole-v1")
//	cfg.MaxSteps = 50_000
//	run, err := qfleet.NewRun(cfg, qfleet.Options{})
//	if err != nil {
//		log.Fatal(err) // a qfleet.UsageError names the setting
//	}
//	summary, err := run.Dev(os.Stdout, os.Stderr) // progress on stderr
//
// The run stops when mean100 (the mean return of the last 100 episodes
// played at ε ≤ 0.05) reaches the target return, at MaxSteps env steps, at
// MaxTime, or on SIGINT/SIGTERM. It leaves a run directory (RunDir, or a new
// one under RunsRoot): config.yaml, scalars.jsonl (the learning curves,
// ReadScalars), summary.json (Summary, ReadSummary) and, when checkpoints
// are on, checkpoints/ that Options.Resume continues from. With HTTP set it
// serves the dashboard, /status, /history and Prometheus /metrics.
//
// # Your own environment
//
// An environment is an envs.Env registered under an id with envs.Register;
// every feature then works for it as for the built-in ones. See the example
// program in examples/customenv.
//
// # A cluster node
//
// Run.Node runs some of the roles (actors.RoleRunner, RoleReplay,
// RoleLearner, RoleBroadcaster) on one cluster node: cluster.NodeSpec says
// where it listens, which seeds it joins and its credentials, and
// cluster.StartNode/Node.Close are the node's lifecycle.
//
// # The whole command
//
// Package cmd/qfleet/cli is the qfleet command (flags, help, dispatch): a
// program that registers its environments and calls cli.Main is a qfleet
// binary with every command, those environments included.
//
// The packages below this one: actors (the roles and their protocol),
// messages (the protobuf messages and, in messages/wire, their packing),
// cluster (gossip membership, remote messaging behind a guard, the node
// lifecycle), nets (the Q-networks), envs (the environments). README.md's
// Architecture section draws how they depend on each other.
package qfleet
