package sip

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestOverloadShedsLateInvite: an INVITE that waited longer than
// OverloadDelay between its read from the UDP socket and its handler (the
// server is behind) gets 503 with Retry-After at once, never reaches
// OnCall and takes no RTP port; OPTIONS then answers 503 too. An INVITE
// handled in time is served, and the b2bua does not see the read-time
// header.
func TestOverloadShedsLateInvite(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.OverloadDelay = 500 * time.Millisecond })
	var late atomic.Bool
	s.beforeInvite = func() {
		if late.Load() {
			time.Sleep(700 * time.Millisecond) // the CPU was busy with others
		}
	}
	got := calls(s, func(c *InboundCall) {
		if v := c.Header(rxHeader); v != "" {
			t.Errorf("the b2bua sees %s: %s", rxHeader, v)
		}
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	late.Store(true)
	res, err := u.cli.Do(ctx, u.invite(s, "overload-late"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("late INVITE: %s (Retry-After %v), want 503 with Retry-After", res.StartLine(), res.GetHeader("Retry-After"))
	}
	select {
	case c := <-got:
		t.Fatalf("a late INVITE reached OnCall (%s)", c.ID)
	default:
	}
	if s.Shed() != 1 || s.ports.InUse() != 0 || s.Calls() != 0 {
		t.Errorf("shed %d, ports in use %d, calls %d; want 1, 0, 0", s.Shed(), s.ports.InUse(), s.Calls())
	}
	ap, _ := s.Addr(UDP)
	opt := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: ap.Addr().String(), Port: int(ap.Port())})
	if r, err := u.cli.Do(ctx, opt); err != nil || r.StatusCode != 503 {
		t.Errorf("OPTIONS right after a shed INVITE: %v %v, want 503", r, err)
	}

	late.Store(false)
	inv := u.invite(s, "overload-in-time")
	// A peer's own copy of the header does not decide: ours comes last.
	inv.AppendHeader(sip.NewHeader(rxHeader, "1"))
	res, err = u.cli.Do(ctx, inv)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE in time: %v %v", res, err)
	}
	c := waitFor(t, got, "call")
	ack := inDialog(inv, res, sip.ACK, 1, nil)
	if err := u.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Confirmed(), "ACK")
	c.Hangup(Reason{})
	waitFor(t, u.byes, "BYE")
	endOf(t, c)
	waitNoCalls(t, s)
}

func TestStampInvite(t *testing.T) {
	now := time.Unix(0, 1234567890123)
	inv := "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\nbody"
	if got := string(stampInvite(nil, []byte(inv), now)); got != "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n"+rxHeader+": 1234567890123\r\n\r\nbody" {
		t.Errorf("stamped: %q", got)
	}
	for _, m := range []string{"BYE sip:a@b SIP/2.0\r\n\r\n", "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n", "SIP/2.0 200 OK\r\n\r\n"} {
		if got := string(stampInvite(nil, []byte(m), now)); got != m || strings.Contains(got, rxHeader) {
			t.Errorf("%q became %q", m, got)
		}
	}
	buf, in := make([]byte, 0, 256), []byte(inv)
	if n := testing.AllocsPerRun(100, func() { buf = stampInvite(buf[:0], in, now) }); n != 0 {
		t.Errorf("%v allocs per stamp", n)
	}
}
