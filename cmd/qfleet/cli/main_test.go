package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
)

// testutil.SyncBuffer is a bytes.Buffer safe to read while run writes to it from
// another goroutine.
// runQfleet calls run in-process and turns a panic into a test failure that
// names the arguments.
func runQfleet(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut testutil.SyncBuffer
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("qfleet %s panicked: %v", strings.Join(args, " "), p)
			}
		}()
		code = run(args, &out, &errOut)
	}()
	return code, out.String(), errOut.String()
}

func TestDevSmoke(t *testing.T) {
	dir := t.TempDir()
	sumPath := filepath.Join(dir, "summary.json")
	ckptDir := filepath.Join(dir, "ckpt")
	code, stdout, stderr := runQfleet(t, "dev", "--max-steps", "2000", "--progress", "0",
		"--summary", sumPath, "--checkpoint-dir", ckptDir, "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "CartPole-v1 seed=3:") {
		t.Errorf("stdout lacks the result line for seed 3: %q", stdout)
	}
	if !strings.Contains(stderr, "net 4 → 64 → 64 → 2, MLP, layer_norm\n") {
		t.Errorf("the start line does not show the network as 4 → 64 → 64 → 2, MLP, layer_norm:\n%s", stderr)
	}

	data, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, data)
	}
	for _, k := range qfleet.SummaryKeys {
		if _, ok := raw[k]; !ok {
			t.Errorf("summary lacks key %q:\n%s", k, data)
		}
	}
	var s struct {
		Env              string   `json:"env"`
		Seed             uint64   `json:"seed"`
		EnvSteps         uint64   `json:"env_steps"`
		Episodes         uint64   `json:"episodes"`
		LearnerUpdates   uint64   `json:"learner_updates"`
		WallSeconds      float64  `json:"wall_seconds"`
		Solved           *bool    `json:"solved"`
		SolvedAtEnvSteps *uint64  `json:"solved_at_env_steps"`
		SolvedAtSeconds  *float64 `json:"solved_at_seconds"`
		MeanReturn100    *float64 `json:"mean_return_100"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("summary has a key of the wrong type: %v\n%s", err, data)
	}
	if s.Env != "CartPole-v1" || s.Seed != 3 {
		t.Errorf("env, seed = %q, %d; want CartPole-v1, 3", s.Env, s.Seed)
	}
	if s.EnvSteps < 2000 {
		t.Errorf("env_steps = %d, want >= 2000", s.EnvSteps)
	}
	if s.Episodes == 0 || s.LearnerUpdates == 0 {
		t.Errorf("episodes = %d, learner_updates = %d; want both > 0", s.Episodes, s.LearnerUpdates)
	}
	if !(s.WallSeconds > 0) {
		t.Errorf("wall_seconds = %v, want > 0", s.WallSeconds)
	}
	if s.Solved == nil || *s.Solved {
		t.Errorf("solved = %v, want false after 2000 steps", s.Solved)
	}
	if s.SolvedAtEnvSteps == nil || *s.SolvedAtEnvSteps != 0 || s.SolvedAtSeconds == nil || *s.SolvedAtSeconds != 0 {
		t.Errorf("solved_at_env_steps, solved_at_seconds = %v, %v; want 0, 0 for an unsolved run", s.SolvedAtEnvSteps, s.SolvedAtSeconds)
	}

	ckpt, err := actors.ReadCheckpoint(ckptDir)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if ckpt.Env != "CartPole-v1" {
		t.Errorf("checkpoint env = %q", ckpt.Env)
	}
	if len(ckpt.Layers) < 2 || ckpt.Layers[0] != 4 || ckpt.Layers[len(ckpt.Layers)-1] != 2 {
		t.Errorf("checkpoint layers = %v, want 4 inputs ... 2 outputs", ckpt.Layers)
	}
	nParams := 0
	for i := 1; i < len(ckpt.Layers); i++ {
		nParams += int(ckpt.Layers[i-1]+1) * int(ckpt.Layers[i])
	}
	if len(ckpt.Online) == 0 || len(ckpt.Online) != nParams || len(ckpt.Target) != nParams {
		t.Errorf("checkpoint has %d online and %d target params, want %d for layers %v", len(ckpt.Online), len(ckpt.Target), nParams, ckpt.Layers)
	}
	// The summary's count is taken before the checkpoint is, and the learner
	// only reports it at publications: the checkpoint's is never smaller.
	if ckpt.LearnerUpdates == 0 || ckpt.LearnerUpdates < s.LearnerUpdates {
		t.Errorf("checkpoint learner_updates = %d, summary %d; want > 0 and >= the summary's", ckpt.LearnerUpdates, s.LearnerUpdates)
	}
}

// oneLine checks that stderr is a single line that contains every want.
func oneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	msg := strings.TrimRight(stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("stderr is not one line:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("stderr does not name %q:\n%s", w, stderr)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-config.yaml")
	unknownKey := testutil.WriteFile(t, dir, "unknown-key.yaml", "seed: 2\nbatch_sise: 32\n")
	badValue := testutil.WriteFile(t, dir, "bad-value.yaml", "batch_size: 0\n")
	badType := testutil.WriteFile(t, dir, "bad-type.yaml", "seed: 2\nbatch_size: abc\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	// A short, quiet run in case a bad input were accepted by mistake.
	quick := []string{"--max-steps", "10", "--progress", "0"}

	cases := []struct {
		name     string
		args     []string
		code     int // -1: any non-zero
		oneLine  bool
		mentions []string
	}{
		{"unknown env", []string{"dev", "--env", "NoSuchEnv-v9"}, 2, true, []string{"NoSuchEnv-v9"}},
		{"unknown flag", []string{"dev", "--no-such-flag"}, 2, false, []string{"no-such-flag"}},
		{"positional arg", []string{"dev", "stray"}, 2, true, []string{"stray"}},
		{"missing config", []string{"dev", "--config", missing}, 2, true, []string{missing}},
		{"config unknown key", []string{"dev", "--config", unknownKey}, 2, true, []string{"batch_sise"}},
		{"config invalid value", []string{"dev", "--config", badValue}, 2, true, []string{"batch_size"}},
		{"config value of the wrong type", []string{"dev", "--config", badType}, 2, true, []string{"batch_size", "abc"}},
		{"http port in use", []string{"dev", "--http", busyAddr}, -1, true, []string{busyAddr}},
		{"unwritable summary", []string{"dev", "--summary", filepath.Join(dir, "no-such-dir", "s.json")}, -1, true, []string{"no-such-dir"}},
		{"no args", nil, 2, false, []string{"Usage"}},
		{"unknown command", []string{"frobnicate"}, 2, true, []string{"frobnicate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if len(args) > 0 && args[0] == "dev" {
				args = append(append([]string{}, args...), quick...)
			}
			code, stdout, stderr := runQfleet(t, args...)
			if c.code == -1 && code == 0 || c.code != -1 && code != c.code {
				t.Errorf("exit %d, want %s", code, map[bool]string{true: "non-zero", false: strconv.Itoa(c.code)}[c.code == -1])
			}
			if strings.Contains(stdout, "solved=") {
				t.Errorf("a training run happened: %q", stdout)
			}
			if c.oneLine {
				oneLine(t, stderr, c.mentions...)
			} else {
				for _, w := range c.mentions {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr does not contain %q:\n%s", w, stderr)
					}
				}
			}
		})
	}
}

func TestDevHelp(t *testing.T) {
	for _, args := range [][]string{{"dev", "--help"}, {"help", "dev"}} {
		code, stdout, stderr := runQfleet(t, args...)
		if code != 0 {
			t.Errorf("qfleet %v: exit %d, want 0", args, code)
		}
		// The flag list goes to stderr today (flag's convention); accept either.
		out := stdout + stderr
		for _, f := range []string{"-env", "-seed", "-runners", "-max-steps", "-target-return", "-config", "-http", "-checkpoint-dir", "-summary", "-run-dir", "-max-memory"} {
			if !strings.Contains(out, "  "+f+" ") {
				t.Errorf("qfleet %v: help lacks flag %s:\n%s", args, f, out)
			}
		}
		// Networks as people read them, not a Go struct.
		for _, n := range []string{"CartPole-v1                4 → 64 → 64 → 2, MLP", "10×10×4 → 16@3×3 → 128 → 3, conv"} {
			if !strings.Contains(out, n) {
				t.Errorf("qfleet %v: help lacks the network line %q", args, n)
			}
		}
	}
	code, stdout, _ := runQfleet(t, "help")
	if code != 0 || !strings.Contains(stdout, "qfleet dev") || !strings.Contains(stdout, "qfleet report") {
		t.Errorf("qfleet help: exit %d, stdout %q; want 0 and both commands listed", code, stdout)
	}
}

// devMetrics are the metric names a dev run must export. qfleet_wire_bytes_total
// is left out: it is a CounterVec, and dev mode puts nothing on the wire, so it
// has no samples and Prometheus does not expose it (TestDevHTTP checks that).
// So is qfleet_episode_return_mean100: absent until an episode played at
// ε ≤ 0.05 ends, after ~9.6k env steps, later than this run's end.
var devMetrics = []string{
	"qfleet_env_steps_total", "qfleet_episodes_total", "qfleet_runner_env_steps_total", "qfleet_runner_episodes_total",
	"qfleet_episode_return_mean100_all", "qfleet_replay_size", "qfleet_replay_inserted_total",
	"qfleet_experience_dropped_total", "qfleet_learner_updates_total", "qfleet_weights_term", "qfleet_weights_publication",
	"qfleet_cluster_members",
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func TestDevHTTP(t *testing.T) {
	addr := testutil.FreeAddr(t)
	base := "http://" + addr
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	// 8000 steps take ~5 s alone on 2 cores: long enough to poll, short
	// enough to end by itself (run has no cancel hook).
	go func() {
		var out, errOut testutil.SyncBuffer
		code := run([]string{"dev", "--max-steps", "8000", "--progress", "0", "--http", addr}, &out, &errOut)
		done <- result{code, out.String(), errOut.String()}
	}()
	finished := func() *result {
		select {
		case r := <-done:
			return &r
		default:
			return nil
		}
	}

	var metrics string
	testutil.CheckFor(t, 20*time.Second, 25*time.Millisecond, func() error {
		if r := finished(); r != nil {
			t.Fatalf("run ended (exit %d) before /metrics was complete:\n%s", r.code, r.stderr)
		}
		body, err := httpGet(base + "/metrics")
		if err != nil {
			return err
		}
		samples := testutil.PromSamples(body)
		for _, name := range devMetrics {
			if _, ok := samples[name]; !ok {
				return fmt.Errorf("/metrics lacks %s", name)
			}
		}
		if samples["qfleet_env_steps_total"] <= 0 {
			return fmt.Errorf("qfleet_env_steps_total = %v", samples["qfleet_env_steps_total"])
		}
		metrics = body
		return nil
	})
	if strings.Contains(metrics, "qfleet_wire_bytes_total") {
		t.Errorf("qfleet_wire_bytes_total is exposed in dev mode; update devMetrics and this test")
	} else {
		t.Log("qfleet_wire_bytes_total: no samples in dev mode, so /metrics does not show it")
	}

	var st struct {
		Node           string            `json:"node"`
		Roles          []string          `json:"roles"`
		Members        []string          `json:"members"`
		WeightsVersion *uint64           `json:"weights_version"`
		Counters       map[string]uint64 `json:"counters"`
	}
	body, err := httpGet(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	if st.Node == "" || len(st.Members) == 0 || st.WeightsVersion == nil {
		t.Errorf("/status lacks node, members or weights_version: %s", body)
	}
	for _, r := range []string{"runner", "replay", "learner", "broadcaster"} {
		if !strings.Contains(strings.Join(st.Roles, ","), r) {
			t.Errorf("/status roles %v lack %s", st.Roles, r)
		}
	}
	if st.Counters["env_steps"] == 0 {
		t.Errorf("/status counters.env_steps = 0 after /metrics showed steps: %s", body)
	}
	for _, k := range []string{"episodes", "learner_updates"} {
		if _, ok := st.Counters[k]; !ok {
			t.Errorf("/status counters lack %s: %s", k, body)
		}
	}
	page, err := httpGet(base + "/")
	if err != nil || !strings.Contains(page, "<html") {
		t.Errorf("GET /: %v %.80q", err, page)
	}

	var r result
	select {
	case r = <-done:
	case <-time.After(45 * time.Second):
		t.Fatal("dev --max-steps 8000 did not end within 45 s")
	}
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	if _, err := httpGet(base + "/status"); err == nil {
		t.Errorf("the HTTP server still answers after run returned")
	}
}

// --max-time ends a run like --max-steps does: exit 0, a summary, and the
// checkpoint when asked for.
func TestDevMaxTime(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	code, stdout, stderr := runQfleet(t, "dev", "--max-steps", "100000000", "--max-time", "3s", "--seed", "4", "--run-dir", dir+"/run")
	wall := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "--max-time 3s reached") {
		t.Errorf("no notice of the time limit:\n%s", stderr)
	}
	if wall < 3*time.Second || wall > 30*time.Second {
		t.Errorf("run took %v with --max-time 3s", wall)
	}
	var sum struct {
		EnvSteps    uint64  `json:"env_steps"`
		WallSeconds float64 `json:"wall_seconds"`
	}
	data, err := os.ReadFile(dir + "/run/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.EnvSteps == 0 || sum.WallSeconds < 3 || sum.WallSeconds > 10 {
		t.Errorf("summary %+v: want some env steps in 3–10 s", sum)
	}
	if !strings.Contains(stdout, "solved=false") {
		t.Errorf("result line: %s", stdout)
	}
	if code, _, stderr := runQfleet(t, "dev", "--max-time", "-1s"); code != 2 || !strings.Contains(stderr, "--max-time") {
		t.Errorf("--max-time -1s: exit %d, %s", code, stderr)
	}
}
