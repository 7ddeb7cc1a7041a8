package external

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/envs/internal/nprand"
	"github.com/qfleet/qfleet/internal/testutil"
)

// python is an interpreter with numpy and protobuf (testutil.Python).
func python(t testing.TB) string { return testutil.Python(t) }

// script is the command that runs a Python file of the repository's
// python/ directory or of testdata/ with args.
func script(t testing.TB, path string, args ...string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(append([]string{python(t), "'" + abs + "'"}, args...), " ")
}

const cartpolePy = "../../python/examples/cartpole.py"

// cmpLimit is the time limit of the comparisons with Go. A balanced pole
// amplifies a difference e-fold every ~8 steps, and Go's math.Sin/Cos differ
// from glibc's (Python's) by an ulp on a few arguments: over 500 steps that
// grows into a different trajectory, over 60 it stays far below float32's
// resolution, so observations can be compared bit for bit.
const cmpLimit = 60

// stateEnv is a Go env a Python port is checked against: CartPole's
// dynamics, whose state SetState sets.
type stateEnv interface {
	envs.Env
	envs.Stateful
}

// refEnvs steps Go envs as the Python adapter steps its envs: an env's
// first episode seeded, later ones reset from the same numpy stream
// (Gymnasium's reset without a seed), which the Go envs reproduce through
// nprand and SetState. observe is an env's observation after SetState.
type refEnvs[E stateEnv] struct {
	envs    []E
	rngs    []nprand.PCG64
	elapsed []int // steps since the episode began, for the time limit cmpLimit
	observe func(e E, state [4]float64) []float32
}

func newRefEnvs[E stateEnv](t *testing.T, seeds []int64, newEnv func() E, observe func(E, [4]float64) []float32) (*refEnvs[E], []float32) {
	r := &refEnvs[E]{observe: observe}
	var obs []float32
	for _, s := range seeds {
		e := newEnv()
		want := slices.Clone(e.Reset(s))
		r.envs = append(r.envs, e)
		r.rngs = append(r.rngs, nprand.New(uint64(s)))
		r.elapsed = append(r.elapsed, 0)
		o := r.start(t, len(r.envs)-1)
		if !slices.Equal(o, want) {
			t.Fatalf("seed %d: the reference's first observation differs from the env's Reset", s)
		}
		obs = append(obs, o...)
	}
	return r, obs
}

// newRefCartPole is refEnvs of Go CartPoles.
func newRefCartPole(t *testing.T, seeds []int64) (*refEnvs[*envs.CartPole], []float32) {
	return newRefEnvs(t, seeds, envs.NewCartPole, func(_ *envs.CartPole, s [4]float64) []float32 {
		return []float32{float32(s[0]), float32(s[1]), float32(s[2]), float32(s[3])}
	})
}

// start begins env i's next episode from its numpy stream.
func (r *refEnvs[E]) start(t *testing.T, i int) []float32 {
	var s [4]float64
	for j := range s {
		s[j] = r.rngs[i].Uniform(-0.05, 0.05)
	}
	r.envs[i].Reset(0) // the step counter and the termination bookkeeping
	r.elapsed[i] = 0
	if err := r.envs[i].SetState(s[:]); err != nil {
		t.Fatal(err)
	}
	return r.observe(r.envs[i], s)
}

// policy balances the pole on even envs (so that episodes reach the time
// limit) and acts at random on odd ones (short episodes, many resets).
func policy(rng *rand.Rand, i int, obs []float32) int32 {
	if i%2 == 1 || rng.IntN(10) == 0 {
		return int32(rng.IntN(2))
	}
	if obs[2]+0.5*obs[3] > 0 {
		return 1
	}
	return 0
}

// checkCartPole steps v, a Python CartPole with the time limit cmpLimit,
// and the Go reference with the same actions, and requires the same
// observations, rewards, flags and final observations, bit for bit.
func checkCartPole(t *testing.T, v envs.VecEnv, steps int) {
	t.Helper()
	n := v.Len()
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = int64(100 + 7*i)
	}
	ref, want := newRefCartPole(t, seeds)
	obs, err := v.Reset(seeds)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(obs, want) {
		t.Fatalf("reset: %v, Go %v", obs, want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	actions := make([]int32, n)
	cur := slices.Clone(obs)
	episodes, truncations := 0, 0
	for step := range steps {
		for i := range actions {
			actions[i] = policy(rng, i, cur[4*i:])
		}
		s, err := v.Step(actions)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for i, c := range ref.envs {
			o, r, term, trunc := c.Step(int(actions[i]))
			ref.elapsed[i]++
			trunc = trunc || ref.elapsed[i] >= cmpLimit
			got := s.Obs[4*i : 4*i+4]
			if r != s.Rewards[i] || term != s.Terminated[i] || trunc != s.Truncated[i] {
				t.Fatalf("step %d env %d: reward %v terminated %v truncated %v, Go %v %v %v", step, i, s.Rewards[i], s.Terminated[i], s.Truncated[i], r, term, trunc)
			}
			if term || trunc {
				if fin := s.Final[4*i : 4*i+4]; !slices.Equal(fin, o) {
					t.Fatalf("step %d env %d: final observation %v, Go %v", step, i, fin, o)
				}
				o = ref.start(t, i)
				episodes++
				if trunc {
					truncations++
				}
			}
			if !slices.Equal(got, o) {
				t.Fatalf("step %d env %d: observation %v, Go %v", step, i, got, o)
			}
		}
		copy(cur, s.Obs)
	}
	if episodes < n || truncations == 0 {
		t.Fatalf("%d episodes ended, %d at the time limit: the test should cover both ends", episodes, truncations)
	}
	t.Logf("%d envs, %d steps: %d episodes ended, %d truncated", n, steps, episodes, truncations)
}

// The Python CartPole's handshake gives Go's CartPole-v1 spec.
func TestCartPoleSpec(t *testing.T) {
	v, err := Start(context.Background(), Options{Command: script(t, cartpolePy), Envs: 1, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndCheck(t, v)
	if got, want := v.Spec(), envs.NewCartPole().Spec(); !sameSpec(got, want) {
		t.Fatalf("spec %+v, want %+v", got, want)
	}
}

// TestCartPoleSubprocessMatchesGo runs the Python CartPole through shared
// memory where this platform offers it, and through the pipes.
func TestCartPoleSubprocessMatchesGo(t *testing.T) {
	for _, c := range []struct {
		envs, workers int
		pipes         bool
	}{{1, 1, false}, {4, 1, false}, {5, 2, false}, {4, 1, true}} {
		t.Run(fmt.Sprintf("envs=%d,workers=%d,pipes=%v", c.envs, c.workers, c.pipes), func(t *testing.T) {
			var log testutil.SyncBuffer
			v, err := Start(context.Background(), Options{Command: script(t, cartpolePy, "--max-episode-steps", strconv.Itoa(cmpLimit)),
				Envs: c.envs, Workers: c.workers, Timeout: 20 * time.Second, Stderr: &log, NoSharedMemory: c.pipes})
			if err != nil {
				t.Fatal(err)
			}
			defer closeAndCheck(t, v)
			if v.Len() != c.envs || v.Spec().MaxEpisodeSteps != cmpLimit {
				t.Fatalf("%d envs, time limit %d", v.Len(), v.Spec().MaxEpisodeSteps)
			}
			wantShm := shmOffered && !c.pipes
			for _, w := range v.(*vec).ws {
				if w.shm != wantShm {
					t.Fatalf("%s: shared memory %v, want %v", w.name, w.shm, wantShm)
				}
			}
			checkCartPole(t, v, 400)
		})
	}
}

// startServer runs a Python env server on a free port and returns its
// address; it is killed at the end of the test.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--max-episode-steps", strconv.Itoa(cmpLimit)}, args...)
	argv, err := splitCommand(script(t, cartpolePy, args...))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`serving on (\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			t.Log("server: " + sc.Text())
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("the env server did not say where it listens")
		return ""
	}
}

func TestCartPoleAddressMatchesGo(t *testing.T) {
	addr := startServer(t, "--envs", "3")
	t.Run("server's envs", func(t *testing.T) {
		v, err := Dial(context.Background(), addr, Options{Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if v.Len() != 3 {
			t.Fatalf("%d envs, the server's default is 3", v.Len())
		}
		checkCartPole(t, v, 400)
	})
	t.Run("asked for 2", func(t *testing.T) {
		v, err := Dial(context.Background(), addr, Options{Envs: 2, ID: "PyCartPole", Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if v.Len() != 2 || v.Spec().ID != "PyCartPole" {
			t.Fatalf("%d envs with id %q, want 2 with Options.ID", v.Len(), v.Spec().ID)
		}
		checkCartPole(t, v, 200)
	})
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		"python3 my_env.py":              {"python3", "my_env.py"},
		"  a   'b c'  \"d 'e'\" f''g ''": {"a", "b c", "d 'e'", "fg", ""},
	} {
		got, err := splitCommand(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", "a 'b"} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) accepted", bad)
		}
	}
}
