package sweep

// The results files and tables.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResultsTable(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	rows := []Row{
		{Trial: "t000-a", Key: "a", Params: map[string]any{"gamma": 0.9}, Seed: 1, Node: "B", Status: StatusOK, BestMean100: f(120), FinalMean100: f(100)},
		{Trial: "t001-b", Key: "b", Params: map[string]any{"gamma": 0.99}, Seed: 1, Node: "C", Status: StatusOK, BestMean100: f(300), FinalMean100: f(250)},
		{Trial: "t002-c", Key: "c", Params: map[string]any{"gamma": 0.999}, Seed: 1, Node: "B", Status: StatusFailed, Error: "exit status 2"},
		{Trial: "t003-d", Key: "d", Params: map[string]any{"gamma": 0.95}, Seed: 1, Node: "C", Status: StatusOK},
	}
	md := MarkdownTable(rows)
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if len(lines) != 2+len(rows) {
		t.Fatalf("table has %d lines, want %d:\n%s", len(lines), 2+len(rows), md)
	}
	for i, want := range []string{"t001-b", "t000-a", "t002-c", "t003-d"} {
		if !strings.HasPrefix(lines[2+i], fmt.Sprintf("| %d | %s |", i+1, want)) {
			t.Errorf("row %d: %q, want trial %s (best mean100 first, failed and undefined last)", i+1, lines[2+i], want)
		}
	}
	if !strings.Contains(md, "| gamma |") || !strings.Contains(md, "failed: exit status 2") {
		t.Errorf("table lacks the param column or the failure:\n%s", md)
	}
	path := filepath.Join(t.TempDir(), "results.tsv")
	if err := WriteTable(path, rows); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	tsv := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(tsv) != 5 || !strings.HasPrefix(tsv[0], "trial\tnode\tstatus\tseed\tgamma\tbest_mean100\tfinal_mean100") {
		t.Errorf("results.tsv:\n%s", data)
	}
	if cols := strings.Split(tsv[2], "\t"); cols[0] != "t001-b" || cols[1] != "C" || cols[4] != "0.99" || cols[5] != "300.0" {
		t.Errorf("results.tsv row 2: %q", cols)
	}
}

func TestResultsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ResultsFile)
	if rows, err := ReadResults(path); err != nil || rows != nil {
		t.Fatalf("missing file: %v %v, want no rows, no error", rows, err)
	}
	for _, r := range []Row{{Trial: "t0", Key: "k0", Status: StatusFailed}, {Trial: "t1", Key: "k1", Status: StatusOK}, {Trial: "t0", Key: "k0", Status: StatusOK}} {
		if err := appendResult(path, r); err != nil {
			t.Fatal(err)
		}
	}
	// A line cut short by a crash is left out.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"trial":"t2","key":"k2","sta`)
	f.Close()
	rows, err := ReadResults(path)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows (%v), want 3", len(rows), err)
	}
	if by := LatestByKey(rows); by["k0"].Status != StatusOK || len(by) != 2 {
		t.Errorf("latest by key: %v, want k0 ok (its newer row) and k1", by)
	}
}
