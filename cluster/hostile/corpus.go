package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CorpusEntry is one fuzz seed in go test's corpus file format ("go test
// fuzz v1", then one Go literal per argument of the fuzz function).
func CorpusEntry(values ...any) []byte {
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

// CheckCorpus keeps the committed seed corpus of a fuzz target in step with
// the seeds its test builds from the real encoders: with
// QFLEET_WRITE_FUZZ_SEEDS=1 it writes them to testdata/fuzz/<target>/<name>
// (relative to the test's package); otherwise it fails when one is missing,
// so that a seed added in code is not silently left out of 'go test' (which
// runs the corpus, not the code). The contents are not compared: zstd output
// and timestamps may differ from one build to the next without the seed
// being any less valid.
func CheckCorpus(t testing.TB, target string, seeds map[string][]byte) {
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
