package console

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/qfleet/qfleet/actors"
)

// Live display modes (--live): auto draws the live line only when both
// stdout and stderr are terminals, so a run whose output goes to a file, a
// pipe or CI stays quiet.
const (
	LiveAuto   = "auto"
	LiveAlways = "always"
	LiveNever  = "never"
)

var LiveModes = []string{LiveAuto, LiveAlways, LiveNever}

// liveEvery is how often the live line is redrawn.
const LiveEvery = 500 * time.Millisecond

// rateHalfLife smooths the env steps/s the ETA is computed from: long enough
// that a pause of the runners (rate limiter, weight swap) does not make the
// ETA jump, short enough to follow a run that speeds up as ε falls.
const rateHalfLife = 5 * time.Second

// liveOn says whether mode draws the live line on these writers.
func LiveOn(mode string, stdout, stderr io.Writer) bool {
	switch mode {
	case LiveAlways:
		return true
	case LiveNever:
		return false
	}
	return isTerminal(stdout) && isTerminal(stderr)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// liveLine is the terminal progress display of a long run: one line, redrawn
// in place, with a bar towards --max-steps, the env steps rate, mean100
// against the target and the time left. It is also the writer for
// everything else the run prints on that stream (logs, notices): a write
// first erases the line, so text never lands in the middle of it, and the
// next redraw puts it back underneath.
type Live struct {
	mu    sync.Mutex
	out   io.Writer
	width func() int // terminal columns
	shown bool       // the line is on the screen (no newline after it)

	env       string
	maxSteps  uint64
	maxTime   time.Duration // 0: none
	target    float64
	started   time.Time
	rate      float64 // smoothed env steps/s; 0 until two samples
	lastSteps uint64
	lastAt    time.Time
}

func NewLive(out io.Writer, env string, maxSteps uint64, maxTime time.Duration, target float64) *Live {
	l := &Live{out: out, env: env, maxSteps: maxSteps, maxTime: maxTime, target: target, width: func() int { return 80 }}
	if f, ok := out.(*os.File); ok {
		l.width = func() int {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
			return 80
		}
	}
	return l
}

// Write erases the live line, then writes p.
func (l *Live) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eraseLocked()
	return l.out.Write(p)
}

// start sets the clock the elapsed time and the rate are measured from.
func (l *Live) Start(at time.Time, steps uint64) {
	l.mu.Lock()
	l.started, l.lastAt, l.lastSteps = at, at, steps
	l.mu.Unlock()
}

// draw redraws the line for st as of now.
func (l *Live) Draw(st actors.RunStatus, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observe(st.EnvSteps, now)
	line := formatLive(liveState{
		env: l.env, elapsed: now.Sub(l.started), steps: st.EnvSteps, maxSteps: l.maxSteps, maxTime: l.maxTime, rate: l.rate,
		mean100: st.Mean100, target: l.target, solved: st.Solved,
	}, l.width())
	fmt.Fprintf(l.out, "\r%s\x1b[K", line)
	l.shown = true
}

// clear erases the line for good (the run is over).
func (l *Live) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eraseLocked()
}

func (l *Live) eraseLocked() {
	if l.shown {
		io.WriteString(l.out, "\r\x1b[K") //nolint:errcheck // the write after it reports the stream's errors
		l.shown = false
	}
}

// observe folds the steps done since the last draw into the smoothed rate
// (an exponential moving average over time, so uneven redraws weigh right).
func (l *Live) observe(steps uint64, now time.Time) {
	dt := now.Sub(l.lastAt)
	if dt <= 0 {
		return
	}
	inst := float64(steps-min(steps, l.lastSteps)) / dt.Seconds()
	if l.rate == 0 {
		l.rate = inst
	} else {
		keep := math.Exp2(-dt.Seconds() / rateHalfLife.Seconds())
		l.rate = keep*l.rate + (1-keep)*inst
	}
	l.lastSteps, l.lastAt = steps, now
}

// liveState is what one live line shows.
type liveState struct {
	env      string
	elapsed  time.Duration
	steps    uint64
	maxSteps uint64
	maxTime  time.Duration // 0: none
	rate     float64       // env steps/s
	mean100  float64       // NaN until an episode at ε ≤ 0.05 ended
	target   float64
	solved   bool
}

// formatLive lays out the live line in width columns. The bar comes first
// and always stays; when the line is too long the parts matter least go
// first: the elapsed time, the rate, the step counts, mean100, the ETA.
//
//	CartPole-v1 [████████░░░░░░░░░░░░]  41%  205k/500k steps  3,412/s  mean100 412.3/475  eta 1m26s  1m01s
func formatLive(s liveState, width int) string {
	frac := 0.0
	if s.maxSteps > 0 {
		frac = min(1, float64(s.steps)/float64(s.maxSteps))
	}
	cells := 20
	if width < 100 {
		cells = 10
	}
	full := int(frac * float64(cells))
	bar := fmt.Sprintf("%s [%s%s] %3.0f%%", s.env, strings.Repeat("█", full), strings.Repeat("░", cells-full), 100*frac)

	mean := "mean100 -"
	if !math.IsNaN(s.mean100) {
		mean = fmt.Sprintf("mean100 %.1f", s.mean100)
	}
	if !math.IsNaN(s.target) && !math.IsInf(s.target, 0) {
		mean += fmt.Sprintf("/%.4g", s.target)
	}
	eta := "eta -"
	switch {
	case s.solved:
		eta = "solved"
	case s.rate > 0 && s.steps < s.maxSteps:
		// The time to --max-steps at the current rate, or to --max-time if
		// that comes first: an upper bound when the target return ends the
		// run first.
		left := time.Duration(float64(s.maxSteps-s.steps) / s.rate * float64(time.Second))
		if s.maxTime > 0 {
			left = max(0, min(left, s.maxTime-s.elapsed))
		}
		eta = "eta " + shortDuration(left)
	}
	// In display order, each with its rank: the lower, the sooner dropped.
	parts := []struct {
		text string
		rank int
	}{
		{fmt.Sprintf("%s/%s steps", compact(s.steps), compact(s.maxSteps)), 2},
		{fmt.Sprintf("%s/s", thousands(uint64(s.rate+0.5))), 1},
		{mean, 3},
		{eta, 4},
		{shortDuration(s.elapsed), 0},
	}
	// Keep the last column free: some terminals wrap on it.
	length := utf8.RuneCountInString(bar)
	for _, p := range parts {
		length += 2 + utf8.RuneCountInString(p.text)
	}
	dropped := map[int]bool{}
	for rank := 0; length > width-1 && rank < len(parts); rank++ {
		for _, p := range parts {
			if p.rank == rank {
				length -= 2 + utf8.RuneCountInString(p.text)
				dropped[rank] = true
			}
		}
	}
	line := bar
	for _, p := range parts {
		if !dropped[p.rank] {
			line += "  " + p.text
		}
	}
	if utf8.RuneCountInString(line) > width-1 && width > 1 {
		line = string([]rune(line)[:width-1])
	}
	return line
}

// compact is a step count in 4 characters or so: 950, 12.3k, 205k, 1.50M.
func compact(n uint64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 10_000:
		return fmt.Sprintf("%.2fk", float64(n)/1e3)
	case n < 100_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	case n < 1_000_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	}
}

// shortDuration is a duration for people: 42s, 3m05s, 1h02m.
func shortDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
	}
}

// thousands writes n with comma separators: 1234567 → 1,234,567.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
