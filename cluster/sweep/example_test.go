package sweep_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/qfleet/qfleet/cluster/sweep"
)

// A spec's trials: every point of the grid once per seed, with ids that
// depend on the spec alone.
func ExampleSpec_Expand() {
	spec, err := sweep.ParseSpec([]byte("env: CartPole-v1\nmethod: grid\nparams:\n  n_step: [1, 3]\nseeds: [1, 2]\n"), "nstep.yaml", ".", "nstep")
	if err != nil {
		log.Fatal(err)
	}
	trials, err := spec.Expand()
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range trials {
		fmt.Println(t.ID, "n_step", t.Params["n_step"], "seed", t.Seed)
	}
	// Output:
	// t000-5f8f83 n_step 1 seed 1
	// t001-5e8f02 n_step 1 seed 2
	// t002-6bdc73 n_step 3 seed 1
	// t003-26cb9d n_step 3 seed 2
}

// A sweep on this machine, two trials at a time. Each trial runs as
// 'EXE dev --config FILE': this program must dispatch the dev command as
// cli.Main does, or Options.Executable must name a qfleet binary.
func ExampleRun() {
	spec, err := sweep.LoadSpec("lr.yaml")
	if err != nil {
		log.Fatal(err)
	}
	rows, err := sweep.Run(context.Background(), spec, sweep.Options{
		Out: "sweeps/lr", Parallel: 2, Stdout: os.Stdout, Stderr: os.Stderr,
		Executable: "/usr/local/bin/qfleet",
	})
	if err != nil {
		log.Fatal(err) // which trials failed; run it again to retry them
	}
	for _, r := range rows {
		if r.BestMean100 != nil {
			fmt.Println(r.Trial, r.Params, *r.BestMean100)
		}
	}
}
