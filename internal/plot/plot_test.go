package plot

import (
	"fmt"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestAggregate(t *testing.T) {
	runs := []plotRun{
		{xys: plotter.XYs{{X: 0, Y: 0}, {X: 10, Y: 10}}},
		{xys: plotter.XYs{{X: 5, Y: 100}, {X: 20, Y: 100}}},
	}
	// From x=5 (both runs have begun) to 20; run 0 keeps 10 after its end.
	b := aggregate(runs, 4)
	want := band{
		mean: plotter.XYs{{X: 5, Y: 52.5}, {X: 10, Y: 55}, {X: 15, Y: 55}, {X: 20, Y: 55}},
		lo:   plotter.XYs{{X: 5, Y: 5}, {X: 10, Y: 10}, {X: 15, Y: 10}, {X: 20, Y: 10}},
		hi:   plotter.XYs{{X: 5, Y: 100}, {X: 10, Y: 100}, {X: 15, Y: 100}, {X: 20, Y: 100}},
	}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("aggregate = %v\nwant %v", b, want)
	}
	if _, ok := valueAt(runs[1].xys, 4); ok {
		t.Errorf("valueAt before a run's first record has a value")
	}
}

func TestSILabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 475: "475", -100: "-100", 2500: "2500", 20000: "20k", 150000: "150k", 1.5e6: "1.5M", 0.25: "0.25"} {
		if got := siLabel(v); got != want {
			t.Errorf("siLabel(%v) = %q, want %q", v, got, want)
		}
	}
}
