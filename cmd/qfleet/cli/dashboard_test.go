package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
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
	eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
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
		members: func() []memberInfo {
			return []memberInfo{{Name: "A", Roles: []string{"replay", "learner"}, State: "alive", Self: true},
				{Name: "B", Roles: []string{"runner"}, State: "failed", StateSeconds: 3}}
		},
		run: runInfo{Env: "CartPole-v1", Seed: 1, TargetReturn: defined(475), MaxSteps: 1000, ReplayCapacity: 100},
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
	got := runnerLags(st)
	if len(got) != 2 || got["a"] != 3 || got["b"] != 0 {
		t.Errorf("runnerLags = %v, want a:3 b:0 and no c (another term)", got)
	}
}

func TestDashboardGoneMembers(t *testing.T) {
	g := newGoneMembers()
	t0 := time.Now()
	runner := cluster.Member{Name: "B", Roles: []string{"runner"}}
	failed, left := runner, cluster.Member{Name: "C", Roles: []string{"runner"}, State: cluster.StateLeft}
	failed.State = cluster.StateFailed
	g.note(cluster.Event{Kind: cluster.Failed, Member: failed}, t0)
	g.note(cluster.Event{Kind: cluster.Left, Member: left}, t0)
	live := []cluster.Member{{Name: "A", Roles: []string{"learner"}, State: cluster.StateAlive, Since: t0}}
	got := g.with(live, "A", t0.Add(5*time.Second))
	if s := fmt.Sprint(got); s != "[{A [learner] alive 5 true} {B [runner] failed 5 false} {C [runner] left 5 false}]" {
		t.Errorf("with = %s", s)
	}
	if names := liveNames(got); fmt.Sprint(names) != "[A]" {
		t.Errorf("liveNames = %v, want [A]", names)
	}
	back := runner
	back.State = cluster.StateAlive
	g.note(cluster.Event{Kind: cluster.Joined, Member: back}, t0)
	if got := g.with(live, "A", t0); len(got) != 2 || got[1].Name != "C" {
		t.Errorf("after B rejoined: %v, want A and C (B is in the live table again, not gone)", got)
	}
	for i := range maxGoneMembers + 10 {
		g.note(cluster.Event{Kind: cluster.Failed, Member: cluster.Member{Name: fmt.Sprint("n", i), State: cluster.StateFailed}}, t0.Add(time.Duration(i)*time.Second))
	}
	if got := g.with(nil, "A", t0); len(got) != maxGoneMembers {
		t.Errorf("%d gone members remembered, want at most %d", len(got), maxGoneMembers)
	}
}

// chromium is Debian's chromium, installed by the test when missing: a
// dashboard test that skipped without a browser would prove nothing.
var chromium struct {
	once sync.Once
	path string
	err  error
}

func chromiumBinary(t *testing.T) string {
	t.Helper()
	chromium.once.Do(func() {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromium.path = p
			return
		}
		t.Log("chromium is not on PATH: installing Debian's chromium package (apt-get, as root)")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var out bytes.Buffer
		apt := func(args ...string) error {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			cmd.Stdout, cmd.Stderr = &out, &out
			return cmd.Run()
		}
		// The package lists may be missing or stale on a new machine: update
		// only when the install fails.
		err := apt("install", "-y", "-qq", "chromium")
		if err != nil {
			if err = apt("update", "-qq"); err == nil {
				err = apt("install", "-y", "-qq", "chromium")
			}
		}
		if err == nil {
			chromium.path, err = exec.LookPath("chromium")
		}
		if err != nil {
			chromium.err = fmt.Errorf("%v\n%s", err, lastLines(out.String(), 20))
		}
	})
	if chromium.err != nil {
		t.Fatalf("the dashboard test needs Debian's chromium on PATH; it is missing and 'apt-get install -y chromium' failed "+
			"(install it by hand, as root: apt-get update && apt-get install -y chromium): %v", chromium.err)
	}
	return chromium.path
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// headless runs chromium headless on url with args (--dump-dom, or
// --screenshot) after the page's scripts ran for budget of virtual time.
func headless(t *testing.T, bin, url string, budget time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args = append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--mute-audio", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=" + strconv.Itoa(int(budget.Milliseconds()))}, args...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 30))
	}
	return stdout.String()
}

// tagWith is the first start tag of kind tag whose attributes contain attr.
func tagWith(dom, tag, attr string) string {
	return regexp.MustCompile(`<` + tag + `\b[^>]*` + regexp.QuoteMeta(attr) + `[^>]*>`).FindString(dom)
}

// attrOf is the value of attribute name in a start tag ("" if none).
func attrOf(startTag, name string) string {
	m := regexp.MustCompile(`\s` + regexp.QuoteMeta(name) + `="([^"]*)"`).FindStringSubmatch(startTag)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestDashboardBrowser trains CartPole with the real binary and --http, lets
// headless Chromium run the dashboard's script, and checks on the DOM it
// leaves that the curves, the throughput, the replay fill, the runners and
// the member list were drawn from live data. It keeps a screenshot.
func TestDashboardBrowser(t *testing.T) {
	begin := time.Now()
	chrome := chromiumBinary(t)
	qf := qfleetBinary(t)
	addr := freeAddr(t)
	base := "http://" + addr
	// CartPole's returns are at most 500: with target 501 the run never
	// stops by itself; the test ends it (SIGINT) when it has seen enough.
	// Two runners on an Ape-X ε ladder: the runner table shows each rung.
	ladder := filepath.Join(t.TempDir(), "ladder.yaml")
	if err := os.WriteFile(ladder, []byte("runners: 2\nepsilon_ladder: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(qf, "dev", "--http", addr, "--max-steps", "5000000", "--target-return", "501",
		"--progress", "0", "--config", ladder, "--run-dir", filepath.Join(t.TempDir(), "run"))
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("qfleet dev did not stop within 30 s of SIGINT:\n%s", lastLines(stderr.String(), 20))
		}
	}()

	// Wait for what every part of the page draws: episodes (the curves),
	// learner updates (throughput), a runner's report on published weights
	// (its lag) and a few samples of history.
	eventually(t, 90*time.Second, 200*time.Millisecond, func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qfleet dev exited (%v) before the dashboard had data:\n%s", err, lastLines(stderr.String(), 20))
		default:
		}
		body, err := httpGet(base + "/status")
		if err != nil {
			return err
		}
		var st struct {
			Counters   map[string]uint64
			WeightsLag map[string]uint64 `json:"weights_lag"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if _, ok := st.WeightsLag["dev/runner-0"]; st.Counters["episodes"] < 5 || st.Counters["learner_updates"] == 0 || !ok {
			return fmt.Errorf("episodes %d, learner updates %d, weights lags %v", st.Counters["episodes"], st.Counters["learner_updates"], st.WeightsLag)
		}
		if body, err = httpGet(base + "/history"); err != nil {
			return err
		}
		if n := strings.Count(body, `"seq"`); n < 8 {
			return fmt.Errorf("%d history samples", n)
		}
		return nil
	})
	t.Logf("run has data after %.1fs", time.Since(begin).Seconds())

	dom := headless(t, chrome, base+"/", 4*time.Second, "--dump-dom")
	if n, _ := strconv.Atoi(attrOf(tagWith(dom, "body", "data-refreshes"), "data-refreshes")); n < 1 {
		t.Fatalf("the page's script never refreshed it (no data-refreshes on <body>): did app.js run and reach /status and /history?\n%.3000s", dom)
	}
	for _, id := range []string{"curve-steps", "curve-time", "throughput"} {
		tag := tagWith(dom, "canvas", `id="`+id+`"`)
		if n, _ := strconv.Atoi(attrOf(tag, "data-points")); n <= 0 {
			t.Errorf("chart %s drew no points: %q", id, tag)
		}
	}
	li := tagWith(dom, "li", `data-member="dev"`)
	if roles := attrOf(li, "data-roles"); roles != "runner,replay,learner,broadcaster" || attrOf(li, "data-state") != "alive" {
		t.Errorf("member list: want dev, alive, with its four roles; got %q", li)
	}
	if f, _ := strconv.ParseFloat(attrOf(tagWith(dom, "div", `id="replay-fill"`), "data-fill"), 64); f <= 0 || f > 1 {
		t.Errorf("replay fill = %v, want in (0, 1]: %q", f, tagWith(dom, "div", `id="replay-fill"`))
	}
	row := tagWith(dom, "tr", `data-runner="dev/runner-0"`)
	if _, err := strconv.ParseUint(attrOf(row, "data-lag"), 10, 64); err != nil {
		t.Errorf("runner row: want dev/runner-0 with a weights lag; got %q", row)
	}
	if i := strings.Index(dom, `data-runner="dev/runner-1"`); i < 0 {
		t.Errorf("no row for dev/runner-1")
	} else if rest := dom[i:]; !strings.Contains(rest[:strings.Index(rest+"</tr>", "</tr>")], "· 2/2") {
		t.Errorf("dev/runner-1's row does not show its ladder rung 2/2: %q", rest[:min(len(rest), 400)])
	}

	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, err := filepath.Abs(filepath.Join(dir, "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(shot)
	headless(t, chrome, base+"/", 4*time.Second, "--screenshot="+shot, "--window-size=1280,900")
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 20_000 {
		t.Errorf("screenshot %s: %v, %d bytes; want a PNG of the drawn page", shot, err, len(png))
	}
	t.Logf("screenshot: %s (%d bytes); the test took %.1fs", shot, len(png), time.Since(begin).Seconds())
}
