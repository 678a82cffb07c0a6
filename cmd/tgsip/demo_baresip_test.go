package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/baresiptest"
)

// TestDemoBaresipSRTPEcho: baresip dials echo through `tgsip demo` with
// mediaenc=srtp-mand (RTP/SAVP, SDES only), its microphone a 440 Hz tone;
// after a few seconds it hangs up (SIGTERM: BYE). What it recorded is its
// own 440 Hz come back through the trunk (SRTP PCMU -> Opus -> echo ->
// Opus -> SRTP PCMU), and the Telegram call is discarded by the trunk's
// account.
func TestDemoBaresipSRTPEcho(t *testing.T) {
	d, n := startDemoNetwork(t)
	const tone = 440.0
	ua := baresiptest.Start(t, baresiptest.Options{
		Tone:     tone,
		Target:   "sip:echo@" + d.addr.String(),
		MediaEnc: "srtp-mand",
		RTPPorts: "31000-31499",
	})
	if !ua.WaitOutput("Call established", 30*time.Second) {
		t.Fatalf("baresip's call to echo was not established\n%s\n%s", ua.Output(), d.logs.String())
	}
	// Three seconds of the round trip, then baresip hangs up.
	time.Sleep(3 * time.Second)
	ua.Stop(t)
	if !strings.Contains(ua.Output(), "SRTP is Enabled") {
		t.Error("baresip did not report SRTP as enabled")
	}
	rec := ua.Recording(t)
	if len(rec) < baresiptest.Rate {
		t.Fatalf("baresip recorded %d samples", len(rec))
	}
	f, prom := audiotest.DominantFrequency(rec, baresiptest.Rate, 100, 3500, 2)
	t.Logf("baresip recorded %d samples, dominant %v Hz (prominence %.0f, RMS %.0f)", len(rec), f, prom, audiotest.RMS(rec))
	if math.Abs(f-tone) > tone*0.02 || prom < 20 {
		t.Errorf("baresip heard %v Hz (prominence %.1f), want its own %v Hz", f, prom, tone)
	}
	calls := waitTelegramIdle(t, n, 1)
	if c := calls[0]; c.DiscardedBy != c.AdminID || c.ParticipantID != demoUserID(t, n, "echo") {
		t.Errorf("Telegram call %d -> %d discarded by %d, want the trunk's account calling echo and hanging up", c.AdminID, c.ParticipantID, c.DiscardedBy)
	}
	d.stop()
	if c := d.wait(t, time.Minute); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}
