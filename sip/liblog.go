// sipgo's package-wide logger, routed to the trunk's log.

package sip

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// sipgo v1.7.3 logs a few records through its package-wide logger
// (sip.DefaultLogger) instead of the one a UserAgent is given: a
// connection's reference count going below zero on release (every TCP, TLS
// or UDP connection closed hard — by Close, a read error or the pool's
// Clear — while a transaction or a lookup still held a reference; harmless:
// the connection is already closed), and requests or responses no handler
// takes. Left alone, they reach slog.Default: plain text on stderr, outside
// the configured format and level, and each TLS call's end printed a
// "WARN TCP ref went negative" or two.
//
// The init below gives sipgo a handler that looks up its destination on
// each record, so that RouteLibraryLog can change it at any time without a
// data race with sipgo's goroutines (SetDefaultLogger writes a plain
// variable that they read).
func init() { sip.SetDefaultLogger(slog.New(libraryHandler{})) }

// libraryLog is where sipgo's package-wide records go; nil: slog.Default.
var libraryLog atomic.Pointer[slog.Logger]

// RouteLibraryLog sends what sipgo logs through its package-wide logger to
// log, redacted as the server's own sipgo log is (redactHandler), with the
// reference-count warnings at debug. It is process-wide: the last call
// wins; nil restores slog.Default.
func RouteLibraryLog(log *slog.Logger) { libraryLog.Store(log) }

// libraryHandler forwards to libraryLog's handler at each record; the
// attributes and groups sipgo adds (With) are replayed on it.
type libraryHandler struct {
	with []func(slog.Handler) slog.Handler
}

// logger is where records go now.
func (h libraryHandler) logger() *slog.Logger {
	if l := libraryLog.Load(); l != nil {
		return l
	}
	return slog.Default()
}

func (h libraryHandler) target() slog.Handler {
	var out slog.Handler = redactHandler{h: h.logger().Handler()}
	for _, w := range h.with {
		out = w(out)
	}
	return out
}

// Enabled is the destination's answer for the record's own level: a
// demotion only lowers a level, so what the destination drops at the
// level given it drops demoted too. sipgo logs a debug record per
// connection reference taken or released; they stop here.
func (h libraryHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.logger().Enabled(ctx, l)
}

func (h libraryHandler) Handle(ctx context.Context, rec slog.Record) error {
	t := h.target()
	if rec.Level > slog.LevelDebug && strings.Contains(rec.Message, "ref went negative") {
		out := slog.NewRecord(rec.Time, slog.LevelDebug, rec.Message, rec.PC)
		rec.Attrs(func(a slog.Attr) bool {
			out.AddAttrs(a)
			return true
		})
		rec = out
	}
	if !t.Enabled(ctx, rec.Level) {
		return nil
	}
	return t.Handle(ctx, rec)
}

func (h libraryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.and(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
}

func (h libraryHandler) WithGroup(name string) slog.Handler {
	return h.and(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h libraryHandler) and(w func(slog.Handler) slog.Handler) libraryHandler {
	return libraryHandler{with: append(h.with[:len(h.with):len(h.with)], w)}
}
