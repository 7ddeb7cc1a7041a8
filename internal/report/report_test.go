package report

import (
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

func TestHolding(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	at := uint64(40000)
	rows := []Row{
		{Summary: qfleet.Summary{Seed: 1, Solved: true, Mean100MinAfterSolved: f(480), BestEvalMeanReturn: f(500), BestEvalEnvSteps: &at}},
		{Summary: qfleet.Summary{Seed: 2, Solved: true, Mean100MinAfterSolved: f(300), BestEvalMeanReturn: f(490)}},
		{Summary: qfleet.Summary{Seed: 3}},
	}
	got := Holding(rows, 450)
	for _, want := range []string{"| 1 | 480.0 | 500.0 | 40000 |", "| 2 | 300.0 | 490.0 | - |", "| 3 | - | - | - |",
		"held mean100 ≥ 450 after solving: 1/3 runs (2 solved)", "best evaluation: median 495.0 over 2 runs"} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if s := Holding(rows[2:], 450); s != "" {
		t.Errorf("runs without either: %q, want nothing", s)
	}
}
