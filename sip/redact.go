// Log redaction: sipgo's records lose their message dumps.

package sip

import (
	"context"
	"log/slog"
)

// redactHandler drops message dumps from sipgo's log records and lowers
// its info chatter to debug.
type redactHandler struct{ h slog.Handler }

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, l)
}

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	level := rec.Level
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	if !r.h.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(rec.Time, level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data", "msg", "req", "res", "request", "response":
			out.AddAttrs(slog.String(a.Key, "[redacted]"))
		default:
			out.AddAttrs(a)
		}
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return redactHandler{h: r.h.WithAttrs(as)}
}

func (r redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h: r.h.WithGroup(name)}
}
