package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/actors/lograte"
)

// memberlistLogger turns memberlist's *log.Logger output ("[WARN] memberlist:
// ...") into slog records at the matching level, so a node has one log stream
// and memberlist never writes to stderr on its own.
//
// memberlist logs an ERR line for every bad stream or packet it gets (a
// wrong label, garbage, a failed decrypt), so anyone who can reach the
// gossip port can fill a disk with them. Warnings and errors therefore pass
// at most once per memberlistLogEvery for each kind of line (the message
// without its addresses and values), with the count held back since.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l: l, limit: lograte.New(memberlistLogEvery)}, "", 0)
}

const memberlistLogEvery = 10 * time.Second

type slogWriter struct {
	l     *slog.Logger
	limit *lograte.Limiter
}

// lineKind is the fixed part of a memberlist line: up to the first ':',
// '(', '%' or quote, after which memberlist puts errors, values and
// addresses.
func lineKind(msg []byte) string {
	if i := bytes.IndexAny(msg, ":(%'\""); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return string(msg)
}

var levelTags = []struct {
	tag   []byte
	level slog.Level
}{
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERR]"), slog.LevelError},
	{[]byte("[ERROR]"), slog.LevelError},
}

// Write is called once per log line (log.Logger serialises calls).
func (w slogWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, t := range levelTags {
		if bytes.HasPrefix(msg, t.tag) {
			level = t.level
			msg = bytes.TrimSpace(msg[len(t.tag):])
			break
		}
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return len(p), nil
	}
	if bytes.Contains(msg, []byte("use of closed network connection")) {
		// memberlist's own goroutines, still sending after Shutdown closed
		// its sockets: part of every normal stop.
		level = slog.LevelDebug
		if !w.l.Enabled(ctx, level) {
			return len(p), nil
		}
	}
	if level == slog.LevelError && bytes.HasPrefix(msg, []byte("Failed fallback TCP ping: timeout")) {
		// A probe of a peer that did not answer in time, over TCP after
		// UDP: the peer is then suspected and refutes or is declared dead
		// by the protocol. A slow peer (a loaded host) is not an error of
		// this node; a warning, as memberlist's other probe outcomes are.
		level = slog.LevelWarn
	}
	if level < slog.LevelWarn || w.limit == nil {
		w.l.Log(ctx, level, string(msg), "component", "memberlist")
		return len(p), nil
	}
	if ok, held := w.limit.Allow(level.String()+lineKind(msg), time.Now()); ok {
		w.l.Log(ctx, level, string(msg), "component", "memberlist", "same_lines_held_back", held)
	}
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewActorSystem returns an actor system that logs through l, with
// protoactor's lines about connections that ended normally lowered from
// ERROR: protoactor logs "EndpointWriter lost connection" at ERROR for
// every stream it cancels (lowered to DEBUG), and for every stream whose
// peer stopped gracefully (lowered to INFO: a runner node ending after its
// learner left, say), so every normal shutdown printed errors that were
// none.
func NewActorSystem(l *slog.Logger) *actor.ActorSystem {
	quiet := slog.New(quietHandler{l.Handler()})
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
}

// quietHandler lowers the records normalEnd recognises.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		if level, ok := normalEnd(r); ok {
			if !h.Handler.Enabled(ctx, level) {
				return nil
			}
			r.Level = level
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

// normalEnd recognises a lost connection that is no failure, and gives the
// level it deserves: a stream of ours that our side cancelled (gRPC code
// Canceled: "the client connection is closing") is DEBUG; a stream whose
// peer said goodbye first (an HTTP/2 GOAWAY with NO_ERROR, gRPC's
// "graceful_stop": the peer's remote shut down in order) is INFO.
func normalEnd(r slog.Record) (slog.Level, bool) {
	if r.Message != "EndpointWriter lost connection" {
		return 0, false
	}
	var level slog.Level
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "error" {
			return true
		}
		switch msg := a.Value.String(); {
		case strings.Contains(msg, "code = Canceled"):
			level, found = slog.LevelDebug, true
		case strings.Contains(msg, "received prior goaway: code: NO_ERROR"):
			level, found = slog.LevelInfo, true
		}
		return false
	})
	return level, found
}
