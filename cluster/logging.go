package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLogger turns memberlist's *log.Logger output ("[WARN] memberlist:
// ...") into slog records at the matching level, so a node has one log stream
// and memberlist never writes to stderr on its own.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l: l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

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
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, string(msg), "component", "memberlist")
	}
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
