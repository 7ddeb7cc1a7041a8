package sweep

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/messages"
)

// fuzzRecordTrial is the trial whose result FuzzSweepRecord records.
var fuzzRecordTrial = Trial{Index: 0, ID: "t000-abcdef", Key: "abcdef0123456789",
	Params: map[string]any{"gamma": 0.99, "hidden": []any{64, 64}}, Seed: 1, Config: []byte("env: CartPole-v1\n")}

// fuzzRecordDir is the sweep directory of FuzzSweepRecord, reused for every
// input (emptied first); in memory where Linux offers it, as the few files
// of an input cost more on disk than recording them.
func fuzzRecordDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "qfleet-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// FuzzSweepRecord records a TrialResult as the sweep coordinator does when a
// worker sends one: every field is the remote's (node name, error, run
// directory, the run's files, floats that may be NaN or infinite). Nothing
// in it may stop the sweep (record fails only when this machine's disk
// does), the row must read back from results.jsonl, results.tsv must stay a
// table (a header and one line of as many columns), the Markdown table one
// line a row, and the log line one line.
func FuzzSweepRecord(f *testing.F) {
	out := fuzzRecordDir(f)
	f.Fuzz(func(t *testing.T, node, errMsg, runDir string, summary, config, scalars []byte, best, wall float64, attempt uint32, flags uint8) {
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		res := &messages.TrialResult{Trial: fuzzRecordTrial.ID, Attempt: attempt, Node: node, Ok: flags&1 != 0, Error: errMsg,
			RunDir: runDir, SummaryJson: summary, ConfigYaml: config, ScalarsJsonl: scalars,
			BestMean100: best, HasBest: flags&2 != 0, WallSeconds: wall, TimedOut: flags&4 != 0}
		if flags&8 != 0 {
			res.RunDir = filepath.Join(out, TrialsDir, runDir) // a run directory under the sweep's
		}
		rec := &recorder{path: filepath.Join(out, ResultsFile), outDir: out, trials: []Trial{fuzzRecordTrial}}
		_, line, err := rec.record(fuzzRecordTrial, res, trialNotes{})
		if err != nil {
			t.Fatalf("a worker's result stopped the sweep: %v", err)
		}
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("log line spans lines: %q", line)
		}
		rows, err := ReadResults(rec.path)
		if err != nil || len(rows) != 1 || rows[0].Key != fuzzRecordTrial.Key || rows[0].Trial != fuzzRecordTrial.ID {
			t.Fatalf("results.jsonl reads back %d rows, %v", len(rows), err)
		}
		for _, p := range []*float64{rows[0].BestMean100, rows[0].FinalMean100} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
				t.Fatalf("a mean100 of %v recorded", *p)
			}
		}
		tsv, err := os.ReadFile(filepath.Join(out, TableFile))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(tsv), "\n"), "\n")
		if len(lines) != 2 || strings.Count(lines[0], "\t") != strings.Count(lines[1], "\t") {
			t.Fatalf("results.tsv is not a header and one row:\n%q", tsv)
		}
		if md := MarkdownTable(rows); strings.Count(md, "\n") != 3 || strings.Contains(md, "\r") {
			t.Fatalf("Markdown table is not a header, a rule and one row:\n%q", md)
		}
	})
}

// fuzzRecordSeeds are the committed corpus of FuzzSweepRecord: what workers
// send (a run that finished, one that failed, one stopped at max_time), and
// values no worker should send.
func fuzzRecordSeeds() map[string][]byte {
	good := []byte(`{"env":"CartPole-v1","seed":1,"env_steps":20000,"wall_seconds":31.5,"solved":true,"mean_return_100":197.2,"mean_return_100_episodes":100}` + "\n")
	cfg := []byte("env: CartPole-v1\nseed: 1\n")
	sc := []byte(`{"step":100,"wall":1,"name":"mean100","value":7}` + "\n")
	seeds := map[string][]byte{}
	for name, args := range map[string][]any{
		"finished":        {"node-a", "", "/runs/sweeps/s/t000", good, cfg, sc, 198.5, 31.7, uint32(1), uint8(1 | 2)},
		"failed":          {"node-b", "exit status 1: panic: boom", "/runs/x", []byte{}, cfg, []byte{}, 0.0, 2.0, uint32(3), uint8(0)},
		"max-time":        {"node-a", "", "/runs/y", good, cfg, sc, 150.0, 90.0, uint32(1), uint8(1 | 2 | 4)},
		"local-run-dir":   {"local", "", "t000-abcdef", good, cfg, sc, 10.0, 1.0, uint32(1), uint8(1 | 2 | 8)},
		"nan-best":        {"n", "", "", good, []byte{}, []byte{}, math.NaN(), 1.0, uint32(1), uint8(1 | 2)},
		"inf-wall":        {"n", "", "", []byte{}, []byte{}, []byte{}, math.Inf(1), math.Inf(-1), uint32(1), uint8(1 | 2)},
		"nan-wall":        {"n", "oops", "", []byte{}, []byte{}, []byte{}, 0.0, math.NaN(), uint32(0), uint8(0)},
		"newlines":        {"a\tb\nc|d", "line one\nsweep s: [9/9] t999 finished\r", "\x00", []byte("{"), []byte("\xff"), []byte("\n\n"), 1.0, -5.0, uint32(math.MaxUint32), uint8(2)},
		"run-dir-escapes": {"n", "", "../../..", good, cfg, sc, 1.0, 1.0, uint32(1), uint8(1 | 8)},
	} {
		seeds[name] = hostile.CorpusEntry(args...)
	}
	return seeds
}

func TestFuzzSweepRecordCorpus(t *testing.T) {
	hostile.CheckCorpus(t, "FuzzSweepRecord", fuzzRecordSeeds())
}
