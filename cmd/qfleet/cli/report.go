package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/internal/report"
)

const reportHelp = `Usage: qfleet report FILE...

Reads the JSON files written by 'qfleet dev --summary FILE' and prints a
Markdown table with one row per run (sorted by seed), then one line with the
seeds solved, the median solved_at_env_steps and solved_at_seconds over the
solved runs, and the same medians counting unsolved runs as +inf. Runs that
went on after solving (stop_on: none) or ran evaluations get a second table:
the lowest mean100 from solving on and the best evaluation, with the count
of runs that held mean100 at or above --hold.

Flags:
  -hold value   count the runs whose mean100 stayed at or above this after
                solving (0: no count)
`

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qfleet report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), reportHelp) }
	hold := fs.Float64("hold", 0, "count the runs whose mean100 stayed at or above this after solving (0: no count)")
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
	rows := make([]report.Row, 0, fs.NArg())
	for _, path := range fs.Args() {
		s, err := qfleet.ReadSummary(path)
		if err != nil {
			return err
		}
		rows = append(rows, report.Row{File: path, Summary: s})
	}
	slices.SortStableFunc(rows, func(a, b report.Row) int {
		switch {
		case a.Summary.Seed < b.Summary.Seed:
			return -1
		case a.Summary.Seed > b.Summary.Seed:
			return 1
		}
		return 0
	})
	_, err := io.WriteString(stdout, report.Markdown(rows)+report.Holding(rows, *hold))
	return err
}
