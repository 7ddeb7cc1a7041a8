package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster/hostile"
)

// FuzzHistoryQuery sends GET /history with any query to the dashboard's
// handler, over a ring of any size holding any number of samples: the answer
// is 400 exactly when historyAfter refuses the query, and otherwise JSON
// whose samples are the ones newer than after that the ring still holds,
// oldest first, consecutive, ending with the newest.
func FuzzHistoryQuery(f *testing.F) {
	started := time.UnixMilli(1_700_000_000_000)
	f.Fuzz(func(t *testing.T, rawQuery string, added uint16, ring uint8) {
		h := newHistory(1 + int(ring%64))
		for range added % 300 {
			h.add(sample{})
		}
		mux := http.NewServeMux()
		serveDashboard(mux, h, started)
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/history", RawQuery: rawQuery}, Header: http.Header{}}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		after, err := historyAfter(req.URL.Query())
		switch {
		case err != nil && w.Code != http.StatusBadRequest:
			t.Fatalf("query %q refused (%v), answered %d", rawQuery, err, w.Code)
		case err != nil:
			return
		case w.Code != http.StatusOK:
			t.Fatalf("query %q (after %d): answered %d: %s", rawQuery, after, w.Code, w.Body)
		}
		var body struct {
			Started  int64    `json:"started"`
			Capacity int      `json:"capacity"`
			Samples  []sample `json:"samples"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("query %q: not JSON: %v", rawQuery, err)
		}
		if body.Started != started.UnixMilli() || body.Capacity != len(h.ring) || body.Samples == nil {
			t.Fatalf("query %q: started %d, capacity %d, samples %v", rawQuery, body.Started, body.Capacity, body.Samples)
		}
		// The ring holds seqs [oldest, newest]; the answer is those > after.
		newest := uint64(added % 300)
		oldest := newest - min(newest, uint64(len(h.ring))) + 1
		want := uint64(0)
		if after < newest {
			want = newest - max(after+1, oldest) + 1
		}
		if uint64(len(body.Samples)) != want {
			t.Fatalf("after %d of seqs %d..%d: %d samples, want %d", after, oldest, newest, len(body.Samples), want)
		}
		for i, s := range body.Samples {
			if s.Seq != newest-want+1+uint64(i) {
				t.Fatalf("after %d: sample %d has seq %d, want %d", after, i, s.Seq, newest-want+1+uint64(i))
			}
		}
	})
}

// fuzzHistorySeeds are the committed corpus of FuzzHistoryQuery: the queries
// the page sends, and malformed ones, over an empty, a partly filled and a
// wrapped ring. "after=18446744073709551615" returned every sample (seq+1
// wrapped to 0).
func fuzzHistorySeeds() map[string][]byte {
	seeds := map[string][]byte{}
	for i, q := range []string{"", "after=0", "after=1", "after=5", "after=18446744073709551615", "after=18446744073709551616",
		"after=-1", "after=x", "after=", "after=3&after=x", "after=%zz", "a=1;after=2", "after=+4", "after=0x10"} {
		for _, fill := range []struct {
			name  string
			added uint16
			ring  uint8
		}{{"empty", 0, 4}, {"partly", 3, 10}, {"wrapped", 7, 4}} {
			seeds[fmt.Sprintf("q%02d-%s", i, fill.name)] = hostile.CorpusEntry(q, fill.added, fill.ring)
		}
	}
	return seeds
}

func TestFuzzHistoryQueryCorpus(t *testing.T) {
	hostile.CheckCorpus(t, "FuzzHistoryQuery", fuzzHistorySeeds())
}
