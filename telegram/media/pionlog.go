package media

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/pion/logging"
)

// pionLoggerFactory routes pion's leveled logs into slog. pion's Info level is
// chatty about per-pair send failures that are normal during ICE checks, so it
// is logged at Debug; Trace is dropped.
type pionLoggerFactory struct {
	log *slog.Logger
	// ended, when set, is the session's: once it has ended, pion's
	// warnings and errors are about its teardown (an SCTP handshake
	// cancelled, a DTLS write on the closed connection, a candidate for
	// the closed agent) and are logged at Debug. The session's end
	// itself is logged by the session.
	ended *atomic.Bool
}

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope), ended: f.ended}
}

type pionLogger struct {
	log   *slog.Logger
	ended *atomic.Bool
}

// level is lvl, or Debug once the session has ended.
func (l pionLogger) level(lvl slog.Level) slog.Level {
	if l.ended != nil && l.ended.Load() {
		return slog.LevelDebug
	}
	return lvl
}

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	// Format only when the level is on: pion logs inside hot loops.
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (pionLogger) Trace(string)          {}
func (pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(msg string)    { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l pionLogger) Warn(msg string) { l.emit(l.level(warnLevel(msg)), msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.emitf(l.level(warnLevel(format)), format, args...)
}

// noPairsYet is pion/ice's warning when its check timer fires before the
// peer's candidates have arrived: on a Telegram call they come over
// signaling after the agent starts (tgcalls sends them as they are
// gathered), so it shows on most calls under load and is not a fault.
// ICE failing is reported as the session's end.
const noPairsYet = "Failed to ping without candidate pairs. Connection is not possible yet."

// warnLevel demotes pion warnings that describe a normal state to Debug.
func warnLevel(msg string) slog.Level {
	if msg == noPairsYet {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
func (l pionLogger) Error(msg string) { l.emit(l.level(slog.LevelError), msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emitf(l.level(slog.LevelError), format, args...)
}
