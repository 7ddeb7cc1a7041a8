package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
)

func TestDashboardHistoryRing(t *testing.T) {
	h := newHistory(3)
	seqs := func(ss []sample) []uint64 {
		var out []uint64
		for _, s := range ss {
			out = append(out, s.Seq)
		}
		return out
	}
	if got := h.after(0); len(got) != 0 {
		t.Fatalf("empty history: after(0) = %v", seqs(got))
	}
	for i := 1; i <= 5; i++ {
		h.add(sample{Steps: uint64(100 * i)})
	}
	for _, c := range []struct {
		after uint64
		want  string
	}{
		{0, "[3 4 5]"}, // the ring holds the newest three
		{1, "[3 4 5]"}, // older than the ring: all it holds
		{3, "[4 5]"},
		{5, "[]"},
		{9, "[]"}, // newer than any (another process's seq)
	} {
		got := h.after(c.after)
		if s := fmt.Sprint(seqs(got)); s != c.want && !(c.want == "[]" && len(got) == 0) {
			t.Errorf("after(%d) = %s, want %s", c.after, s, c.want)
		}
		for _, s := range got {
			if s.Steps != 100*s.Seq {
				t.Errorf("sample %d holds steps %d, want %d", s.Seq, s.Steps, 100*s.Seq)
			}
		}
	}
}

func TestDashboardSampler(t *testing.T) {
	m := actors.NewMetrics()
	t0 := time.Now()
	s := &sampler{m: m, learner: true, started: t0}
	first := s.take(t0.Add(time.Second))
	if first.EnvStepsPerS != nil || first.UpdatesPerS != nil {
		t.Errorf("first sample has rates %v %v, want null (no interval yet)", first.EnvStepsPerS, first.UpdatesPerS)
	}
	if first.Mean100 != nil || first.Mean100All != nil {
		t.Errorf("mean100 before any episode = %v, want null", first.Mean100)
	}
	m.LocalRunnerSteps.Store(500) // a runner node's own steps: the status shows them
	second := s.take(t0.Add(3 * time.Second))
	if second.EnvStepsPerS == nil || *second.EnvStepsPerS != 250 || second.Steps != 500 {
		t.Errorf("after 500 steps in 2 s: steps %d, env_steps_per_s %v, want 500 and 250", second.Steps, second.EnvStepsPerS)
	}
	if second.UpdatesPerS == nil || *second.UpdatesPerS != 0 {
		t.Errorf("learner node: updates_per_s = %v, want 0", second.UpdatesPerS)
	}
	if second.Wall != 3 {
		t.Errorf("wall = %v, want 3", second.Wall)
	}
	runner := &sampler{m: m, started: t0}
	runner.take(t0)
	if r := runner.take(t0.Add(time.Second)); r.UpdatesPerS != nil {
		t.Errorf("node without the learner: updates_per_s = %v, want null", *r.UpdatesPerS)
	}
	if defined(math.NaN()) != nil || defined(math.Inf(1)) != nil || *defined(2) != 2 {
		t.Error("defined: NaN and Inf must be null, numbers themselves")
	}
}

func TestDashboardRecordStops(t *testing.T) {
	h := newHistory(10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		recordHistory(ctx, h, &sampler{m: actors.NewMetrics(), started: time.Now()}, 5*time.Millisecond)
		close(done)
	}()
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := len(h.after(0)); n < 3 {
			return fmt.Errorf("%d samples", n)
		}
		return nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("recordHistory did not return after its context ended")
	}
}

func TestDashboardHTTPHandler(t *testing.T) {
	m := actors.NewMetrics()
	h := newHistory(10)
	h.add(sample{Steps: 10})
	h.add(sample{Steps: 20})
	started := time.Now()
	srv := httptest.NewServer(newHTTPHandler(httpView{
		node: "A", roles: []string{"replay", "learner"}, metrics: m, started: started, history: h,
		members: func() []Member {
			return []Member{{Name: "A", Roles: []string{"replay", "learner"}, State: "alive", Self: true},
				{Name: "B", Roles: []string{"runner"}, State: "failed", StateSeconds: 3}}
		},
		run: Run{Env: "CartPole-v1", Seed: 1, TargetReturn: defined(475), MaxSteps: 1000, ReplayCapacity: 100},
	}))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	for path, want := range map[string]string{"/": "text/html", "/static/app.js": "javascript", "/static/style.css": "text/css"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) < 100 {
			t.Errorf("GET %s: %s, Content-Type %q, %d bytes; want 200, %s", path, resp.Status, resp.Header.Get("Content-Type"), len(body), want)
		}
	}
	if _, page := get("/"); !strings.Contains(page, `src="static/app.js"`) || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("the page must load its script from the binary and nothing from outside:\n%s", page)
	}
	if resp, _ := get("/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope: %s, want 404", resp.Status)
	}
	if resp, _ := get("/history?after=x"); resp.StatusCode != 400 {
		t.Errorf("GET /history?after=x: %s, want 400", resp.Status)
	}
	var hist struct {
		Started  int64    `json:"started"`
		Capacity int      `json:"capacity"`
		Samples  []sample `json:"samples"`
	}
	_, body := get("/history?after=1")
	if err := json.Unmarshal([]byte(body), &hist); err != nil {
		t.Fatalf("/history: %v\n%s", err, body)
	}
	if hist.Started != started.UnixMilli() || hist.Capacity != 10 || len(hist.Samples) != 1 || hist.Samples[0].Seq != 2 {
		t.Errorf("/history?after=1 = %s; want started, capacity 10, only sample 2", body)
	}
	_, body = get("/status")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	for _, k := range []string{"node", "roles", "members", "uptime_seconds", "weights_version", "counters", "runners",
		"mean_return_100", "mean_return_100_episodes", "mean_return_100_all", "solved", // what tools read
		"member_info", "weights_lag", "restarts", "stopped_roles", "run"} { // for the dashboard
		if _, ok := st[k]; !ok {
			t.Errorf("/status lacks %q: %s", k, body)
		}
	}
	if fmt.Sprint(st["members"]) != "[A]" {
		t.Errorf("/status members = %v, want only the live member A", st["members"])
	}
}

func TestDashboardRunnerLags(t *testing.T) {
	const term1, term2 = 1 << 40, 2 << 40
	st := actors.RunStatus{WeightsVersion: term2 | 50, Runners: map[string]actors.RunnerStatus{
		"a": {WeightsVersion: term2 | 47},
		"b": {WeightsVersion: term2 | 51}, // reported after a publication the learner's status has not shown yet
		"c": {WeightsVersion: term1 | 900},
	}}
	got := runnerLags(st, true)
	if len(got) != 2 || got["a"] != 3 || got["b"] != 0 {
		t.Errorf("runnerLags = %v, want a:3 b:0 and no c (another term)", got)
	}
}
