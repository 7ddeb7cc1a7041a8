package cli

// What the process-level tests share: the test binary's helper mode
// (TestMain), the qfleet binary built once from this tree, polling a node
// process, and reading a node's /status and /metrics from inside a lab host.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/cluster/netlab"
	"github.com/qfleet/qfleet/internal/testutil"
)

const helperArg = "multihost-helper"

func TestMain(m *testing.M) {
	if len(os.Args) >= 2 && os.Args[1] == helperArg {
		os.Exit(multihostHelper(os.Args[2:]))
	}
	// Runs without --run-dir get one under runsRoot: keep the tests' out of
	// the source tree.
	runs, err := os.MkdirTemp("", "qfleet-test-runs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qfleet.RunsRoot = runs
	code := m.Run()
	os.RemoveAll(runs)
	if qfleetBin.dir != "" {
		os.RemoveAll(qfleetBin.dir)
	}
	os.Exit(code)
}

func multihostHelper(args []string) int {
	if len(args) == 5 && args[0] == "proxy" {
		return faultProxy(args[1], args[2], args[3], args[4])
	}
	if len(args) >= 1 && args[0] == "hostile" {
		return hostileHelper(args[1:])
	}
	if len(args) != 2 || args[0] != "get" {
		fmt.Fprintf(os.Stderr, "usage: %s get URL | proxy LISTEN UPSTREAM LATENCY_MS JITTER_MS\n", helperArg)
		return 2
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "GET %s: %s\n", args[1], resp.Status)
		return 1
	}
	os.Stdout.Write(body)
	return 0
}

// qfleetBin is the qfleet binary, built once per test process into a
// temporary directory that TestMain removes.
var qfleetBin struct {
	once      sync.Once
	dir, path string
	err       error
}

func qfleetBinary(t *testing.T) string {
	t.Helper()
	qfleetBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "qfleet-multihost-")
		if err != nil {
			qfleetBin.err = err
			return
		}
		qfleetBin.dir = dir
		path := filepath.Join(dir, "qfleet")
		// go test puts GOROOT/bin first on PATH, so this is the same toolchain.
		out, err := exec.Command("go", "build", "-o", path, "github.com/qfleet/qfleet/cmd/qfleet").CombinedOutput()
		if err != nil {
			qfleetBin.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		qfleetBin.path = path
	})
	if qfleetBin.err != nil {
		t.Fatalf("building qfleet: %v", qfleetBin.err)
	}
	return qfleetBin.path
}

// pollWhile is testutil.CheckFor that also fails at once when p exits
// first (so a crashed node is reported now, not at the timeout); p may be
// nil.
func pollWhile(t *testing.T, p *netlab.Process, timeout, interval time.Duration, what string, cond func() error) {
	t.Helper()
	testutil.CheckFor(t, timeout, interval, func() error {
		err := cond()
		if err == nil {
			return nil
		}
		if p != nil {
			select {
			case <-p.Done():
				if err = cond(); err == nil {
					return nil
				}
				t.Fatalf("waiting for %s: the process exited (%v) first; last: %v", what, p.Wait(), err)
			default:
			}
		}
		return fmt.Errorf("waiting for %s: %w", what, err)
	})
}

// labGet fetches url from inside h's namespace with the helper mode of the
// test binary.
func labGet(h *netlab.Host, url string) ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := h.Command(ctx, exe, helperArg, "get", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("GET %s in %s: %v: %s", url, h.Name(), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func getStatus(h *netlab.Host, addr string) (nodeStatus, error) {
	return labStatus[nodeStatus](h, addr)
}

// labStatus reads a node's /status at addr from inside lab host h into a T
// (each test decodes the fields it checks).
func labStatus[T any](h *netlab.Host, addr string) (T, error) {
	var st T
	body, err := labGet(h, "http://"+addr+"/status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("/status: %v: %s", err, body)
	}
	return st, nil
}

func getMetrics(h *netlab.Host, addr string) ([]promSample, error) {
	body, err := labGet(h, "http://"+addr+"/metrics")
	if err != nil {
		return nil, err
	}
	return parseProm(string(body))
}

// promSample is one sample of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm reads the Prometheus text exposition format as promhttp writes
// it (no timestamps, label values without commas).
func parseProm(text string) ([]promSample, error) {
	var out []promSample
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %v", line, err)
		}
		s := promSample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			body := strings.TrimSuffix(s.name[i+1:], "}")
			s.name = s.name[:i]
			for _, kv := range strings.Split(body, ",") {
				k, q, ok := strings.Cut(kv, "=")
				if !ok {
					continue
				}
				val, err := strconv.Unquote(q)
				if err != nil {
					return nil, fmt.Errorf("metrics line %q: label %s: %v", line, k, err)
				}
				s.labels[k] = val
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// promValue returns the value of the sample named name whose labels include
// labels.
func promValue(samples []promSample, name string, labels map[string]string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range labels {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// TestMultiHostCartPole: three hosts, one learner and two remote runners,
// CartPole-v1 to mean100 >= 195 (the fast variant, in `make test`).
