package qfleet

// Startup checks: what would make a run fail in its first seconds, or
// silently later (a checkpoint that does not fit, a directory that cannot
// be written), is refused before anything is written or any actor starts,
// in one line with exit code 2; and a run whose learner stops for good ends
// instead of going on without one.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// CheckpointDir is where the run's checkpoints go, when that is known
// before the run directory is made: --checkpoint-dir, else the checkpoints
// of a --run-dir when checkpoints were asked for ("" otherwise; a new
// default run directory gets its checkpoints inside, probed with it).
func (t *Run) CheckpointDir() string {
	if t.cf.CheckpointDir == "" && t.checkpointsAsked && t.runDir != "" {
		return filepath.Join(t.runDir, RunCheckpointsDir)
	}
	return t.cf.CheckpointDir
}

// checkStart runs the checks a start passes before it writes or starts
// anything: the memory budget (--max-memory) and the fit of what --resume
// reads, for the node's training roles.
func (t *Run) checkStart(roles []string) error {
	if err := checkEnvSteppable(t.cf.Env, roles); err != nil {
		return UsageError{err}
	}
	if err := t.checkMemory(roles, t.cf.MaxMemory); err != nil {
		return err
	}
	return t.checkResume(roles)
}

// checkResume refuses, before anything is written or started, a --resume
// from a checkpoint or replay snapshot that does not fit the run (another
// env, another network): the learner would fail on every start. roles are
// the node's training roles (which of the files they read).
func (t *Run) checkResume(roles []string) error {
	dir := t.CheckpointDir()
	if !t.resume || dir == "" {
		return nil
	}
	if err := actors.CheckResume(dir, t.cf.Env, actors.NetSpec(t.spec, t.cf.Config), roles); err != nil {
		return UsageError{err}
	}
	return nil
}

// checkDirs refuses a run directory or checkpoint directory this process
// cannot write in (a path under a regular file, a read-only file system)
// before anything is written: otherwise the first checkpoint, seconds or
// minutes in, would be the first to notice.
func (t *Run) checkDirs(makesRunDir bool) error {
	if makesRunDir {
		what, dir := "--run-dir", t.runDir
		if dir == "" {
			what, dir = "run directory root", RunsRoot
		}
		if err := probeDir(dir); err != nil {
			return UsageError{fmt.Errorf("%s %s: %w", what, dir, err)}
		}
	}
	if dir := t.CheckpointDir(); dir != "" {
		what := "--checkpoint-dir"
		if t.cf.CheckpointDir == "" {
			what = "checkpoint directory"
		}
		if err := probeDir(dir); err != nil {
			return UsageError{fmt.Errorf("%s %s: %w", what, dir, err)}
		}
	}
	return nil
}

// probeDir checks that dir is, or can be made, a directory this process can
// write in, leaving nothing behind: the deepest part of the path that exists
// must be a directory in which a file can be created (and is removed).
func probeDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", p)
			}
			f, err := os.CreateTemp(p, ".qfleet-probe-*")
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return fmt.Errorf("cannot write in %s: %w", p, err)
			}
			f.Close()
			return os.Remove(f.Name())
		}
		parent := filepath.Dir(p)
		if parent == p || !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		p = parent // missing, or under a file: the walk up finds the file
	}
}

// learnerCheckEvery is how often a run looks for its learner and runners among the
// node's stopped roles.
const learnerCheckEvery = 250 * time.Millisecond

// learnerStopped reports whether node has the learner role and its learner
// stopped for good (a checkpoint that does not fit, a restart budget used
// up): nothing trains any more, and asking it for a checkpoint would only
// wait out a timeout.
func learnerStopped(node *actors.Node) bool {
	return slices.Contains(node.Roles, actors.RoleLearner) && slices.Contains(node.Metrics.Status().StoppedRoles, actors.LearnerName)
}

// watchRoles returns a channel that says why the run is over when a role
// it cannot go on without stops for good: the learner (on its node), or
// every runner of the node (their envs failed through the restart budget:
// no experience comes from here any more). stop ends the watch.
func watchRoles(node *actors.Node) (over <-chan string, stop func()) {
	ch, quit := make(chan string, 1), make(chan struct{})
	go func() {
		tk := time.NewTicker(learnerCheckEvery)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				if learnerStopped(node) {
					ch <- "the learner stopped for good (its error is logged above)"
					return
				}
				if gone, why := node.RunnersStopped(); gone {
					ch <- "every runner of this node stopped for good, its envs failing through the restart budget; the last error: " + why
					return
				}
			}
		}
	}()
	return ch, func() { close(quit) }
}
