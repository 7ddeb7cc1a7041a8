package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/qfleet/qfleet/internal/testutil"
)

// TestDashboardBrowser trains CartPole with the real binary and --http, lets
// headless Chromium run the dashboard's script, and checks on the DOM it
// leaves that the curves, the throughput, the replay fill, the runners and
// the member list were drawn from live data. It keeps a screenshot.
func TestDashboardBrowser(t *testing.T) {
	begin := time.Now()
	chrome := chromiumBinary(t)
	qf := qfleetBinary(t)
	addr := testutil.FreeAddr(t)
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
	var stderr testutil.SyncBuffer
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
	testutil.CheckFor(t, 90*time.Second, 200*time.Millisecond, func() error {
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
	if roles := attrOf(li, "data-roles"); roles != "runner,replay,learner,broadcaster,evaluator" || attrOf(li, "data-state") != "alive" {
		t.Errorf("member list: want dev, alive, with its five roles (the evaluator: eval_every > 0 by default); got %q", li)
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

// The --pprof flag: in both commands' help, refused without --http, read
// from a config file, and on a real 'qfleet dev' run it serves the profiles.
func TestPprofFlag(t *testing.T) {
	for _, cmd := range []string{"dev", "node"} {
		_, stdout, _ := runQfleet(t, cmd, "--help")
		if !strings.Contains(stdout, "-pprof") || !strings.Contains(stdout, "/debug/pprof/") || !strings.Contains(stdout, "off by default") {
			t.Errorf("qfleet %s --help does not explain --pprof:\n%s", cmd, stdout)
		}
		if code, _, stderr := runQfleet(t, cmd, "--pprof"); code != 2 || !strings.Contains(stderr, "--http") {
			t.Errorf("qfleet %s --pprof without --http: exit %d, want 2 and a word about --http:\n%s", cmd, code, stderr)
		}
	}
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	cfgPath := testutil.WriteFile(t, dir, "pprof.yaml", "pprof: true\nhttp: "+addr+"\n")
	code, stdout, stderr := runQfleet(t, "config", "print", "--config", cfgPath)
	if code != 0 || !strings.Contains(stdout, "\npprof: true") {
		t.Errorf("config print --config with pprof: true: exit %d, stdout lacks pprof: true\n%s%s", code, stdout, stderr)
	}

	done := make(chan string, 1)
	var out, errOut testutil.SyncBuffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		code := run([]string{"dev", "--config", cfgPath, "--max-steps", "100000000", "--max-time", "3s", "--progress", "0",
			"--live", "never", "--run-dir", filepath.Join(dir, "run")}, &out, &errOut)
		done <- fmt.Sprintf("exit %d", code)
	}()
	defer wg.Wait()
	testutil.CheckFor(t, 20*time.Second, 25*time.Millisecond, func() error {
		select {
		case r := <-done:
			t.Fatalf("run ended (%s) before /debug/pprof/ answered:\n%s", r, errOut.String())
		default:
		}
		body, err := httpGet("http://" + addr + "/debug/pprof/")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "goroutine") {
			return fmt.Errorf("/debug/pprof/ lacks the goroutine profile:\n%s", body)
		}
		return nil
	})
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

// chromium is Debian's chromium, installed by the test when missing: a
// dashboard test that skipped without a browser would prove nothing.
var chromium struct {
	once sync.Once
	path string
	err  error
}

// TestDashboardBrowserRunnerNode: on a node with a runner and no learner
// (B, beside A's replay, learner and broadcaster, on loopback), the page
// draws that node's own runner: its learning curves, its weights with how
// old they are, its link both ways and its runner row.
func TestDashboardBrowserRunnerNode(t *testing.T) {
	chrome := chromiumBinary(t)
	qf := qfleetBinary(t)
	gossipA, httpB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	start := func(name string, args ...string) *testutil.SyncBuffer {
		args = append([]string{"node", "--name", name, "--remote-addr", testutil.FreeAddr(t), "--profile", "local", "--progress", "0"}, args...)
		cmd := exec.Command(qf, args...)
		var out testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's output:\n%s", name, lastLines(out.String(), 20))
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("%s did not stop within 30 s of SIGINT:\n%s", name, lastLines(out.String(), 20))
			}
		})
		return &out
	}
	// Target 501: the run never stops by itself; the cleanup ends it.
	outA := start("A", "--roles", "replay,learner,broadcaster", "--gossip-addr", gossipA, "--max-steps", "5000000", "--target-return", "501",
		"--run-dir", filepath.Join(t.TempDir(), "run"))
	// B joins once A's gossip listens (A prints its start line then).
	testutil.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(outA.String(), "qfleet node A:") {
			return fmt.Errorf("A has not started: %q", outA.String())
		}
		return nil
	})
	start("B", "--roles", "runner", "--gossip-addr", testutil.FreeAddr(t), "--join", gossipA, "--http", httpB)
	base := "http://" + httpB
	testutil.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		body, err := httpGet(base + "/status")
		if err != nil {
			return err
		}
		var st struct{ Counters map[string]uint64 }
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.Counters["episodes"] < 5 {
			return fmt.Errorf("B's own episodes: %d", st.Counters["episodes"])
		}
		if body, err = httpGet(base + "/history"); err != nil {
			return err
		}
		if n := strings.Count(body, `"seq"`); n < 8 {
			return fmt.Errorf("%d history samples", n)
		}
		return nil
	})
	dom := headless(t, chrome, base+"/", 4*time.Second, "--dump-dom")
	for _, id := range []string{"curve-steps", "curve-time", "throughput"} {
		if n, _ := strconv.Atoi(attrOf(tagWith(dom, "canvas", `id="`+id+`"`), "data-points")); n <= 0 {
			t.Errorf("B's chart %s drew no points", id)
		}
	}
	text := func(id string) string {
		m := regexp.MustCompile(`id="` + id + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
		if m == nil {
			return ""
		}
		return m[1]
	}
	if w := text("t-weights"); !strings.Contains(w, "behind") || !strings.Contains(w, "taken") {
		t.Errorf("B's weights tile does not say how old its weights are: %q", w)
	}
	if up, down := text("t-link"), text("t-link-sub"); !strings.HasPrefix(up, "↑ ") || !strings.HasPrefix(down, "↓ ") {
		t.Errorf("B's link tile: %q / %q, want bytes/s both ways", up, down)
	}
	if row := tagWith(dom, "tr", `data-runner="B/runner-0"`); row == "" {
		t.Errorf("no row for B's runner B/runner-0")
	}
}
