package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
)

// TestDevRunDir: a run writes config.yaml (readable back as --config, the
// same effective config), scalars.jsonl, summary.json and, asked for by
// --checkpoint-every, checkpoints into --run-dir; the same directory is
// refused for a new run and continued with --resume.
func TestDevRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"--max-steps", "3000", "--progress", "0", "--seed", "4", "--checkpoint-every", "0", "--run-dir", dir}
	code, _, stderr := runQfleet(t, append([]string{"dev"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "run directory "+dir) {
		t.Errorf("stderr does not name the run directory:\n%s", stderr)
	}
	want := effectiveOf(t, args...)
	if got := effectiveOf(t, "--config", filepath.Join(dir, qfleet.RunConfigFile)); !reflect.DeepEqual(got, want) {
		t.Errorf("config.yaml read back:\n%+v\nwant\n%+v", got, want)
	}
	recs := checkScalars(t, dir, "mean100_all", "env_steps_per_s", "learner_updates_per_s", "replay_size", "learner_loss", "weights_lag/dev/runner-0")
	if _, err := qfleet.ReadSummary(filepath.Join(dir, qfleet.RunSummaryFile)); err != nil {
		t.Errorf("summary: %v", err)
	}
	if _, err := actors.ReadCheckpoint(filepath.Join(dir, qfleet.RunCheckpointsDir)); err != nil {
		t.Errorf("checkpoint in the run directory: %v", err)
	}

	code, stdout, stderr := runQfleet(t, append([]string{"dev"}, args...)...)
	if code != 2 || strings.Contains(stdout, "solved=") {
		t.Errorf("a second run into %s: exit %d, want 2 and no run", dir, code)
	}
	oneLine(t, stderr, dir, "--resume")

	// Resumed with a larger max_steps, the run ends there: max_steps and
	// the summary count the run's env steps, those before the resume too.
	more := append([]string{"dev", "--resume"}, args...)
	more[3] = "6000"
	code, _, stderr = runQfleet(t, more...)
	if code != 0 {
		t.Fatalf("--resume: exit %d\n%s", code, stderr)
	}
	if sum, err := qfleet.ReadSummary(filepath.Join(dir, qfleet.RunSummaryFile)); err != nil || sum.EnvSteps < 6000 || sum.EnvSteps > 7500 {
		t.Errorf("the resumed run's summary: %d env steps (%v), want the run's 6000 (+ a batch)", sum.EnvSteps, err)
	}
	last := recs[len(recs)-1]
	all := checkScalars(t, dir)
	if len(all) <= len(recs) {
		t.Fatalf("--resume appended nothing to scalars.jsonl")
	}
	if next := all[len(recs)]; next.Step <= last.Step || next.Wall < last.Wall {
		t.Errorf("the resumed run's records do not continue the curve: %+v after %+v", next, last)
	}
}

// TestDevDefaultRunDir: without --run-dir a run gets a new directory named
// after env, seed and start time under runs/, and writes no checkpoints
// unless asked.
func TestDevDefaultRunDir(t *testing.T) {
	root := t.TempDir()
	defer func(old string) { qfleet.RunsRoot = old }(qfleet.RunsRoot)
	qfleet.RunsRoot = root
	code, _, stderr := runQfleet(t, "dev", "--max-steps", "500", "--progress", "0", "--seed", "5")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "CartPole-v1-5-") {
		t.Fatalf("runs/ holds %v (err %v), want one CartPole-v1-5-<time> directory", entries, err)
	}
	dir := filepath.Join(root, entries[0].Name())
	checkScalars(t, dir, "env_steps_per_s")
	for _, f := range []string{qfleet.RunConfigFile, qfleet.RunSummaryFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, qfleet.RunCheckpointsDir)); err == nil {
		t.Errorf("checkpoints written without a checkpoint flag")
	}
}

// checkScalars reads a run's scalars.jsonl and checks that steps and walls
// never go backwards and that every name in want is there.
func checkScalars(t *testing.T, dir string, want ...string) []qfleet.Scalar {
	t.Helper()
	recs, err := qfleet.ReadScalars(filepath.Join(dir, qfleet.RunScalarsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no records", dir)
	}
	names := map[string]bool{}
	for i, r := range recs {
		names[r.Name] = true
		if i > 0 && (r.Step < recs[i-1].Step || r.Wall < recs[i-1].Wall) {
			t.Errorf("record %d goes backwards: %+v after %+v", i, r, recs[i-1])
		}
	}
	for _, n := range want {
		if !names[n] {
			t.Errorf("%s: no %q records; names: %v", dir, n, names)
		}
	}
	return recs
}
