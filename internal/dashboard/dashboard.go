// Package dashboard is what a run serves on --http: the dashboard page,
// /status, /history, /metrics and, when asked, the Go profiles, behind a
// server hardened for a port anyone may reach (read-only methods, limits on
// headers, bodies and idle connections).
//
// The dashboard: / on --http is a page a person reads while a run trains:
// learning curves, throughput, replay fill, weights lag, members. A small
// script (assets/app.js) draws it from /status and /history. /status is a
// snapshot; the curves need the past, which this node keeps here, in memory:
// a ring of samples of its metrics, one a second, for the last two hours.
// Everything the page loads is embedded in the binary: no CDN, nothing to
// install, and it works on a host without internet access.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/qfleet/qfleet/actors"
)

//go:embed assets
var dashboardFiles embed.FS

const (
	historyEvery = time.Second
	// historyLen samples: two hours at one a second, about 1 MB. Longer runs
	// keep their whole curve in scalars.jsonl ('qfleet plot').
	historyLen = 7200
)

// sample is one moment of the run as /history serves it; undefined values
// are null, so that the page draws no made-up zeros.
type sample struct {
	Seq        uint64   `json:"seq"`         // 1, 2, ...: /history?after=SEQ returns the newer ones
	Wall       float64  `json:"wall"`        // seconds since this node started
	Steps      uint64   `json:"steps"`       // the run's env steps (with those before a resume)
	Episodes   uint64   `json:"episodes"`    //
	Mean100    *float64 `json:"mean100"`     // null until an episode at ε ≤ 0.05 ended
	Mean100All *float64 `json:"mean100_all"` // null until any episode ended
	// Rates since the previous sample; null for the first sample, and the
	// updates rate also on nodes without the learner.
	EnvStepsPerS *float64 `json:"env_steps_per_s"`
	UpdatesPerS  *float64 `json:"updates_per_s"`
	ReplaySize   int      `json:"replay_size"`
	// This node's link use, every flow together: bytes/s sent and received
	// (null for the first sample).
	LinkOutPerS *float64 `json:"link_out_per_s"`
	LinkInPerS  *float64 `json:"link_in_per_s"`
}

// history is a fixed ring of samples; safe for concurrent use.
type history struct {
	mu   sync.Mutex
	ring []sample // sample seq lives at ring[seq % len(ring)]
	next uint64   // the seq of the next sample (seqs start at 1)
}

func newHistory(n int) *history { return &history{ring: make([]sample, n), next: 1} }

// add appends s, overwriting the oldest sample when the ring is full.
func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Seq = h.next
	h.ring[s.Seq%uint64(len(h.ring))] = s
	h.next++
}

// after returns the samples newer than seq, oldest first (all it holds for
// seq 0, or when seq is older than the ring).
func (h *history) after(seq uint64) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := uint64(len(h.ring))
	if seq >= h.next-1 {
		// Nothing newer; and seq+1 below would wrap to 0 for the largest
		// seq, which a client may send, and return everything.
		return []sample{}
	}
	first := max(seq+1, h.next-min(h.next-1, n))
	out := make([]sample, 0, h.next-min(first, h.next))
	for s := first; s < h.next; s++ {
		out = append(out, h.ring[s%n])
	}
	return out
}

// sampler turns the node's metrics into samples, the rates from the
// difference to the previous one.
type sampler struct {
	m       *actors.Metrics
	learner bool // only the learner's node counts updates
	resumed bool // a resumed learner's count jumps to the checkpoint's once
	started time.Time

	lastAt          time.Time
	steps, updates  uint64
	wireOut, wireIn float64
}

func (s *sampler) take(now time.Time) sample {
	st := s.m.NodeStatus()
	smp := sample{
		Wall: math.Round(now.Sub(s.started).Seconds()*1000) / 1000, Steps: s.m.RunSteps(), Episodes: st.Episodes,
		Mean100: defined(st.Mean100), Mean100All: defined(st.Mean100All), ReplaySize: st.ReplaySize,
	}
	if dt := now.Sub(s.lastAt).Seconds(); !s.lastAt.IsZero() && dt > 0 {
		// Rates count this process's steps and updates: those of a resumed
		// run's past arrive at some moment after the start.
		smp.EnvStepsPerS = defined(float64(st.EnvSteps-min(s.steps, st.EnvSteps)) / dt)
		if s.learner && (!s.resumed || s.updates > 0) {
			smp.UpdatesPerS = defined(float64(st.LearnerUpdates-min(s.updates, st.LearnerUpdates)) / dt)
		}
	}
	out, in := s.m.WireTotals()
	if dt := now.Sub(s.lastAt).Seconds(); !s.lastAt.IsZero() && dt > 0 {
		smp.LinkOutPerS, smp.LinkInPerS = defined((out-s.wireOut)/dt), defined((in-s.wireIn)/dt)
	}
	s.lastAt, s.steps, s.updates, s.wireOut, s.wireIn = now, st.EnvSteps, st.LearnerUpdates, out, in
	return smp
}

// recordHistory adds a sample to h every interval until ctx ends (the run
// stops).
func recordHistory(ctx context.Context, h *history, s *sampler, every time.Duration) {
	h.add(s.take(time.Now()))
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			h.add(s.take(now))
		}
	}
}

// defined is x, or nil for NaN and ±Inf, which JSON cannot carry.
func defined(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// historyAfter reads /history's query: after=SEQ asks for the samples newer
// than SEQ; without it, all of them.
func historyAfter(q url.Values) (uint64, error) {
	a := q.Get("after")
	if a == "" {
		return 0, nil
	}
	after, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, errors.New("after: want a sample seq (an unsigned integer)")
	}
	return after, nil
}

// serveDashboard adds / (the page), /static/ (its script and style) and
// /history to mux.
func serveDashboard(mux *http.ServeMux, h *history, started time.Time) {
	static, err := fs.Sub(dashboardFiles, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	// no-cache: a browser left open across a new binary gets the new script.
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, r *http.Request) {
		after, err := historyAfter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			// started tells the page that another process answers now (a
			// restart on the same port): its seqs start over.
			"started":          started.UnixMilli(),
			"interval_seconds": historyEvery.Seconds(),
			"capacity":         len(h.ring),
			"samples":          h.after(after),
		})
	})
}
