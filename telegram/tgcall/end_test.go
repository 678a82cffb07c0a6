package tgcall

import (
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// TestDiscardedError: how a phoneCallDiscarded from Telegram is classified,
// row by row (tdlib CallDiscardReason, tdesktop Call::handleUpdate).
func TestDiscardedError(t *testing.T) {
	discard := func(r tg.PhoneCallDiscardReasonClass, dur int) *tg.PhoneCallDiscarded {
		d := &tg.PhoneCallDiscarded{ID: 1}
		if r != nil {
			d.SetReason(r)
		}
		if dur > 0 {
			d.SetDuration(dur)
		}
		return d
	}
	for _, tt := range []struct {
		name     string
		outgoing bool
		state    state
		reason   tg.PhoneCallDiscardReasonClass
		cause    Cause
	}{
		{"active, peer hangs up", true, stateActive, &tg.PhoneCallDiscardReasonHangup{}, CauseHangup},
		{"active, peer's network failed", false, stateActive, &tg.PhoneCallDiscardReasonDisconnect{}, CauseDisconnected},
		{"outgoing declined", true, stateRinging, &tg.PhoneCallDiscardReasonBusy{}, CauseBusy},
		{"outgoing declined with hangup", true, stateRinging, &tg.PhoneCallDiscardReasonHangup{}, CauseBusy},
		{"outgoing rang out", true, stateRinging, &tg.PhoneCallDiscardReasonMissed{}, CauseNoAnswer},
		{"outgoing never reached the callee", true, stateWaiting, &tg.PhoneCallDiscardReasonMissed{}, CauseUnreachable},
		{"outgoing failed while connecting", true, stateConnecting, &tg.PhoneCallDiscardReasonDisconnect{}, CauseDisconnected},
		{"incoming, caller gave up", false, stateRinging, &tg.PhoneCallDiscardReasonMissed{}, CauseNoAnswer},
		{"incoming, answered on another device", false, stateRinging, nil, CauseAnsweredElsewhere},
		{"incoming, another device answered first", false, stateAccepting, nil, CauseAnsweredElsewhere},
		{"incoming, third-party caller hangs up before the answer", false, stateRinging, &tg.PhoneCallDiscardReasonHangup{}, CauseCancelled},
		{"incoming, caller's call failed", false, stateRinging, &tg.PhoneCallDiscardReasonDisconnect{}, CauseCancelled},
		{"incoming, declined on another device", false, stateRinging, &tg.PhoneCallDiscardReasonBusy{}, CauseBusy},
		{"incoming, accepted, then failed", false, stateAccepting, &tg.PhoneCallDiscardReasonDisconnect{}, CauseDisconnected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			call := &Call{outgoing: tt.outgoing, state: tt.state}
			e := call.discardedError(discard(tt.reason, 42))
			if e.Cause != tt.cause || !e.Remote || e.Duration != 42*time.Second {
				t.Errorf("got %v remote=%v duration=%v, want %v", e.Cause, e.Remote, e.Duration, tt.cause)
			}
			want := DiscardNone
			if tt.reason != nil {
				want = reasonFromTL(tt.reason)
			}
			if e.Reason != want {
				t.Errorf("reason %v, want %v", e.Reason, want)
			}
		})
	}
}
