package b2bua

import (
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Calls ended from either side at awkward moments: nothing may be left
// ringing or open on either network (newE2E's cleanup checks the
// emulator's call records; these tests check the SIP dialogs).

// callUser has the PBX call the Telegram user through the trunk and
// returns both ends once the user's phone rings; with accept the user
// answers at once.
func callUser(t *testing.T, e *e2e, accept bool) (*sip.OutboundCall, *tgcall.Call) {
	t.Helper()
	incoming := make(chan *tgcall.Call, 1)
	userIncoming(func(c *tgcall.Call) {
		incoming <- c
		if accept {
			c.Accept()
		}
	})
	out := e.dial(t, "user")
	select {
	case user := <-incoming:
		return out, user
	case <-time.After(15 * time.Second):
		t.Fatal("Telegram user not called")
		return nil, nil
	}
}

// answeredCall sets up a PBX -> Telegram call the user answers.
func answeredCall(t *testing.T, e *e2e) (*sip.OutboundCall, *tgcall.Call) {
	t.Helper()
	out, user := callUser(t, e, true)
	t.Cleanup(user.Hangup)
	waitClosed(t, out.Answered(), "200")
	waitClosed(t, user.Connected(), "Telegram user's media")
	if t.Failed() {
		t.FailNow()
	}
	return out, user
}

// TestTrunkHoldThenTelegramHangsUp: the PBX puts the call on hold (a
// re-INVITE the trunk applies to the bridge) and resumes it; then the
// Telegram user hangs up while the PBX sends another re-INVITE: the PBX
// gets a BYE and no dialog is left.
func TestTrunkHoldThenTelegramHangsUp(t *testing.T) {
	e := newE2E(t, nil)
	out, user := answeredCall(t, e)
	if err := reoffer(out, true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	if d := out.Media().Direction; d.String() != "sendonly" {
		t.Errorf("after hold our direction is %v, want sendonly", d)
	}
	if err := reoffer(out, false); err != nil {
		t.Fatalf("resume: %v", err)
	}
	reoffered := make(chan error, 1)
	go func() { reoffered <- out.Reoffer(true) }()
	user.Hangup()
	ce := endOf(t, out)
	// The trunk's BYE and the PBX's re-INVITE cross: either the BYE ends
	// the PBX's call, or the re-INVITE reaches a trunk that has ended it
	// and gets 481 (RFC 3261 §12.2.1.2); both are the trunk's doing.
	if !ce.Remote || (ce.Cause != sip.CauseNormal && ce.Cause != sip.CauseDialogGone) {
		t.Errorf("PBX's call ended with %v, want a BYE from the trunk (or a 481 to its crossing re-INVITE)", ce)
	}
	select {
	case <-reoffered: // answered, or failed because the dialog ended: either is fine
	case <-time.After(15 * time.Second):
		t.Error("the re-INVITE never completed")
	}
	waitNoSIPCalls(t, e.tsip)
}

// TestTrunkPBXByeDuringTelegramSetup: Telegram -> SIP, the PBX answers and
// hangs up at once, while Telegram is still exchanging keys or connecting
// media: the Telegram call is discarded.
func TestTrunkPBXByeDuringTelegramSetup(t *testing.T) {
	e := newE2E(t, nil)
	calls := e.pbxCalls(func(c *sip.InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Errorf("200: %v", err)
			return
		}
		<-c.Confirmed()
		c.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	})
	user := userDialsTrunk(t, mediaUser)
	in := pbxCall(t, calls)
	ce := endOf(t, in)
	if ce.Cause != sip.CauseNormal || ce.Remote {
		t.Errorf("PBX's call ended with %v, want its own BYE", ce)
	}
	waitClosed(t, user.Done(), "Telegram caller's call end")
	if err := user.Err(); err == nil || !err.Remote {
		t.Errorf("Telegram caller's call ended with %v, want a discard by the trunk", err)
	}
	waitNoSIPCalls(t, e.tsip)
}

// reoffer re-INVITEs, retrying after a refusal while the call is up:
// the trunk may not have the ACK of the previous 2xx yet (RFC 3261 §14.2:
// 500 with Retry-After, or 491), and the UAC retries after a while.
func reoffer(c *sip.OutboundCall, hold bool) error {
	var err error
	for range 5 {
		if err = c.Reoffer(hold); err == nil {
			return nil
		}
		select {
		case <-c.Done():
			return err
		case <-time.After(100 * time.Millisecond): // the RFC's retry delay (shortened), not a wait for an event
		}
	}
	return err
}

// TestTrunkCancelWhileTelegramRings: the PBX gives up while the Telegram
// user's phone rings: the PBX's INVITE ends 487 and the user's ringing
// call is discarded (missed), so nothing rings on.
func TestTrunkCancelWhileTelegramRings(t *testing.T) {
	e := newE2E(t, nil)
	out, user := callUser(t, e, false)
	select {
	case ev := <-out.Progress():
		for ev.Status != 180 {
			ev = <-out.Progress()
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no 180")
	}
	out.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	if ce := endOf(t, out); ce.Status != 487 {
		t.Errorf("PBX's call ended with %v, want 487", ce)
	}
	waitClosed(t, user.Done(), "Telegram user's ringing call end")
	if err := user.Err(); err == nil || !err.Remote || err.Reason != tgcall.DiscardMissed {
		t.Errorf("Telegram user's call ended with %v, want discarded as missed by the trunk", err)
	}
	waitNoSIPCalls(t, e.tsip)
}
