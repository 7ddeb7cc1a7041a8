package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

const reportHelp = `Usage: qfleet report FILE...

Reads the JSON files written by 'qfleet dev --summary FILE' and prints a
Markdown table with one row per run (sorted by seed), then one line with the
seeds solved, the median solved_at_env_steps and solved_at_seconds over the
solved runs, and the same medians counting unsolved runs as +inf.
`

// summaryKeys are the keys DESIGN.md requires in a --summary file. A file
// missing any of them (e.g. the "{}" placeholder of a run that never finished)
// is rejected rather than read as zeros.
var summaryKeys = []string{
	"env", "seed", "env_steps", "episodes", "learner_updates", "wall_seconds",
	"solved", "solved_at_env_steps", "solved_at_seconds", "mean_return_100",
}

// reportRow is one --summary file.
type reportRow struct {
	file string
	s    summary
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), reportHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError{errors.New("no summary files given")}
	}
	rows := make([]reportRow, 0, fs.NArg())
	for _, path := range fs.Args() {
		s, err := readSummary(path)
		if err != nil {
			return err
		}
		rows = append(rows, reportRow{file: path, s: s})
	}
	slices.SortStableFunc(rows, func(a, b reportRow) int {
		switch {
		case a.s.Seed < b.s.Seed:
			return -1
		case a.s.Seed > b.s.Seed:
			return 1
		}
		return 0
	})
	_, err := io.WriteString(stdout, formatReport(rows))
	return err
}

// readSummary reads and checks one --summary file; errors name the file.
func readSummary(path string) (summary, error) {
	var s summary
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err // *fs.PathError names the file
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return s, fmt.Errorf("%s: not a summary JSON object: %w", path, err)
	}
	var missing []string
	for _, k := range summaryKeys {
		if _, ok := keys[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("%s: not a complete qfleet summary: missing %s", path, strings.Join(missing, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func formatReport(rows []reportRow) string {
	var b strings.Builder
	b.WriteString("| seed | solved | solved_at_env_steps | solved_at_seconds | env_steps | wall_seconds | mean_return_100 |\n")
	b.WriteString("|-----:|:------:|--------------------:|------------------:|----------:|-------------:|----------------:|\n")
	var solvedSteps, solvedSecs, allSteps, allSecs []float64
	for _, r := range rows {
		s := r.s
		atSteps, atSecs := "-", "-"
		if s.Solved {
			atSteps = strconv.FormatUint(s.SolvedAtEnvSteps, 10)
			atSecs = strconv.FormatFloat(s.SolvedAtSeconds, 'f', 1, 64)
			solvedSteps = append(solvedSteps, float64(s.SolvedAtEnvSteps))
			solvedSecs = append(solvedSecs, s.SolvedAtSeconds)
			allSteps = append(allSteps, float64(s.SolvedAtEnvSteps))
			allSecs = append(allSecs, s.SolvedAtSeconds)
		} else {
			allSteps = append(allSteps, math.Inf(1))
			allSecs = append(allSecs, math.Inf(1))
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %.1f | %.1f |\n",
			s.Seed, yesNo(s.Solved), atSteps, atSecs, s.EnvSteps, s.WallSeconds, s.MeanReturn100)
	}
	fmt.Fprintf(&b, "\nseeds solved %d/%d; median over the solved runs: solved_at_env_steps %s, solved_at_seconds %s; "+
		"median counting unsolved runs as +inf: solved_at_env_steps %s, solved_at_seconds %s\n",
		len(solvedSteps), len(rows),
		fmtMedian(solvedSteps, 0), fmtMedian(solvedSecs, 1),
		fmtMedian(allSteps, 0), fmtMedian(allSecs, 1))
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// median of xs (the mean of the two middle values for an even count; +Inf if
// either of them is); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	a, b := s[n/2-1], s[n/2]
	if math.IsInf(a, 1) || math.IsInf(b, 1) {
		return math.Inf(1)
	}
	return (a + b) / 2
}

// fmtMedian prints a median with prec decimals (fewer for whole numbers when
// prec is 0), "+inf" for an infinite one and "n/a" for the median of nothing.
func fmtMedian(xs []float64, prec int) string {
	m := median(xs)
	switch {
	case math.IsNaN(m):
		return "n/a"
	case math.IsInf(m, 1):
		return "+inf"
	case prec == 0 && m != math.Trunc(m):
		return strconv.FormatFloat(m, 'f', 1, 64) // the mean of two middle step counts
	}
	return strconv.FormatFloat(m, 'f', prec, 64)
}
