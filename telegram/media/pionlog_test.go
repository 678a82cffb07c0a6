package media

import (
	"bytes"
	"log/slog"
	"strings"
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
