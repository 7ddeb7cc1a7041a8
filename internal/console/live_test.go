package console

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qfleet/qfleet/actors"
)

func TestFormatLive(t *testing.T) {
	s := liveState{env: "CartPole-v1", elapsed: 61 * time.Second, steps: 205_012, maxSteps: 500_000,
		rate: 3412, mean100: 412.34, target: 475}
	line := formatLive(s, 200)
	for _, want := range []string{
		"CartPole-v1 [████████░░░░░░░░░░░░]  41%", // 8 of 20 cells at 41%
		"205k/500k steps", "3,412/s", "mean100 412.3/475",
		"eta 1m26s", // (500,000 − 205,012) / 3,412 = 86.5 s
		"1m01s",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	// An 80-column terminal keeps the bar, mean100 and the ETA; a narrower
	// one drops mean100 too.
	for _, c := range []struct {
		width      int
		keep, drop []string
	}{
		{80, []string{"CartPole-v1 [████░░░░░░]  41%", "mean100 412.3/475", "eta 1m26s"}, []string{"3,412/s", "1m01s"}},
		{50, []string{"CartPole-v1 [████░░░░░░]  41%", "eta 1m26s"}, []string{"mean100", "steps"}},
	} {
		line := formatLive(s, c.width)
		if n := utf8.RuneCountInString(line); n > c.width-1 {
			t.Errorf("line for %d columns has %d runes: %q", c.width, n, line)
		}
		for _, k := range c.keep {
			if !strings.Contains(line, k) {
				t.Errorf("%d columns: %q lacks %q", c.width, line, k)
			}
		}
		for _, d := range c.drop {
			if strings.Contains(line, d) {
				t.Errorf("%d columns: %q keeps %q", c.width, line, d)
			}
		}
	}
	// --max-time ends the run before --max-steps: 60 s left of 2 minutes.
	timed := s
	timed.maxTime = 2 * time.Minute
	timed.elapsed = time.Minute
	if line := formatLive(timed, 200); !strings.Contains(line, "eta 1m00s") {
		t.Errorf("with --max-time 2m after 1m: %q", line)
	}
	// Before the first greedy episode, and once solved.
	s.mean100, s.solved = math.NaN(), false
	if line := formatLive(s, 200); !strings.Contains(line, "mean100 -/475") {
		t.Errorf("no mean100 yet: %q", line)
	}
	s.mean100, s.solved = 480, true
	if line := formatLive(s, 200); !strings.Contains(line, "solved") || strings.Contains(line, "eta") {
		t.Errorf("solved run: %q", line)
	}
	for d, want := range map[time.Duration]string{42 * time.Second: "42s", 185 * time.Second: "3m05s", 3720 * time.Second: "1h02m"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands = %q", got)
	}
	for n, want := range map[uint64]string{950: "950", 1234: "1.23k", 20_000: "20.0k", 205_012: "205k", 1_500_000: "1.50M"} {
		if got := compact(n); got != want {
			t.Errorf("compact(%d) = %q, want %q", n, got, want)
		}
	}
}

// The ETA follows the rate: 1,000 steps/s for 10 s, 9,000 steps left.
func TestLiveLineRateAndErase(t *testing.T) {
	var out bytes.Buffer
	l := NewLive(&out, "Acrobot-v1", 20_000, 0, -100)
	t0 := time.Unix(1000, 0)
	l.Start(t0, 0)
	for i := 1; i <= 10; i++ {
		l.Draw(actors.RunStatus{EnvSteps: uint64(1000 * i), Mean100: math.NaN()}, t0.Add(time.Duration(i)*time.Second))
	}
	if math.Abs(l.rate-1000) > 1e-9 {
		t.Errorf("rate %v, want 1000", l.rate)
	}
	last := out.String()[strings.LastIndex(out.String(), "\r"):]
	if !strings.Contains(last, "eta 10s") || !strings.Contains(last, "10.0k/20.0k steps") {
		t.Errorf("last line %q", last)
	}
	// A log line written meanwhile erases the live line first.
	out.Reset()
	l.Write([]byte("level=WARN msg=x\n"))
	if got := out.String(); got != "\r\x1b[Klevel=WARN msg=x\n" {
		t.Errorf("write while the line is shown: %q", got)
	}
	out.Reset()
	l.Write([]byte("more\n"))
	l.Clear()
	if got := out.String(); got != "more\n" {
		t.Errorf("write with no line shown: %q", got)
	}
}
