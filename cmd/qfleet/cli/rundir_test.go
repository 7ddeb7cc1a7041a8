package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// checkScalars reads a run's scalars.jsonl and checks that steps and walls
// never go backwards and that every name in want is there.
func checkScalars(t *testing.T, dir string, want ...string) []scalar {
	t.Helper()
	recs, err := readScalars(filepath.Join(dir, runScalarsFile))
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
	if got := effectiveOf(t, "--config", filepath.Join(dir, runConfigFile)); !reflect.DeepEqual(got, want) {
		t.Errorf("config.yaml read back:\n%+v\nwant\n%+v", got, want)
	}
	recs := checkScalars(t, dir, "mean100_all", "env_steps_per_s", "learner_updates_per_s", "replay_size", "learner_loss", "weights_lag/dev/runner-0")
	if _, err := readSummary(filepath.Join(dir, runSummaryFile)); err != nil {
		t.Errorf("summary: %v", err)
	}
	if _, err := actors.ReadCheckpoint(filepath.Join(dir, runCkptDir)); err != nil {
		t.Errorf("checkpoint in the run directory: %v", err)
	}

	code, stdout, stderr := runQfleet(t, append([]string{"dev"}, args...)...)
	if code != 2 || strings.Contains(stdout, "solved=") {
		t.Errorf("a second run into %s: exit %d, want 2 and no run", dir, code)
	}
	oneLine(t, stderr, dir, "--resume")

	code, _, stderr = runQfleet(t, append([]string{"dev", "--resume"}, args...)...)
	if code != 0 {
		t.Fatalf("--resume: exit %d\n%s", code, stderr)
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
	defer func(old string) { runsRoot = old }(runsRoot)
	runsRoot = root
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
	for _, f := range []string{runConfigFile, runSummaryFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, runCkptDir)); err == nil {
		t.Errorf("checkpoints written without a checkpoint flag")
	}
}

func TestMakeRunDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "runs")
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	a, err := makeRunDir("", false, root, "MinAtar/Breakout-v1", 3, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := makeRunDir("", false, root, "MinAtar/Breakout-v1", 3, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "MinAtar_Breakout-v1-3-20260304T040607Z"); a != want || b != want+"-2" {
		t.Errorf("run dirs %s, %s; want %s and its -2", a, b, want)
	}
	// A --run-dir that cannot be made names itself.
	file := writeFile(t, t.TempDir(), "file", "x")
	if _, err := makeRunDir(filepath.Join(file, "run"), false, root, "CartPole-v1", 1, now); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("run dir under a file: err %v, want one naming %s", err, file)
	}
}

func TestReadScalars(t *testing.T) {
	dir := t.TempDir()
	// A run killed mid-write leaves a last line without its newline.
	cut := writeFile(t, dir, "cut.jsonl", `{"step":1,"wall":0.5,"name":"mean100","value":20}`+"\n\n"+`{"step":2,"wa`)
	recs, err := readScalars(cut)
	if err != nil || len(recs) != 1 || recs[0] != (scalar{Step: 1, Wall: 0.5, Name: "mean100", Value: 20}) {
		t.Errorf("cut file: %+v, %v", recs, err)
	}
	bad := writeFile(t, dir, "bad.jsonl", `{"step":1,"wall":0.5,"name":"mean100","value":20}`+"\nnot json\n")
	if _, err := readScalars(bad); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("malformed line: err %v, want one naming %s:2", err, bad)
	}
	noName := writeFile(t, dir, "noname.jsonl", `{"step":1,"value":2}`+"\n")
	if _, err := readScalars(noName); err == nil || !strings.Contains(err.Error(), noName+":1:") {
		t.Errorf("record without a name: err %v", err)
	}
}

// TestOpenScalarsAfterACut: a resumed run appends whole lines after a last
// line cut short, and its wall clock goes on from the last whole record.
func TestOpenScalarsAfterACut(t *testing.T) {
	path := writeFile(t, t.TempDir(), runScalarsFile, `{"step":1,"wall":7.5,"name":"mean100","value":20}`+"\n"+`{"step":2,"wa`)
	w, err := openScalars(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.wallOffset != 7.5 {
		t.Errorf("wall offset %v, want 7.5", w.wallOffset)
	}
	m := actors.NewMetrics()
	start := time.Now()
	w.start(m, start, true)
	w.record(m, []string{actors.RoleRunner}, start, start.Add(time.Second))
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readScalars(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || recs[1].Wall != 8.5 || recs[1].Name != "env_steps_per_s" {
		t.Errorf("records after the cut: %+v; want the first, then env_steps_per_s at wall 8.5", recs)
	}
}
