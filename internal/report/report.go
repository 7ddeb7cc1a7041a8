// Package report tabulates the summaries of runs ('qfleet report') as
// Markdown, with the seeds solved and median solve times.
package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet"
)

// Row is one summary file.
type Row struct {
	File    string
	Summary qfleet.Summary
}

// Markdown is the table of rows, one row per run in their order, then one
// line with the seeds solved, the median solved_at_env_steps and
// solved_at_seconds over the solved runs, and the same medians counting
// unsolved runs as +inf.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| seed | solved | solved_at_env_steps | solved_at_seconds | env_steps | wall_seconds | mean_return_100 |\n")
	b.WriteString("|-----:|:------:|--------------------:|------------------:|----------:|-------------:|----------------:|\n")
	var solvedSteps, solvedSecs, allSteps, allSecs []float64
	for _, r := range rows {
		s := r.Summary
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

// Holding is the second table of runs that went on after solving (stop_on:
// none) or ran evaluations: per seed the lowest mean100 from solving on and
// the best evaluation, then how many held mean100 at or above hold (when
// hold is not 0) and the median best evaluation. "" when no run has either.
func Holding(rows []Row, hold float64) string {
	if !slices.ContainsFunc(rows, func(r Row) bool {
		return r.Summary.Mean100MinAfterSolved != nil || r.Summary.BestEvalMeanReturn != nil
	}) {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n| seed | lowest mean100 after solving | best evaluation | at env steps |\n")
	b.WriteString("|-----:|-----------------------------:|----------------:|-------------:|\n")
	held, solved := 0, 0
	var bests []float64
	for _, r := range rows {
		s := r.Summary
		low, best, at := "-", "-", "-"
		if m := s.Mean100MinAfterSolved; m != nil {
			low = strconv.FormatFloat(*m, 'f', 1, 64)
			solved++
			if *m >= hold {
				held++
			}
		}
		if e := s.BestEvalMeanReturn; e != nil {
			best = strconv.FormatFloat(*e, 'f', 1, 64)
			bests = append(bests, *e)
		}
		if e := s.BestEvalEnvSteps; e != nil {
			at = strconv.FormatUint(*e, 10)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", s.Seed, low, best, at)
	}
	b.WriteString("\n")
	if hold != 0 {
		fmt.Fprintf(&b, "held mean100 ≥ %g after solving: %d/%d runs (%d solved); ", hold, held, len(rows), solved)
	}
	fmt.Fprintf(&b, "best evaluation: median %s over %d runs\n", fmtMedian(bests, 1), len(bests))
	return b.String()
}
