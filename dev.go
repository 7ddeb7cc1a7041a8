package qfleet

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/nets"
)

// Dev trains the run with every role in this process (env runners, replay,
// learner, broadcaster): the checks before start, the run directory, then
// the run until its stop rule, a signal or MaxTime. It writes the final
// checkpoint (when checkpoints are on) and the summary, and prints the
// result line on stdout; progress goes to stderr.
func (t *Run) Dev(stdout, stderr io.Writer) (Summary, error) {
	envOutput.set(stderr)
	if err := t.checkStart(actors.DevRoles(t.cf.Config)); err != nil {
		return Summary{}, err
	}
	ln, err := t.prepare(true)
	if err != nil {
		return Summary{}, err
	}
	nets.SetLearnerGC()
	stderr = t.display(stdout, stderr)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: t.level}))
	dev, err := actors.StartDev(actors.NodeOptions{
		EnvID: t.cf.Env, Seed: t.cf.Seed, Config: t.cf.Config,
		Stop:          t.stopRule(),
		CheckpointDir: t.cf.CheckpointDir, CheckpointEvery: t.checkpointEvery, SnapshotEvery: t.snapshotEvery, Resume: t.resume, Logger: logger,
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.abandonStart(stderr, "dev")
		return Summary{}, err
	}
	fmt.Fprintf(stderr, "qfleet dev: %s seed %d, target %s %.4g, max %d env steps, %d runner(s), net %v\n",
		t.cf.Env, t.cf.Seed, t.cf.StopOn, t.targetReturn, t.cf.MaxSteps, t.cf.Runners, dev.Net)
	return t.run("dev", dev, ln, runHooks{}, stdout, stderr)
}
