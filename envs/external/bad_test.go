package external

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/testutil"
)

const badPy = "testdata/bad_env.py"

// alive says whether pid is a live process (a zombie counts as ended).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// closeAndCheck closes v and requires that none of its worker processes
// is left.
func closeAndCheck(t *testing.T, v envs.VecEnv) {
	t.Helper()
	var pids []int
	if x, ok := v.(*vec); ok {
		for _, w := range x.ws {
			if w.proc != nil {
				pids = append(pids, w.proc.cmd.Process.Pid)
			}
		}
	}
	start := time.Now()
	if err := v.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("a second close: %v", err)
	}
	if d := time.Since(start); d > closeGrace+2*time.Second {
		t.Errorf("close took %v", d)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("worker process %d still runs after Close", pid)
		}
	}
	if _, err := v.Step(make([]int32, v.Len())); err == nil {
		t.Error("Step after Close succeeded")
	}
}

// runBad starts a bad env of 2 envs and steps it until the first error.
func runBad(t *testing.T, mode string, timeout time.Duration, log *testutil.SyncBuffer) (envs.VecEnv, error) {
	v, err := Start(context.Background(), Options{Command: script(t, badPy, mode), Envs: 2, Timeout: timeout, Stderr: log})
	if err != nil {
		return nil, err
	}
	if _, err := v.Reset([]int64{1, 2}); err != nil {
		return v, err
	}
	for range 10 {
		if _, err := v.Step([]int32{0, 1}); err != nil {
			return v, err
		}
	}
	return v, nil
}

func TestBadEnvs(t *testing.T) {
	for _, c := range []struct {
		mode    string
		timeout time.Duration
		want    []string // in the error
	}{
		{"raise_make", 0, []string{"handshake", "the env failed", "Traceback", "RuntimeError: cannot make the env"}},
		{"exit_start", 0, []string{"the process exited (exit status 5)", "failing before serve"}},
		{"version", 0, []string{"handshake", "does not speak protocol version 1", "this server 2"}},
		{"raise_step", 0, []string{"step", "Traceback", "ValueError: boom at step 3"}},
		{"exit_step", 0, []string{"step", "the process exited (exit status 3)", "about to exit"}},
		{"hang_step", 1500 * time.Millisecond, []string{"step", "no reply within 1.5s; killed the process"}},
		{"wrong_shape", 0, []string{"step", "observation of shape (3,), its space says (4,)"}},
		{"nan_obs", 0, []string{"step: observations: value NaN at env 0 index 1 is not a float32 observation value"}},
		{"nan_reward", 0, []string{"step: reward NaN for env 0"}},
		{"binary2", 0, []string{"step: observations: value 2 at env 0 index 0 is not a binary observation value"}},
	} {
		t.Run(c.mode, func(t *testing.T) {
			timeout := c.timeout
			if timeout == 0 {
				timeout = 20 * time.Second
			}
			var log testutil.SyncBuffer
			start := time.Now()
			v, err := runBad(t, c.mode, timeout, &log)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q", w)
				}
			}
			if !strings.Contains(err.Error(), "env worker 0 (pid ") {
				t.Error("the error does not name the worker")
			}
			if d := time.Since(start); d > timeout+10*time.Second {
				t.Errorf("the error took %v", d)
			}
			if v == nil {
				return // Start failed and cleaned up itself
			}
			if _, again := v.Step([]int32{0, 0}); !errors.Is(again, err) && (again == nil || again.Error() != err.Error()) {
				t.Errorf("a step after the failure: %v, want the failure again", again)
			}
			closeAndCheck(t, v)
		})
	}
}

// An env may print on stdout and stderr as it likes: the protocol has
// descriptors of its own, and the lines reach the log.
func TestPrintingEnvWorks(t *testing.T) {
	var log testutil.SyncBuffer
	v, err := runBad(t, "prints", 20*time.Second, &log)
	if err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, v)
	for _, w := range []string{"env worker 0: stdout noise 1", "stdout noise 5", "env worker 0: stderr noise 5", "env worker 0: raw bytes on fd 1 without a newline stdout noise 2"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("the log lacks %q:\n%s", w, log.String())
		}
	}
}

// Observations that are not float32 arrays of their own (float64 arrays,
// lists, strided views) reach Go with every value: the adapter's fast
// path for contiguous float32 rows must fall back for the others.
func TestMixedObservationRows(t *testing.T) {
	v, err := Start(context.Background(), Options{Command: script(t, badPy, "mixed_rows"), Envs: 2, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Reset([]int64{1, 2}); err != nil {
		t.Fatal(err)
	}
	want := func(step int) []float32 { // the env's row at its step t: t + index/4
		row := make([]float32, 4)
		for i := range row {
			row[i] = float32(step) + float32(i)/4
		}
		return row
	}
	for k := 1; k <= 12; k++ {
		s, err := v.Step([]int32{0, 1})
		if err != nil {
			t.Fatalf("step %d: %v", k, err)
		}
		step := (k-1)%5 + 1 // the env's t: its episodes end at t = 5
		for e := range 2 {
			got, row := s.Obs[4*e:4*e+4], want(step)
			if s.Done(e) {
				got, row = s.Final[4*e:4*e+4], want(5)
			}
			if fmt.Sprint(got) != fmt.Sprint(row) {
				t.Fatalf("step %d env %d: observation %v, want %v", k, e, got, row)
			}
		}
	}
}

// Close also ends what an env started (its process group).
func TestCloseEndsEnvChildren(t *testing.T) {
	var log testutil.SyncBuffer
	v, err := runBad(t, "spawn", 20*time.Second, &log)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		pids = pids[:0]
		for _, m := range regexp.MustCompile(`child pid (\d+)`).FindAllStringSubmatch(log.String(), -1) {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
		if len(pids) < 2 {
			return fmt.Errorf("%d child pids in the log", len(pids))
		}
		return nil
	})
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("the env's child %d is not running before Close", pid)
		}
	}
	closeAndCheck(t, v)
	// SIGKILL is delivered by the time kill returns, but the process may
	// take a moment to be scheduled and die.
	testutil.CheckFor(t, 2*time.Second, 10*time.Millisecond, func() error {
		for _, pid := range pids {
			if alive(pid) {
				return fmt.Errorf("the env's child %d still runs after Close", pid)
			}
		}
		return nil
	})
}

func TestStartChecksOptions(t *testing.T) {
	for _, o := range []Options{
		{Command: "", Envs: 1},
		{Command: "x", Envs: 0},
		{Command: "x", Envs: 2, Workers: 3},
		{Command: "/nonexistent/program", Envs: 1},
	} {
		if v, err := Start(context.Background(), o); err == nil {
			v.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}
