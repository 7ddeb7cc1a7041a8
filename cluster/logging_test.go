package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestQuietHandler: protoactor's "lost connection" lines for streams that
// ended normally are lowered (ours cancelled: DEBUG; the peer's graceful
// stop: INFO); any other lost connection stays an ERROR.
func TestQuietHandler(t *testing.T) {
	for _, c := range []struct {
		err  string
		want string // the level logged at INFO and above, "" for none
	}{
		{"rpc error: code = Canceled desc = grpc: the client connection is closing", ""},
		{`rpc error: code = Unavailable desc = closing transport due to: connection error: desc = "error reading from server: read tcp 10.0.0.1:1->10.0.0.2:7947: use of closed network connection", received prior goaway: code: NO_ERROR, debug data: "graceful_stop"`, "INFO"},
		{`rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.2:7947: connect: connection refused"`, "ERROR"},
	} {
		var buf bytes.Buffer
		h := quietHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})}
		r := slog.NewRecord(time.Now(), slog.LevelError, "EndpointWriter lost connection", 0)
		r.AddAttrs(slog.Any("error", errors.New(c.err)))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := ""
		if out := buf.String(); out != "" {
			got = strings.TrimPrefix(strings.Fields(out)[1], "level=")
		}
		if got != c.want {
			t.Errorf("%.60s...: logged at %q, want %q\n%s", c.err, got, c.want, buf.String())
		}
	}
}

// memberlist's lines reach slog at their level, and a fallback ping that
// timed out (a slow peer) is a warning, not an error; a fallback ping that
// failed otherwise stays an error.
func TestMemberlistLogLevels(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"[ERR] memberlist: Failed fallback TCP ping: timeout 500ms: read tcp 10.0.0.1:1->10.0.0.2:7946: i/o timeout", "WARN"},
		{"[ERR] memberlist: Failed fallback TCP ping: dial tcp 10.0.0.2:7946: connect: connection refused", "ERROR"},
		{"[WARN] memberlist: Refuting a suspect message (from: B)", "WARN"},
		{"[INFO] memberlist: Suspect B has failed, no acks received", "INFO"},
		{"[DEBUG] memberlist: Stream connection from=10.0.0.2:1", ""},
	} {
		var buf bytes.Buffer
		l := memberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
		l.Print(c.line)
		got := ""
		if i := strings.Index(buf.String(), "level="); i >= 0 {
			got = strings.Fields(buf.String()[i+len("level="):])[0]
		}
		if got != c.want {
			t.Errorf("%q logged at %q, want %q (%s)", c.line, got, c.want, buf.String())
		}
	}
}
