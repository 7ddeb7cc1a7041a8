package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/cluster"
)

// ChildArg, after "bench" in a child's arguments, makes the process one
// side of a benchmark. It is not part of the command's interface.
const ChildArg = "--bench-child"

// Executable is the binary started for the other sides. It must run Child
// for the arguments "bench --bench-child ..." (the qfleet command, and any
// binary built on cli.Main, does); tests, whose own executable is the test
// binary, point it at a built qfleet.
var Executable = os.Executable

// ErrInterrupted ends a benchmark whose context was cancelled.
var ErrInterrupted = errors.New("interrupted")

// system is an actor system with a protoactor remote on 127.0.0.1 and a
// free port, configured as 'qfleet node' configures it (cluster.RemoteConfig).
func system(stderr io.Writer) (*actor.ActorSystem, *remote.Remote, *muteWriter, error) {
	mw := &muteWriter{w: stderr}
	logger := slog.New(slog.NewTextHandler(mw, &slog.HandlerOptions{Level: slog.LevelError}))
	sys := cluster.NewActorSystem(logger)
	rem, err := cluster.StartRemote(sys, cluster.RemoteConfig("127.0.0.1", 0, "", nil, cluster.NewGuard(sys, cluster.GuardConfig{})))
	if err != nil {
		return nil, nil, nil, err
	}
	return sys, rem, mw, nil
}

// muteWriter passes writes on until muted: connections that break while the
// processes end are logged as errors, and are not.
type muteWriter struct {
	mu    sync.Mutex
	muted bool
	w     io.Writer
}

func (m *muteWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.muted {
		return len(p), nil
	}
	return m.w.Write(p)
}

// mute drops every later write; none is under way when it returns.
func (m *muteWriter) mute() {
	m.mu.Lock()
	m.muted = true
	m.mu.Unlock()
}

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// counterValue reads a counter of a node's registry (labels as name=value
// pairs); 0 if it has no sample yet.
func counterValue(m *actors.Metrics, name string, labels ...string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

// printJSON writes v as one line of JSON, the line a benchmark ends with.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// round keeps digits decimals: the JSON line shows what is measured, not float noise.
func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// quantile is the nearest-rank q-quantile of xs (0 for none).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// numCPU is the cores this process may use: the cgroup quota when one is
// set, else the machine's.
func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, e1 := strconv.ParseFloat(f[0], 64)
			p, e2 := strconv.ParseFloat(f[1], 64)
			if e1 == nil && e2 == nil && p > 0 {
				n = int(math.Ceil(q / p))
			}
		}
	}
	if c := runtime.NumCPU(); n == 0 || c < n {
		n = c
	}
	return n
}
