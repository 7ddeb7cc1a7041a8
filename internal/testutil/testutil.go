// Package testutil holds what the tests of several packages share: polling
// for a condition instead of sleeping, and free loopback addresses.
package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// CheckFor polls f every `every` until it returns nil, and fails the test
// with f's last error when total has passed first. Tests wait with it for
// what they can observe, never with a fixed sleep.
func CheckFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// FreeAddr is a 127.0.0.1 TCP address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// PromSamples parses the unlabelled samples of a Prometheus text page.
func PromSamples(text string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			m[name] = v
		}
	}
	return m
}

// YAMLKeys are the keys of a struct's YAML form, inlined structs flattened.
func YAMLKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			keys = append(keys, YAMLKeys(f.Type)...)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		keys = append(keys, name)
	}
	return keys
}

// WriteFile writes content to dir/name and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// SyncBuffer is a bytes.Buffer that goroutines may write at once (a
// run's stderr, written by its actors' loggers).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger logs at level and above into t.Log until mute is called or the
// test ends: actors, memberlist and protoactor log from goroutines of their
// own, maybe after the test has ended, where t.Log would panic.
func Logger(t testing.TB, level slog.Level) (logger *slog.Logger, mute func()) {
	w := &testLogWriter{t: t}
	t.Cleanup(w.mute)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w.mute
}

type testLogWriter struct {
	mu    sync.Mutex
	t     testing.TB
	muted bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.muted {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) mute() {
	w.mu.Lock()
	w.muted = true
	w.mu.Unlock()
}

var python struct {
	once      sync.Once
	path, err string
}

// Python is an interpreter with numpy and protobuf, for the tests of the
// env protocol: $QFLEET_PYTHON, the python3 on PATH, or Debian's (a pyenv
// or venv python3 on PATH may lack the Debian packages). Without one the
// test fails, saying how to install it; it does not skip.
func Python(t testing.TB) string {
	t.Helper()
	python.once.Do(func() {
		// No __pycache__ directories in the source tree from the tests.
		os.Setenv("PYTHONDONTWRITEBYTECODE", "1")
		var tried []string
		for _, p := range []string{os.Getenv("QFLEET_PYTHON"), "python3", "/usr/bin/python3"} {
			if p == "" {
				continue
			}
			out, err := exec.Command(p, "-c", "import numpy, google.protobuf").CombinedOutput()
			if err == nil {
				python.path = p
				return
			}
			tried = append(tried, fmt.Sprintf("%s: %v %s", p, err, strings.TrimSpace(string(out))))
		}
		python.err = strings.Join(tried, "\n")
	})
	if python.path == "" {
		t.Fatalf("the env protocol's tests run Python with numpy and protobuf: apt-get install python3 python3-numpy python3-protobuf "+
			"(or point QFLEET_PYTHON at such an interpreter); tried:\n%s", python.err)
	}
	return python.path
}
