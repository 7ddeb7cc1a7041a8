package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// Output to a pipe or file (not a terminal) gets no live line by default.
func TestLiveQuietWhenNotTerminal(t *testing.T) {
	code, stdout, stderr := runQfleet(t, "dev", "--max-steps", "6000", "--seed", "3", "--run-dir", t.TempDir()+"/run")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "eta ") || strings.Contains(stderr, "█") {
		t.Errorf("live line drawn on a non-terminal:\n%q", stderr)
	}
	if !strings.Contains(stdout, "env_steps=") {
		t.Errorf("no result line on stdout:\n%s", stdout)
	}
}

// On a real terminal (a pty made by script(1)) the live line is drawn and
// redrawn in place, and erased before the result.
func TestLiveOnTerminal(t *testing.T) {
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("this test needs script(1) for a pseudo-terminal: apt-get install bsdutils (%v)", err)
	}
	bin := qfleetBinary(t)
	cmd := exec.Command(scriptPath, "-qefc", bin+" dev --max-steps 20000 --seed 2 --run-dir "+t.TempDir()+"/run", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	text := string(out)
	if n := strings.Count(text, "\rCartPole-v1 ["); n < 2 {
		t.Errorf("live line drawn %d times, want at least 2:\n%q", n, text)
	}
	if !strings.Contains(text, "CartPole-v1 [") || !strings.Contains(text, "/20.0k steps") || !strings.Contains(text, "eta ") {
		t.Errorf("no bar, steps or eta in the terminal output:\n%q", text)
	}
	// The result line comes after the last erase, on a clean line.
	last := strings.LastIndex(text, "\r\x1b[K")
	if !strings.Contains(text[last:], "CartPole-v1 seed=2: solved=") {
		t.Errorf("result line not after the erased live line:\n%q", text[last:])
	}
}
