package media

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPionNoPairsWarningDemoted: pion/ice's "no candidate pairs yet" is
// logged at debug (it warned on most calls of the load run before the
// peer's candidates arrived); its other warnings stay warnings.
func TestPionNoPairsWarningDemoted(t *testing.T) {
	var buf bytes.Buffer
	f := pionLoggerFactory{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l := f.NewLogger("ice")
	l.Warn(noPairsYet)
	if s := buf.String(); !strings.Contains(s, "level=DEBUG") || strings.Contains(s, "level=WARN") {
		t.Errorf("no-pairs message logged as %q, want debug", s)
	}
	buf.Reset()
	l.Warnf("failed to %s", "bind")
	if s := buf.String(); !strings.Contains(s, "level=WARN") {
		t.Errorf("other warning logged as %q, want warn", s)
	}
}

// TestPionTeardownDemoted: once the session has ended, pion's warnings and
// errors are about its teardown (the load run logged "client handshake
// canceled" and "failed to write packets on netConn: dtls fatal: conn is
// closed" for every few calls hung up) and go to debug; before, they stay
// warnings and errors.
func TestPionTeardownDemoted(t *testing.T) {
	var buf bytes.Buffer
	var ended atomic.Bool
	f := pionLoggerFactory{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), ended: &ended}
	l := f.NewLogger("sctp")
	l.Errorf("client handshake canceled: state=%s", "Established")
	l.Warn("failed to write packets on netConn: dtls fatal: conn is closed")
	if s := buf.String(); strings.Count(s, "level=ERROR") != 1 || strings.Count(s, "level=WARN") != 1 {
		t.Errorf("before the end: %q, want one error and one warning", s)
	}
	buf.Reset()
	ended.Store(true)
	l.Errorf("client handshake canceled: state=%s", "Established")
	l.Error("x")
	l.Warnf("failed to write packets on netConn: %s", "dtls fatal: conn is closed")
	l.Warn("y")
	if s := buf.String(); strings.Count(s, "level=DEBUG") != 4 || strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
		t.Errorf("after the end: %q, want four debug lines", s)
	}
}
