package b2bua

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/sipptest"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// sipp (Debian sip-tester) as the PBX of the trunk's end-to-end tests.

// freePort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// runSipp starts sipp with scenario (testdata/sipp) on a free port of
// 127.0.0.1 and returns the port and a wait for its exit (nil when the
// scenario completed). sipp's own timeout bounds the run.
func runSipp(t *testing.T, scenario string, timeout time.Duration, args ...string) (int, func() error) {
	t.Helper()
	port := freePort(t)
	wait := sipptest.Start(t, port, timeout, append([]string{"-sf", filepath.Join("testdata", "sipp", scenario)}, args...)...)
	return port, wait
}

// TestTrunkTelegramToSippEcho: a Telegram user calls the trunk, which
// calls a sipp UAS; sipp answers PCMU and echoes the RTP; the user hears
// their own 440 Hz tone back through both transcodings (Opus -> PCMU ->
// Opus); the user's hang-up reaches sipp as a BYE.
func TestTrunkTelegramToSippEcho(t *testing.T) {
	port, wait := runSipp(t, "uas_echo.xml", 30*time.Second, "-rtp_echo")
	newE2E(t, func(o *TrunkOptions) {
		o.Routing.TelegramToSIP.Target = fmt.Sprintf("sip:2000@127.0.0.1:%d", port)
	})
	user := userDialsTrunk(t, mediaUser)
	waitClosed(t, user.Connected(), "Telegram caller connected")
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := user.Conn()
	heard := make(chan pcmResult, 1)
	go func() {
		pcm, err := audiotest.ReceiveOpus(conn, audiotest.OpusRate/4, 15)
		heard <- pcmResult{pcm, err}
	}()
	sent := make(chan error, 1)
	go func() {
		au := conn.Audio()
		sent <- audiotest.SendOpusTone(ctx, conn, au.SSRC, au.PayloadType, userTone, toneFrames, 20*time.Millisecond)
	}()
	checkHeard(t, ctx, "Telegram user (echo from sipp)", heard, audiotest.OpusRate, userTone)
	if err := <-sent; err != nil {
		t.Fatalf("send tone: %v", err)
	}
	user.Hangup()
	waitClosed(t, user.Done(), "Telegram caller's call end")
	if err := user.Err(); err == nil || err.Cause != tgcall.CauseHangup {
		t.Errorf("Telegram caller's call ended with %v", err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// sippCalls runs a sipp UAC scenario calling service at the trunk.
func sippCalls(t *testing.T, e *e2e, scenario, service string, args ...string) func() error {
	t.Helper()
	addr, _ := e.tsip.Addr(sip.UDP)
	_, wait := runSipp(t, scenario, 30*time.Second, append(args, "-s", service, addr.String())...)
	return wait
}

// TestTrunkSippToTelegramEcho: sipp calls the Telegram user with a PCMU
// offer and echoes the RTP; the user, who answers, hears their own 440 Hz
// tone back through the trunk; the user's hang-up reaches sipp as BYE.
func TestTrunkSippToTelegramEcho(t *testing.T) {
	e := newE2E(t, nil)
	incoming := make(chan *tgcall.Call, 1)
	userIncoming(func(c *tgcall.Call) {
		incoming <- c
		c.Accept()
	})
	wait := sippCalls(t, e, "uac_echo.xml", "user", "-rtp_echo")
	var user *tgcall.Call
	select {
	case user = <-incoming:
	case <-time.After(20 * time.Second):
		t.Fatal("Telegram user not called")
	}
	t.Cleanup(user.Hangup)
	waitClosed(t, user.Connected(), "Telegram user's media")
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := user.Conn()
	heard := make(chan pcmResult, 1)
	go func() {
		pcm, err := audiotest.ReceiveOpus(conn, audiotest.OpusRate/4, 15)
		heard <- pcmResult{pcm, err}
	}()
	sent := make(chan error, 1)
	go func() {
		au := conn.Audio()
		sent <- audiotest.SendOpusTone(ctx, conn, au.SSRC, au.PayloadType, userTone, toneFrames, 20*time.Millisecond)
	}()
	checkHeard(t, ctx, "Telegram user (echo from sipp)", heard, audiotest.OpusRate, userTone)
	if err := <-sent; err != nil {
		t.Fatalf("send tone: %v", err)
	}
	user.Hangup()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// TestTrunkSippToTelegramBusy: the Telegram user declines; sipp gets 486.
func TestTrunkSippToTelegramBusy(t *testing.T) {
	e := newE2E(t, nil)
	userIncoming(func(c *tgcall.Call) { c.Decline() })
	if err := sippCalls(t, e, "uac_busy.xml", "user")(); err != nil {
		t.Fatal(err)
	}
}
