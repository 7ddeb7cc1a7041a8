package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"time"
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
	return log.New(slogWriter{l: l, limit: newLogLimiter(memberlistLogEvery)}, "", 0)
}

const memberlistLogEvery = 10 * time.Second

type slogWriter struct {
	l     *slog.Logger
	limit *logLimiter
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
	if level < slog.LevelWarn || w.limit == nil {
		w.l.Log(ctx, level, string(msg), "component", "memberlist")
		return len(p), nil
	}
	if ok, held := w.limit.allow(level.String()+lineKind(msg), time.Now()); ok {
		w.l.Log(ctx, level, string(msg), "component", "memberlist", "same_lines_held_back", held)
	}
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
