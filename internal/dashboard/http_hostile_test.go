package dashboard

// What a hostile or merely careless client can do to the --http server:
// each probe runs against a real server (newHTTPServer's, on a real
// loopback listener) with the handler a node serves.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/internal/testutil"
)

// testHTTPView is a node's view with a fresh registry, as one node has.
func testHTTPView(pprof bool) httpView {
	h := newHistory(10)
	h.add(sample{Steps: 10})
	return httpView{
		node: "A", roles: []string{"learner"}, metrics: actors.NewMetrics(), started: time.Now(), history: h,
		members: func() []Member { return []Member{{Name: "A", State: "alive", Self: true}} },
		run:     Run{Env: "CartPole-v1", Seed: 1, MaxSteps: 1000, ReplayCapacity: 100},
		pprof:   pprof,
	}
}

// serveHTTP serves h on a loopback port with a server made by
// newHTTPServerWith (tune, if given, sees it before it serves) and returns
// its address; the server closes with the test.
func serveHTTP(t *testing.T, h http.Handler, l httpLimits, tune func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServerWith(h, l)
	if tune != nil {
		tune(srv)
	}
	go srv.Serve(ln) //nolint:errcheck // returns at Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// do sends one request on a connection of its own and returns the response
// with its body read.
func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(body)
}

// Every server the node runs has every limit, and the write timeout leaves
// room for pprof's default 30 s CPU profile (net/http/pprof refuses one as
// long as the write timeout).
func TestHTTPServerLimits(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("server without a limit: read header %v, read %v, write %v, idle %v, max header bytes %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if srv.ReadHeaderTimeout > srv.ReadTimeout {
		t.Errorf("read header timeout %v > read timeout %v: the read timeout would cut headers first", srv.ReadHeaderTimeout, srv.ReadTimeout)
	}
	if srv.WriteTimeout <= 30*time.Second {
		t.Errorf("write timeout %v: pprof's default 30 s CPU profile would be refused", srv.WriteTimeout)
	}
}

// The endpoints change nothing: any method but GET and HEAD gets 405 and
// the Allow header, on every endpoint and the dashboard's files alike.
func TestHTTPReadOnlyMethods(t *testing.T) {
	base := "http://" + serveHTTP(t, newHTTPHandler(testHTTPView(false)), defaultHTTPLimits, nil)
	for _, path := range []string{"/", "/status", "/metrics", "/history", "/history?after=1", "/static/app.js", "/static/style.css"} {
		resp, body := do(t, http.MethodGet, base+path)
		if resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("GET %s: %s, %d bytes; want 200 and a body", path, resp.Status, len(body))
		}
		if resp, body := do(t, http.MethodHead, base+path); resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %s, %d bytes; want 200 and no body", path, resp.Status, len(body))
		}
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
			resp, _ := do(t, method, base+path)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %s, Allow %q; want 405 and Allow: GET, HEAD", method, path, resp.Status, resp.Header.Get("Allow"))
			}
		}
	}
	if resp, _ := do(t, http.MethodGet, base+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s, want 404", resp.Status)
	}
}

// /metrics has the Go runtime's and the process's metrics beside the
// node's, and two nodes in one process both serve them (no registration
// clash).
func TestHTTPMetricsProcessCollectors(t *testing.T) {
	for i := range 2 {
		base := "http://" + serveHTTP(t, newHTTPHandler(testHTTPView(false)), defaultHTTPLimits, nil)
		resp, body := do(t, http.MethodGet, base+"/metrics")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("node %d: GET /metrics: %s\n%s", i, resp.Status, body)
		}
		s := testutil.PromSamples(body)
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "go_memstats_heap_alloc_bytes", "qfleet_env_steps_total"} {
			if _, ok := s[name]; !ok {
				t.Errorf("node %d: /metrics lacks %s", i, name)
			}
		}
		if s["go_goroutines"] < 2 || s["process_resident_memory_bytes"] < 1<<20 {
			t.Errorf("node %d: go_goroutines %v, process_resident_memory_bytes %v: not this process's", i, s["go_goroutines"], s["process_resident_memory_bytes"])
		}
	}
}

// closedWithin reads c until the server closes it, or until start+d, and
// returns how long that took, what the server sent and whether it closed.
func closedWithin(c net.Conn, start time.Time, d time.Duration) (time.Duration, string, bool) {
	_ = c.SetReadDeadline(start.Add(d))
	var got strings.Builder
	_, err := io.Copy(&got, c) // nil at EOF
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), got.String(), false
	}
	return time.Since(start), got.String(), true
}

// Slowloris: a client that sends its headers a byte at a time, each in
// time for a per-read timeout, or that sends nothing at all, is cut off at
// ReadHeaderTimeout; an ordinary request on the same server still works.
func TestHTTPSlowloris(t *testing.T) {
	l := httpLimits{ReadHeader: 500 * time.Millisecond, Read: time.Second, Write: time.Second, Idle: time.Second, MaxHeaderBytes: 4 << 10}
	addr := serveHTTP(t, newHTTPHandler(testHTTPView(false)), l, nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	start := time.Now()
	slow, silent := dial(), dial()
	var sent atomic.Int64
	go func() {
		// 5 s worth of header at one byte per 50 ms: never a complete request.
		for _, b := range []byte("GET /status HTTP/1.1\r\nHost: qfleet\r\nX-Slow: " + strings.Repeat("a", 100)) {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			sent.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	margin := 1500 * time.Millisecond
	for _, c := range []struct {
		name string
		conn net.Conn
	}{{"dribbling", slow}, {"silent", silent}} {
		took, reply, closed := closedWithin(c.conn, start, l.ReadHeader+margin)
		if !closed {
			t.Errorf("%s connection still open after %v (ReadHeaderTimeout %v)", c.name, took, l.ReadHeader)
		} else if took < l.ReadHeader-100*time.Millisecond {
			t.Errorf("%s connection closed after %v, before ReadHeaderTimeout %v", c.name, took, l.ReadHeader)
		}
		// net/http says nothing, or 400 when the cut fell inside a header
		// line; never a response to the request.
		if reply != "" && !strings.HasPrefix(reply, "HTTP/1.1 400 ") {
			t.Errorf("%s connection: the server answered an incomplete request:\n%s", c.name, reply)
		}
		if status, _, _ := strings.Cut(reply, "\r\n"); closed {
			t.Logf("%s connection closed by the server after %v (reply %q)", c.name, took.Round(time.Millisecond), status)
		}
	}
	if got := sent.Load(); got < 5 {
		t.Errorf("only %d header bytes dribbled before the close: not a slowloris", got)
	}
	if resp, _ := do(t, http.MethodGet, "http://"+addr+"/status"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /status beside the slowloris: %s", resp.Status)
	}
}

// rawRequest sends a request with one extra header of n bytes on a
// connection of its own and returns the status line's code.
func rawRequest(t *testing.T, addr string, n int) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Written from a goroutine: the server may answer (and stop reading)
	// before the whole header is in.
	go fmt.Fprintf(c, "GET /status HTTP/1.1\r\nHost: qfleet\r\nX-Big: %s\r\nConnection: close\r\n\r\n", strings.Repeat("a", n))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%d-byte header: no response: %v", n, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A header beyond MaxHeaderBytes (plus the 4 KiB net/http allows over it)
// gets 431 and costs the node no more than that; one a browser with many
// cookies might send still gets through.
func TestHTTPHeaderTooLarge(t *testing.T) {
	addr := serveHTTP(t, newHTTPHandler(testHTTPView(false)), defaultHTTPLimits, nil)
	if code := rawRequest(t, addr, 2*defaultHTTPLimits.MaxHeaderBytes); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d-byte header: %d, want 431", 2*defaultHTTPLimits.MaxHeaderBytes, code)
	}
	if code := rawRequest(t, addr, 16<<10); code != http.StatusOK {
		t.Errorf("16 KiB header: %d, want 200", code)
	}
}

// 1,000 connections that send nothing do not keep /status from answering
// at once: each is a parked goroutine, not a worker taken.
func TestHTTPIdleConnections(t *testing.T) {
	const idle = 1000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	// Both ends live in this process: two descriptors per connection.
	if need := uint64(2*idle + 256); rl.Cur < need {
		t.Skipf("open-file limit %d < %d this test needs (ulimit -n)", rl.Cur, need)
	}
	var open atomic.Int64 // connections the server holds
	count := func(srv *http.Server) {
		srv.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}
	}
	// A long header timeout, so that the idle connections stay through the
	// GET however slow the machine (TestHTTPSlowloris shows they end).
	l := defaultHTTPLimits
	l.ReadHeader, l.Read = time.Minute, time.Minute
	addr := serveHTTP(t, newHTTPHandler(testHTTPView(false)), l, count)
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := open.Load(); n < idle {
			return fmt.Errorf("the server holds %d of %d idle connections", n, idle)
		}
		return nil
	})
	start := time.Now()
	resp, body := do(t, http.MethodGet, "http://"+addr+"/status")
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"node":"A"`) {
		t.Errorf("GET /status beside %d idle connections: %s\n%s", idle, resp.Status, body)
	}
	if took > 2*time.Second {
		t.Errorf("GET /status beside %d idle connections took %v", idle, took)
	}
	if n := open.Load(); n < idle {
		t.Errorf("after the GET the server holds %d idle connections, want %d: the probe did not hold them", n, idle)
	}
	t.Logf("GET /status answered in %v beside %d idle connections", took.Round(time.Microsecond), open.Load())
}

// --pprof mounts net/http/pprof on the node's mux; without it there is no
// /debug/pprof/. The profiles' symbol endpoint takes POST ('go tool pprof'
// posts addresses), which the read-only rule must not refuse.
func TestHTTPPprof(t *testing.T) {
	on := "http://" + serveHTTP(t, newHTTPHandler(testHTTPView(true)), defaultHTTPLimits, nil)
	off := "http://" + serveHTTP(t, newHTTPHandler(testHTTPView(false)), defaultHTTPLimits, nil)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
		if resp, body := do(t, http.MethodGet, on+path); resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("--pprof: GET %s: %s, %d bytes; want 200", path, resp.Status, len(body))
		}
		if resp, _ := do(t, http.MethodGet, off+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("no --pprof: GET %s: %s, want 404", path, resp.Status)
		}
	}
	if _, body := do(t, http.MethodGet, on+"/debug/pprof/"); !strings.Contains(body, "goroutine") {
		t.Errorf("--pprof: /debug/pprof/ does not list the goroutine profile:\n%s", body)
	}
	if resp, _ := do(t, http.MethodPost, on+"/debug/pprof/symbol"); resp.StatusCode != http.StatusOK {
		t.Errorf("--pprof: POST /debug/pprof/symbol: %s, want 200", resp.Status)
	}
	if resp, _ := do(t, http.MethodGet, on+"/status"); resp.StatusCode != http.StatusOK {
		t.Errorf("--pprof: GET /status: %s", resp.Status)
	}
	if resp, _ := do(t, http.MethodPost, on+"/status"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("--pprof: POST /status: %s, want 405", resp.Status)
	}
}
