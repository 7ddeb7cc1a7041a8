package cli

import (
	"encoding/json"
	"fmt"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs/render"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/internal/testutil/testckpt"
	"github.com/qfleet/qfleet/messages"
)

// trainedRun is a tiny CartPole run directory (config.yaml, checkpoints/),
// trained once for every eval test; it lives under runsRoot, which
// TestMain removes at the end.
var trainedRun = struct {
	once sync.Once
	dir  string
	err  string
}{}

func cartPoleRun(t *testing.T) string {
	t.Helper()
	trainedRun.once.Do(func() {
		dir := filepath.Join(qfleet.RunsRoot, "eval-cartpole")
		code, _, stderr := runQfleet(t, "dev", "--max-steps", "3000", "--progress", "0", "--seed", "2",
			"--run-dir", dir, "--checkpoint-dir", filepath.Join(dir, qfleet.RunCheckpointsDir))
		if code != 0 {
			trainedRun.err = fmt.Sprintf("training run: exit %d\n%s", code, stderr)
			return
		}
		trainedRun.dir = dir
	})
	if trainedRun.err != "" {
		t.Fatal(trainedRun.err)
	}
	return trainedRun.dir
}

var (
	episodeLine = regexp.MustCompile(`^episode (\d+)/(\d+): seed=(\d+) return=(\S+) length=(\d+)( truncated)?$`)
	summaryLine = regexp.MustCompile(`^(\S+): (\d+) episodes: mean return (\S+) std (\S+) min (\S+) max (\S+) mean length (\S+)$`)
)

// parseEvalText reads eval's text output back into an qfleet.EvalResult.
func parseEvalText(t *testing.T, stdout string) qfleet.EvalResult {
	t.Helper()
	var r qfleet.EvalResult
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	for i, l := range lines {
		if m := episodeLine.FindStringSubmatch(l); m != nil {
			seed, _ := strconv.ParseInt(m[3], 10, 64)
			ret, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				t.Fatalf("episode line %q: return: %v", l, err)
			}
			n, _ := strconv.Atoi(m[5])
			r.Episodes = append(r.Episodes, qfleet.Episode{Seed: seed, Return: ret, Length: n, Truncated: m[6] != ""})
			continue
		}
		m := summaryLine.FindStringSubmatch(l)
		if m == nil || i != len(lines)-1 {
			t.Fatalf("line %q is neither an episode line nor the last line's summary:\n%s", l, stdout)
		}
		r.Env = m[1]
		if k, _ := strconv.Atoi(m[2]); k != len(r.Episodes) {
			t.Errorf("summary counts %d episodes, %d lines above it", k, len(r.Episodes))
		}
		for j, p := range []*float64{&r.MeanReturn, &r.StdReturn, &r.MinReturn, &r.MaxReturn, &r.MeanLength} {
			v, err := strconv.ParseFloat(m[3+j], 64)
			if err != nil {
				t.Fatalf("summary %q: %v", l, err)
			}
			*p = v
		}
	}
	if r.Env == "" {
		t.Fatalf("no summary line:\n%s", stdout)
	}
	return r
}

// checkStats checks the summary against the episodes it summarizes.
func checkStats(t *testing.T, r qfleet.EvalResult, tol float64) {
	t.Helper()
	var want qfleet.EvalResult
	want.Episodes = r.Episodes
	want.Summarize()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mean", r.MeanReturn, want.MeanReturn}, {"std", r.StdReturn, want.StdReturn},
		{"min", r.MinReturn, want.MinReturn}, {"max", r.MaxReturn, want.MaxReturn},
		{"mean length", r.MeanLength, want.MeanLength},
	} {
		if math.Abs(c.got-c.want) > tol {
			t.Errorf("summary %s = %v, the episodes give %v", c.name, c.got, c.want)
		}
	}
}

func TestEvalCartPole(t *testing.T) {
	run := cartPoleRun(t)
	ckptDir := filepath.Join(run, qfleet.RunCheckpointsDir)

	code, stdout, stderr := runQfleet(t, "eval", "--checkpoint", run, "--episodes", "3", "--seed", "5")
	if code != 0 {
		t.Fatalf("eval of the run directory: exit %d\n%s", code, stderr)
	}
	text := parseEvalText(t, stdout)
	if text.Env != "CartPole-v1" || len(text.Episodes) != 3 {
		t.Fatalf("env %q, %d episodes; want CartPole-v1, 3:\n%s", text.Env, len(text.Episodes), stdout)
	}
	for i, e := range text.Episodes {
		if math.IsNaN(e.Return) || math.IsInf(e.Return, 0) || e.Return < 1 || e.Length < 1 || e.Length > 500 {
			t.Errorf("episode %d: return %v, length %d; want a finite return >= 1 and 1..500 steps", i+1, e.Return, e.Length)
		}
		if e.Return != float64(e.Length) {
			t.Errorf("episode %d: return %v over %d steps; CartPole pays 1 a step", i+1, e.Return, e.Length)
		}
	}
	checkStats(t, text, 0.01)
	if want := filepath.Join(run, qfleet.RunConfigFile); !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say the net came from %s:\n%s", want, stderr)
	}

	// The checkpoint directory itself, the config found in its parent; the
	// same seed plays the same episodes.
	code, stdout, stderr = runQfleet(t, "eval", "--checkpoint", ckptDir, "--episodes", "3", "--seed", "5", "--json")
	if code != 0 {
		t.Fatalf("eval of the checkpoint directory: exit %d\n%s", code, stderr)
	}
	var js qfleet.EvalResult
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if js.Env != "CartPole-v1" || js.Checkpoint != ckptDir || js.Config != filepath.Join(run, qfleet.RunConfigFile) || js.LearnerUpdates == 0 {
		t.Errorf("--json: env %q checkpoint %q config %q updates %d; want CartPole-v1, %s, its run's config.yaml, > 0",
			js.Env, js.Checkpoint, js.Config, js.LearnerUpdates, ckptDir)
	}
	if len(js.Episodes) != 3 {
		t.Fatalf("--json has %d episodes, want 3", len(js.Episodes))
	}
	for i := range js.Episodes {
		if js.Episodes[i] != text.Episodes[i] {
			t.Errorf("episode %d: %+v with --json, %+v without; the same seed should play the same episode", i+1, js.Episodes[i], text.Episodes[i])
		}
	}
	checkStats(t, js, 1e-9)

	// Another seed starts other episodes.
	_, stdout, _ = runQfleet(t, "eval", "--checkpoint", run, "--episodes", "1", "--seed", "6")
	if other := parseEvalText(t, stdout); other.Episodes[0].Seed == text.Episodes[0].Seed {
		t.Errorf("--seed 6 and --seed 5 start with the same episode seed %d", other.Episodes[0].Seed)
	}

	// A checkpoint away from its run: the env's defaults, which this run used.
	alone := t.TempDir()
	copyFile(t, filepath.Join(ckptDir, actors.CheckpointFile), filepath.Join(alone, actors.CheckpointFile))
	code, _, stderr = runQfleet(t, "eval", "--checkpoint", alone, "--episodes", "1")
	if code != 0 || !strings.Contains(stderr, "the defaults for CartPole-v1") {
		t.Errorf("eval of a lone checkpoint: exit %d, want 0 with the defaults:\n%s", code, stderr)
	}

	// A config that gives another net is refused, naming both shapes.
	small := testutil.WriteFile(t, t.TempDir(), "small.yaml", "hidden: [32]\n")
	code, stdout, stderr = runQfleet(t, "eval", "--checkpoint", run, "--episodes", "1", "--config", small)
	if code == 0 || stdout != "" {
		t.Errorf("a net of another shape: exit %d, stdout %q; want non-zero, nothing played", code, stdout)
	}
	oneLine(t, stderr, "does not fit", small, "hidden [32]", "[4 64 64 2]", "[4 32 2]")
}

func TestEvalRenderCartPole(t *testing.T) {
	run := cartPoleRun(t)
	out := filepath.Join(t.TempDir(), "cartpole.gif")
	code, stdout, stderr := runQfleet(t, "eval", "--checkpoint", run, "--episodes", "2", "--render", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	r := parseEvalText(t, stdout)
	g := decodeGIF(t, out)
	want := min(r.Episodes[0].Length+1, render.MaxFrames)
	if len(g.Image) != want {
		t.Errorf("%d frames, want %d (episode 1 has %d steps)", len(g.Image), want, r.Episodes[0].Length)
	}
	if !strings.Contains(stderr, fmt.Sprintf("wrote %d frames", len(g.Image))) {
		t.Errorf("stderr does not report the %d frames:\n%s", len(g.Image), stderr)
	}
	checkFrames(t, g, 300, 200)
}

// TestEvalMinAtar evaluates an untrained conv net on Breakout: the
// checkpoint path for image observations, and a grid GIF.
func TestEvalMinAtar(t *testing.T) {
	const id = "MinAtar/Breakout-v1"
	dir := t.TempDir()
	testckpt.WriteRandom(t, dir, id, actors.DefaultConfigFor(id))
	out := filepath.Join(dir, "breakout.gif")
	code, stdout, stderr := runQfleet(t, "eval", "--checkpoint", dir, "--episodes", "2", "--render", out, "--max-episode-steps", "300")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	r := parseEvalText(t, stdout)
	if len(r.Episodes) != 2 || r.Episodes[0].Length < 1 || r.Episodes[0].Length > 300 {
		t.Fatalf("episodes %+v; want 2 of 1..300 steps", r.Episodes)
	}
	g := decodeGIF(t, out)
	if len(g.Image) != r.Episodes[0].Length+1 {
		t.Errorf("%d frames, want %d", len(g.Image), r.Episodes[0].Length+1)
	}
	checkFrames(t, g, 10*render.GridCell, 10*render.GridCell)

	// The same checkpoint read as a plain MLP (no conv torso) has other
	// parameters: refused.
	mlp := testutil.WriteFile(t, dir, "mlp.yaml", "conv_filters: 0\n")
	code, _, stderr = runQfleet(t, "eval", "--checkpoint", dir, "--config", mlp)
	if code == 0 {
		t.Errorf("conv checkpoint read as an MLP: exit 0")
	}
	oneLine(t, stderr, "does not fit", "conv_filters 0", "parameters")
}

func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-run")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown-env")
	if err := actors.WriteCheckpoint(unknown, &messages.Checkpoint{Env: "NoSuchEnv-v9", Online: []float32{1}}); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt")
	testutil.WriteFile(t, mkdir(t, corrupt), actors.CheckpointFile, "QFC1 not a checkpoint")
	ok := filepath.Join(dir, "ok")
	testckpt.WriteRandom(t, ok, "CartPole-v1", actors.DefaultConfigFor("CartPole-v1"))

	cases := []struct {
		name     string
		args     []string
		code     int // -1: any non-zero
		mentions []string
	}{
		{"missing dir", []string{"--checkpoint", missing}, 2, []string{missing}},
		{"no checkpoint", []string{"--checkpoint", empty}, -1, []string{empty, "no checkpoint"}},
		{"corrupt checkpoint", []string{"--checkpoint", corrupt}, -1, []string{"corrupt", corrupt}},
		{"unknown env", []string{"--checkpoint", unknown}, -1, []string{"NoSuchEnv-v9"}},
		{"no --checkpoint", nil, 2, []string{"--checkpoint"}},
		{"zero episodes", []string{"--checkpoint", ok, "--episodes", "0"}, 2, []string{"--episodes"}},
		{"epsilon out of range", []string{"--checkpoint", ok, "--epsilon", "1.5"}, 2, []string{"--epsilon", "1.5"}},
		{"render not a gif", []string{"--checkpoint", ok, "--render", filepath.Join(dir, "x.png")}, 2, []string{"x.png", "gif"}},
		{"render into a missing dir", []string{"--checkpoint", ok, "--render", filepath.Join(missing, "x.gif")}, 2, []string{missing}},
		{"stray argument", []string{"--checkpoint", ok, "stray"}, 2, []string{"stray"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runQfleet(t, append([]string{"eval"}, c.args...)...)
			if c.code == -1 && code == 0 || c.code != -1 && code != c.code {
				t.Errorf("exit %d, want %s", code, map[bool]string{true: "non-zero", false: strconv.Itoa(c.code)}[c.code == -1])
			}
			if stdout != "" {
				t.Errorf("episodes were played: %q", stdout)
			}
			oneLine(t, stderr, c.mentions...)
		})
	}
	// The one that is fine is fine: the failures above are the inputs'.
	if code, _, stderr := runQfleet(t, "eval", "--checkpoint", ok, "--episodes", "1"); code != 0 {
		t.Errorf("eval of %s: exit %d\n%s", ok, code, stderr)
	}
}

func TestEvalHelp(t *testing.T) {
	for _, args := range [][]string{{"eval", "--help"}, {"help", "eval"}} {
		code, stdout, stderr := runQfleet(t, args...)
		out := stdout + stderr
		if code != 0 {
			t.Errorf("qfleet %v: exit %d, want 0", args, code)
		}
		for _, f := range []string{"-checkpoint", "-episodes", "-seed", "-epsilon", "-render", "-config", "-json", "-max-episode-steps"} {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
				t.Errorf("qfleet %v: help lacks flag %s:\n%s", args, f, out)
			}
		}
	}
	if _, stdout, _ := runQfleet(t, "help"); !strings.Contains(stdout, "qfleet eval") {
		t.Errorf("qfleet help does not list eval:\n%s", stdout)
	}
}

// decodeGIF decodes an animated GIF and checks its frame delays.
func decodeGIF(t *testing.T, path string) *gif.GIF {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i, d := range g.Delay {
		if d != render.FrameDelay {
			t.Fatalf("frame %d: delay %d, want %d", i, d, render.FrameDelay)
		}
	}
	return g
}

// checkFrames checks the GIF's size and that it moves: not all frames alike.
func checkFrames(t *testing.T, g *gif.GIF, w, h int) {
	t.Helper()
	if g.Config.Width != w || g.Config.Height != h {
		t.Errorf("GIF is %d×%d, want %d×%d", g.Config.Width, g.Config.Height, w, h)
	}
	differ := false
	for _, im := range g.Image[1:] {
		if im.Bounds() != g.Image[0].Bounds() || string(im.Pix) != string(g.Image[0].Pix) {
			differ = true
			break
		}
	}
	if !differ {
		t.Errorf("all %d frames are identical", len(g.Image))
	}
}
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
