package sip

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	sipgo "github.com/emiago/sipgo/sip"
)

// TestLibraryLogRouted: what sipgo logs through its package-wide logger
// reaches the routed log, redacted, with the reference-count warnings at
// debug, and the attributes sipgo adds with With.
func TestLibraryLogRouted(t *testing.T) {
	var info, debug testLog // read while other tests' sipgo goroutines may write
	t.Cleanup(func() { RouteLibraryLog(nil) })

	RouteLibraryLog(slog.New(slog.NewTextHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo})))
	lib := sipgo.DefaultLogger()
	if lib.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("sipgo's debug records pass an info-level log")
	}
	lib.Warn("TCP ref went negative", "ip", "127.0.0.1:1", "ref", -1)
	lib.Warn("UDP ref went negative on try close", "src", "127.0.0.1:2", "ref", -1)
	lib.With("caller", "Transport<UDP>").Warn("something else", "msg", "INVITE sip:a@b a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret")
	lib.Info("Unhandled sip request. OnRequest handler not added", "msg", "OPTIONS")
	got := info.String()
	if strings.Contains(got, "ref went negative") {
		t.Errorf("reference-count warnings at info level:\n%s", got)
	}
	if !strings.Contains(got, "level=WARN msg=\"something else\" caller=Transport<UDP> msg=[redacted]") {
		t.Errorf("sipgo's other warning not routed, redacted and with its caller:\n%s", got)
	}
	if strings.Contains(got, "secret") || strings.Contains(got, "Unhandled") {
		t.Errorf("a message dump or info chatter at info level:\n%s", got)
	}

	RouteLibraryLog(slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})))
	lib.Warn("TCP ref went negative", "ip", "127.0.0.1:1", "ref", -2)
	if got := debug.String(); !strings.Contains(got, "level=DEBUG msg=\"TCP ref went negative\" ip=127.0.0.1:1 ref=-2") {
		t.Errorf("reference-count warning not at debug:\n%s", got)
	}
}
