package b2bua

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Telegram -> SIP: a Telegram user calls the trunk's account, the trunk
// places the call to the PBX (a real sip.Server over loopback).

// userDialsTrunk has from call the trunk's account.
func userDialsTrunk(t *testing.T, from *tgAccount) *tgcall.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := from.engine.Dial(ctx, mediaTrunk.peer())
	if err != nil {
		t.Fatalf("dial the trunk: %v", err)
	}
	t.Cleanup(func() {
		c.Hangup()
		waitClosed(t, c.Done(), "Telegram caller's call end")
	})
	return c
}

// pbxCalls hands the PBX's incoming calls to the test after f ran on them.
func (e *e2e) pbxCalls(f func(*sip.InboundCall)) <-chan *sip.InboundCall {
	ch := make(chan *sip.InboundCall, 4)
	h := func(c *sip.InboundCall) {
		ch <- c
		f(c)
	}
	e.pbxOnCall.Store(&h)
	return ch
}

func pbxCall(t *testing.T, ch <-chan *sip.InboundCall) *sip.InboundCall {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("the PBX got no INVITE")
	}
	return nil
}

// TestTrunkTelegramToSIPAnswered: the PBX rings and answers; the Telegram
// call is accepted and connects, audio flows both ways; the PBX's BYE ends
// the Telegram call.
func TestTrunkTelegramToSIPAnswered(t *testing.T) {
	e := newE2E(t, nil)
	calls := e.pbxCalls(func(c *sip.InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Errorf("180: %v", err)
		}
		if err := c.Answer(nil); err != nil {
			t.Errorf("200: %v", err)
		}
	})
	user := userDialsTrunk(t, mediaUser)
	in := pbxCall(t, calls)
	if in.RequestUser != "2000" || in.Header("X-Telegram-User-Id") == "" {
		t.Errorf("INVITE to %q, X-Telegram-User-Id %q", in.RequestUser, in.Header("X-Telegram-User-Id"))
	}
	waitClosed(t, in.Confirmed(), "PBX's call confirmed")
	waitClosed(t, user.Connected(), "Telegram caller connected")
	if t.Failed() {
		t.FailNow()
	}
	exchangeTones(t, user, newPBXAudio(t, in.Media()))
	in.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	waitClosed(t, user.Done(), "Telegram caller's call end")
	if err := user.Err(); err == nil || err.Cause != tgcall.CauseHangup || !err.Remote {
		t.Errorf("Telegram caller's call ended with %v, want a remote hangup", err)
	}
}

// TestTrunkTelegramToSIPRejected: the PBX's final failure ends the
// Telegram call with the mapped discard reason: 486 busy, 480 missed.
func TestTrunkTelegramToSIPRejected(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   tgcall.Cause
	}{
		{486, tgcall.CauseBusy},
		{480, tgcall.CauseNoAnswer},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			e := newE2E(t, nil)
			calls := e.pbxCalls(func(c *sip.InboundCall) { c.Reject(tc.status, "") })
			user := userDialsTrunk(t, mediaUser)
			pbxCall(t, calls)
			waitClosed(t, user.Done(), "Telegram caller's call end")
			if err := user.Err(); err == nil || err.Cause != tc.want || !err.Remote {
				t.Errorf("Telegram caller's call ended with %v, want %v by the trunk", err, tc.want)
			}
		})
	}
}

// TestTrunkTelegramHangsUpWhileSIPRings: the Telegram caller gives up while
// the PBX rings: the trunk CANCELs the INVITE.
func TestTrunkTelegramHangsUpWhileSIPRings(t *testing.T) {
	e := newE2E(t, nil)
	calls := e.pbxCalls(func(c *sip.InboundCall) { _ = c.Ringing() })
	user := userDialsTrunk(t, mediaUser)
	in := pbxCall(t, calls)
	user.Hangup()
	ce := endOf(t, in)
	if ce.Cause != sip.CauseCancelled {
		t.Errorf("PBX's call ended with %v, want cancelled", ce)
	}
}

// TestTrunkTelegramToSIPAccountBusy: an account already in a call answers a
// second Telegram call busy.
func TestTrunkTelegramToSIPAccountBusy(t *testing.T) {
	e := newE2E(t, nil)
	ringing := make(chan *tgcall.Call, 1)
	userIncoming(func(c *tgcall.Call) { ringing <- c })
	first := e.dial(t, "user")
	select {
	case <-ringing:
	case <-time.After(15 * time.Second):
		t.Fatal("Telegram user not called")
	}
	second := userDialsTrunk(t, mediaRelayUser)
	waitClosed(t, second.Done(), "second caller's call end")
	if err := second.Err(); err == nil || err.Cause != tgcall.CauseBusy {
		t.Errorf("second caller's call ended with %v, want busy", err)
	}
	first.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	endOf(t, first)
}
