// Command customenv trains a DQN agent on an environment of its own (a
// corridor, corridor.go) through qfleet's public Go API: register the env,
// take the defaults, change what the run needs, train.
//
//	go run ./examples/customenv                 # train Corridor-v0, print the summary
//	go run ./examples/customenv dev --help      # or any qfleet command, Corridor-v0 included
//
// With arguments it is the whole qfleet command (cli.Main), so 'config
// print', 'node', 'sweep' and the rest know Corridor-v0 as well.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cmd/qfleet/cli"
	"github.com/qfleet/qfleet/envs"
)

// CorridorID is the id the corridor is registered under.
const CorridorID = "Corridor-v0"

func init() {
	envs.Register(CorridorID, func() envs.Env { return NewCorridor(8) })
}

func main() {
	if len(os.Args) > 1 {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	sum, err := train(os.TempDir()+"/qfleet-customenv", 40_000, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "customenv:", err)
		os.Exit(1)
	}
	fmt.Printf("solved=%v after %d env steps, mean100 %.3f\n", sum.Solved, sum.SolvedAtEnvSteps, sum.MeanReturn100)
}

// train runs Corridor-v0 in this process until mean100 reaches the
// env's reward threshold or maxSteps, and returns the run's summary.
func train(runsRoot string, maxSteps uint64, stdout, stderr io.Writer) (qfleet.Summary, error) {
	cfg := qfleet.DefaultConfig(CorridorID)
	cfg.MaxSteps = maxSteps
	cfg.Live = "never"
	cfg.EpsilonDecaySteps = 3_000 // a small task: explore for less
	cfg.MinReplaySize = 500
	qfleet.RunsRoot = runsRoot // the run directory goes under it
	run, err := qfleet.NewRun(cfg, qfleet.Options{})
	if err != nil {
		return qfleet.Summary{}, err
	}
	return run.Dev(stdout, stderr)
}
