package tgcall_test

import (
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/tgcall"
)

// TestCallDeclinedAtOnceRang: a callee that ends the call the moment it
// rings, with missed (what the trunk sends for a PBX's instant 480), is
// seen by the caller as a call that rang and was not answered, never as
// an unreachable callee: the callee's discard waits for its own
// phone.receivedCall, so Telegram has the call ringing before it ends.
// Without that order the two RPCs race and about one call in ten ended
// "unreachable" under -race (TestTrunkTelegramToSIPRejected/480).
func TestCallDeclinedAtOnceRang(t *testing.T) {
	// grace and heidi run gotd's updates manager, as the trunk's accounts
	// do: updates reach the engine in Telegram's order. (Without it gotd
	// hands updates over concurrently, and a caller may still read the
	// discard before the phoneCallWaiting that said the call rang.)
	prev := heidi.onIncoming.Load()
	defer heidi.onIncoming.Store(prev)
	incoming := make(chan *tgcall.Call, 1)
	heidi.incoming(func(c *tgcall.Call) {
		c.HangupWith(tgcall.DiscardMissed)
		incoming <- c
	})
	for i := range 25 {
		out := dial(t, grace, heidi)
		e := ended(t, out, tgcall.CauseNoAnswer, tgcall.DiscardMissed, true)
		if e.Cause != tgcall.CauseNoAnswer {
			t.Fatalf("call %d ended %v: the caller never saw it ring", i, e.Cause)
		}
		onTelegram(t, out.ID(), tgcall.DiscardMissed)
		// heidi's side of the call may still be ending (its receivedCall
		// and discardCall RPCs) when the caller's has: the next call
		// waits for it, or it would find heidi in a call and be declined
		// busy (one call per account) — a race the test, not the
		// engine, had; a faster g^a (wire.Public) made grace's next
		// request arrive soon enough to hit it.
		wait(t, got(t, incoming).Done(), 10*time.Second, "callee end")
	}
}

// released waits until a's engine carries no call.
func released(t *testing.T, a *account) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.engine.ActiveCalls() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still carries a call after 10 s", a.user.FirstName)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
