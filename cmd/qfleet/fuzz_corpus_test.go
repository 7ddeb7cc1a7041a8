package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzCorpusEntry is one seed in go test's corpus file format ("go test fuzz
// v1", then one Go literal per argument of the fuzz function).
func fuzzCorpusEntry(values ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch x := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", x)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", x)
		default:
			fmt.Fprintf(&b, "%T(%v)\n", x, x)
		}
	}
	return []byte(b.String())
}

// checkFuzzCorpus keeps a target's committed seed corpus in step with the
// seeds its test builds: with QFLEET_WRITE_FUZZ_SEEDS=1 it writes them to
// testdata/fuzz/<target>/<name>; otherwise it fails when one is missing, so
// that a seed added in code is not silently left out of 'go test' (which
// runs the corpus, not the code).
func checkFuzzCorpus(t *testing.T, target string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if os.Getenv("QFLEET_WRITE_FUZZ_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for name := range seeds {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("seed %s of %s is not in the corpus (QFLEET_WRITE_FUZZ_SEEDS=1 go test -run %s writes it): %v", name, target, t.Name(), err)
		}
	}
}
