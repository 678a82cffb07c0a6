package tgcall

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
)

func TestCauseTable(t *testing.T) {
	// Row by row: the SIP status and the discard reason of every cause.
	for _, tt := range []struct {
		cause   Cause
		sip     int
		discard DiscardReason
	}{
		{CauseHangup, 200, DiscardHangup},
		{CauseBusy, 486, DiscardBusy},
		{CauseNoAnswer, 480, DiscardMissed},
		{CauseUnreachable, 480, DiscardMissed},
		{CauseCancelled, 487, DiscardMissed},
		{CauseDisconnected, 480, DiscardDisconnect},
		{CausePrivacy, 403, DiscardNone},
		{CauseBlocked, 603, DiscardNone},
		{CauseOutdated, 488, DiscardNone},
		{CauseUnknownUser, 404, DiscardNone},
		{CauseFloodWait, 503, DiscardNone},
		{CauseProtocol, 488, DiscardDisconnect},
		{CauseInternal, 500, DiscardDisconnect},
		{CauseAnsweredElsewhere, 200, DiscardNone},
	} {
		t.Run(tt.cause.String(), func(t *testing.T) {
			e := &Error{Cause: tt.cause}
			if got := e.SIPStatus(); got != tt.sip {
				t.Errorf("SIPStatus = %d, want %d", got, tt.sip)
			}
			if got := causeTable[tt.cause].discard; got != tt.discard {
				t.Errorf("discard = %v, want %v", got, tt.discard)
			}
		})
	}
	if len(causeTable) != 14 {
		t.Errorf("causeTable has %d rows, the test covers 14", len(causeTable))
	}
}

func TestRPCError(t *testing.T) {
	for _, tt := range []struct {
		err   error
		cause Cause
		rpc   string
		retry time.Duration
	}{
		{tgerr.New(403, "USER_PRIVACY_RESTRICTED"), CausePrivacy, "USER_PRIVACY_RESTRICTED", 0},
		{tgerr.New(403, "USER_IS_BLOCKED"), CauseBlocked, "USER_IS_BLOCKED", 0},
		{tgerr.New(400, "PARTICIPANT_VERSION_OUTDATED"), CauseOutdated, "PARTICIPANT_VERSION_OUTDATED", 0},
		{tgerr.New(400, "CALL_PROTOCOL_LAYER_INVALID"), CauseOutdated, "CALL_PROTOCOL_LAYER_INVALID", 0},
		{tgerr.New(406, "CALL_PROTOCOL_COMPAT_LAYER_INVALID"), CauseOutdated, "CALL_PROTOCOL_COMPAT_LAYER_INVALID", 0},
		{tgerr.New(400, "USER_ID_INVALID"), CauseUnknownUser, "USER_ID_INVALID", 0},
		{tgerr.New(400, "INPUT_USER_DEACTIVATED"), CauseUnknownUser, "INPUT_USER_DEACTIVATED", 0},
		{tgerr.New(420, "FLOOD_WAIT_7"), CauseFloodWait, "FLOOD_WAIT", 7 * time.Second},
		{fmt.Errorf("rpc: %w", tgerr.New(400, "CALL_ALREADY_DECLINED")), CauseBusy, "CALL_ALREADY_DECLINED", 0},
		{tgerr.New(500, "SOMETHING_NEW"), CauseInternal, "SOMETHING_NEW", 0},
		{errors.New("connection reset"), CauseInternal, "", 0},
	} {
		e := rpcError(tt.err)
		if e.Cause != tt.cause || e.RPC != tt.rpc || e.RetryAfter != tt.retry {
			t.Errorf("rpcError(%v) = %v/%q/%v, want %v/%q/%v", tt.err, e.Cause, e.RPC, e.RetryAfter, tt.cause, tt.rpc, tt.retry)
		}
		if !errors.Is(e, tt.err) {
			t.Errorf("rpcError(%v) does not wrap it", tt.err)
		}
	}
}

func TestDiscardReasonRoundTrip(t *testing.T) {
	for _, r := range []DiscardReason{DiscardHangup, DiscardBusy, DiscardMissed, DiscardDisconnect} {
		if got := reasonFromTL(r.tl()); got != r {
			t.Errorf("%v round-trips to %v", r, got)
		}
	}
}
