package freshdir

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMakeClaimsEachNameOnce(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Make(base, n)
			if err != nil {
				t.Error(err)
			}
			got[i] = d
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, d := range got {
		if seen[d] {
			t.Fatalf("%s handed out twice: %v", d, got)
		}
		seen[d] = true
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	if !seen[base] || !seen[base+"-2"] || !seen[base+"-8"] {
		t.Errorf("names %v; want %s, %[2]s-2 ... %[2]s-8", got, base)
	}
	if _, err := Make(base, n); err == nil || !strings.Contains(err.Error(), "exist already") {
		t.Errorf("all %d names taken: %v, want an error saying so", n, err)
	}
}
