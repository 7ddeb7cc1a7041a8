package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/internal/testutil"
)

func summaryJSON(seed int, solved bool, atSteps int, atSecs float64, steps int, wall, mean float64) string {
	return fmt.Sprintf(`{"env": "CartPole-v1", "seed": %d, "env_steps": %d, "episodes": 300, "learner_updates": 9000,
  "weights_version": 900, "wall_seconds": %g, "solved": %v, "solved_at_env_steps": %d, "solved_at_seconds": %g,
  "mean_return_100": %g, "mean_return_100_episodes": 100, "mean_return_100_all": 400, "experience_rejected": 0}
`, seed, steps, wall, solved, atSteps, atSecs, mean)
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	// Given out of seed order: the table is sorted by seed.
	files := []string{
		testutil.WriteFile(t, dir, "seed-3.json", summaryJSON(3, false, 0, 0, 500000, 400.25, 212.5)),
		testutil.WriteFile(t, dir, "seed-1.json", summaryJSON(1, true, 40000, 30.5, 41000, 31.0, 475.3)),
		testutil.WriteFile(t, dir, "seed-2.json", summaryJSON(2, true, 60000, 50.5, 61000, 51.0, 480)),
		testutil.WriteFile(t, dir, "seed-4.json", summaryJSON(4, true, 20000, 10.5, 21000, 11.0, 490)),
	}
	code, stdout, stderr := runQfleet(t, append([]string{"report"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	wantHead := "| seed | solved | solved_at_env_steps | solved_at_seconds | env_steps | wall_seconds | mean_return_100 |"
	wantRows := []string{
		"| 1 | yes | 40000 | 30.5 | 41000 | 31.0 | 475.3 |",
		"| 2 | yes | 60000 | 50.5 | 61000 | 51.0 | 480.0 |",
		"| 3 | no | - | - | 500000 | 400.2 | 212.5 |",
		"| 4 | yes | 20000 | 10.5 | 21000 | 11.0 | 490.0 |",
	}
	if len(lines) != 8 {
		t.Fatalf("want header, rule, 4 rows, blank, summary line; got:\n%s", stdout)
	}
	if lines[0] != wantHead || !strings.HasPrefix(lines[1], "|--") {
		t.Errorf("table head:\n%s\n%s", lines[0], lines[1])
	}
	for i, w := range wantRows {
		if lines[2+i] != w {
			t.Errorf("row %d = %q, want %q", i, lines[2+i], w)
		}
	}
	// Solved: 20000, 40000, 60000 → median 40000 (10.5, 30.5, 50.5 → 30.5).
	// With the unsolved run as +inf: 20000, 40000, 60000, +inf → (40000+60000)/2.
	wantSummary := "seeds solved 3/4; median over the solved runs: solved_at_env_steps 40000, solved_at_seconds 30.5; " +
		"median counting unsolved runs as +inf: solved_at_env_steps 50000, solved_at_seconds 40.5"
	if lines[7] != wantSummary {
		t.Errorf("summary line\n got %q\nwant %q", lines[7], wantSummary)
	}
}

func TestReportMedians(t *testing.T) {
	dir := t.TempDir()
	// Two of three unsolved: the +inf median is +inf; none solved: n/a.
	files := []string{
		testutil.WriteFile(t, dir, "a.json", summaryJSON(1, true, 12345, 9.25, 13000, 10, 476)),
		testutil.WriteFile(t, dir, "b.json", summaryJSON(2, false, 0, 0, 500000, 300, 100)),
		testutil.WriteFile(t, dir, "c.json", summaryJSON(3, false, 0, 0, 500000, 300, 100)),
	}
	_, stdout, _ := runQfleet(t, append([]string{"report"}, files...)...)
	want := "seeds solved 1/3; median over the solved runs: solved_at_env_steps 12345, solved_at_seconds 9.2; " +
		"median counting unsolved runs as +inf: solved_at_env_steps +inf, solved_at_seconds +inf"
	if !strings.Contains(stdout, want) {
		t.Errorf("got:\n%s\nwant the line %q", stdout, want)
	}
	_, stdout, _ = runQfleet(t, "report", files[1], files[2])
	want = "seeds solved 0/2; median over the solved runs: solved_at_env_steps n/a, solved_at_seconds n/a; " +
		"median counting unsolved runs as +inf: solved_at_env_steps +inf, solved_at_seconds +inf"
	if !strings.Contains(stdout, want) {
		t.Errorf("got:\n%s\nwant the line %q", stdout, want)
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	good := testutil.WriteFile(t, dir, "good.json", summaryJSON(1, true, 100, 1, 200, 2, 480))
	cases := []struct {
		name, file string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), nil},
		{"invalid JSON", testutil.WriteFile(t, dir, "bad.json", `{"seed": 1,`), []string{"not a summary JSON"}},
		{"not an object", testutil.WriteFile(t, dir, "list.json", `[1, 2]`), nil},
		{"placeholder of an unfinished run", testutil.WriteFile(t, dir, "empty.json", "{}\n"), []string{"missing env,"}},
		{"wrong type", testutil.WriteFile(t, dir, "type.json", strings.Replace(summaryJSON(1, false, 0, 0, 1, 1, 1), `"seed": 1`, `"seed": "one"`, 1)), nil},
		{"a directory", dir, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runQfleet(t, "report", good, c.file)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("printed a partial table:\n%s", stdout)
			}
			oneLine(t, stderr, append([]string{c.file}, c.want...)...)
		})
	}

	code, stdout, stderr := runQfleet(t, "report")
	if code != 2 || !strings.Contains(stderr, "Usage: qfleet report FILE...") || stdout != "" {
		t.Errorf("no files: exit %d, stderr %q; want 2 and the usage", code, stderr)
	}
	if code, _, _ := runQfleet(t, "report", "--bogus", good); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code, _, stderr := runQfleet(t, "report", "--help"); code != 0 || !strings.Contains(stderr, "Usage: qfleet report") {
		t.Errorf("report --help: exit %d, stderr %q", code, stderr)
	}
}
