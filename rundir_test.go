package qfleet

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
)

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
	file := testutil.WriteFile(t, t.TempDir(), "file", "x")
	if _, err := makeRunDir(filepath.Join(file, "run"), false, root, "CartPole-v1", 1, now); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("run dir under a file: err %v, want one naming %s", err, file)
	}
}

func TestReadScalars(t *testing.T) {
	dir := t.TempDir()
	// A run killed mid-write leaves a last line without its newline.
	cut := testutil.WriteFile(t, dir, "cut.jsonl", `{"step":1,"wall":0.5,"name":"mean100","value":20}`+"\n\n"+`{"step":2,"wa`)
	recs, err := ReadScalars(cut)
	if err != nil || len(recs) != 1 || recs[0] != (Scalar{Step: 1, Wall: 0.5, Name: "mean100", Value: 20}) {
		t.Errorf("cut file: %+v, %v", recs, err)
	}
	bad := testutil.WriteFile(t, dir, "bad.jsonl", `{"step":1,"wall":0.5,"name":"mean100","value":20}`+"\nnot json\n")
	if _, err := ReadScalars(bad); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("malformed line: err %v, want one naming %s:2", err, bad)
	}
	noName := testutil.WriteFile(t, dir, "noname.jsonl", `{"step":1,"value":2}`+"\n")
	if _, err := ReadScalars(noName); err == nil || !strings.Contains(err.Error(), noName+":1:") {
		t.Errorf("record without a name: err %v", err)
	}
}

// TestOpenScalarsAfterACut: a resumed run appends whole lines after a last
// line cut short, and its wall clock goes on from the last whole record.
func TestOpenScalarsAfterACut(t *testing.T) {
	path := testutil.WriteFile(t, t.TempDir(), RunScalarsFile, `{"step":1,"wall":7.5,"name":"mean100","value":20}`+"\n"+`{"step":2,"wa`)
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
	recs, err := ReadScalars(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || recs[1].Wall != 8.5 || recs[1].Name != "env_steps_per_s" {
		t.Errorf("records after the cut: %+v; want the first, then env_steps_per_s at wall 8.5", recs)
	}
}
