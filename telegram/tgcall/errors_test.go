package tgcall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestCauseTable(t *testing.T) {
	// Row by row: the name and the discard reason of every cause.
	rows := []struct {
		cause   Cause
		name    string
		discard DiscardReason
	}{
		{CauseHangup, "hangup", DiscardHangup},
		{CauseBusy, "busy", DiscardBusy},
		{CauseNoAnswer, "no-answer", DiscardMissed},
		{CauseUnreachable, "unreachable", DiscardMissed},
		{CauseCancelled, "cancelled", DiscardMissed},
		{CauseDisconnected, "disconnected", DiscardDisconnect},
		{CausePrivacy, "privacy", DiscardNone},
		{CauseBlocked, "blocked", DiscardNone},
		{CauseOutdated, "outdated", DiscardNone},
		{CauseUnknownUser, "unknown-user", DiscardNone},
		{CauseFloodWait, "flood-wait", DiscardNone},
		{CauseProtocol, "protocol", DiscardDisconnect},
		{CauseInternal, "internal", DiscardDisconnect},
		{CauseAnsweredElsewhere, "answered-elsewhere", DiscardNone},
		{CausePeerFlood, "peer-flood", DiscardNone},
		{CauseTimeout, "timeout", DiscardDisconnect},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cause.String(); got != tt.name {
				t.Errorf("String = %q, want %q", got, tt.name)
			}
			if got := causeTable[tt.cause].discard; got != tt.discard {
				t.Errorf("discard = %v, want %v", got, tt.discard)
			}
		})
	}
	if len(causeTable) != len(rows) {
		t.Errorf("causeTable has %d rows, the test covers %d", len(causeTable), len(rows))
	}
	if got := Cause(99).String(); got != "cause(99)" {
		t.Errorf("unknown cause = %q", got)
	}
}

type netTimeout struct{}

func (netTimeout) Error() string   { return "i/o timeout" }
func (netTimeout) Timeout() bool   { return true }
func (netTimeout) Temporary() bool { return true }

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
		{tgerr.New(400, "PEER_FLOOD"), CausePeerFlood, "PEER_FLOOD", 0},
		{fmt.Errorf("rpc: %w", tgerr.New(400, "CALL_ALREADY_DECLINED")), CauseBusy, "CALL_ALREADY_DECLINED", 0},
		{tgerr.New(500, "SOMETHING_NEW"), CauseInternal, "SOMETHING_NEW", 0},
		{fmt.Errorf("requestCall: %w", context.DeadlineExceeded), CauseTimeout, "", 0},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), CauseTimeout, "", 0},
		{netTimeout{}, CauseTimeout, "", 0},
		{context.Canceled, CauseInternal, "", 0},
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
	// An *Error passes through unchanged.
	in := &Error{Cause: CauseProtocol, Err: ErrKeyMismatch}
	if got := rpcError(fmt.Errorf("x: %w", in)); got != in {
		t.Errorf("rpcError re-classified %v as %v", in, got)
	}
}

// TestRPCCauses pins every RPC error type tgcall knows, row by row.
func TestRPCCauses(t *testing.T) {
	want := map[string]Cause{
		"USER_PRIVACY_RESTRICTED":            CausePrivacy,
		"USER_IS_BLOCKED":                    CauseBlocked,
		"PARTICIPANT_VERSION_OUTDATED":       CauseOutdated,
		"CALL_PROTOCOL_LAYER_INVALID":        CauseOutdated,
		"CALL_PROTOCOL_COMPAT_LAYER_INVALID": CauseOutdated,
		"CALL_PROTOCOL_FLAGS_INVALID":        CauseProtocol,
		"USER_ID_INVALID":                    CauseUnknownUser,
		"INPUT_USER_DEACTIVATED":             CauseUnknownUser,
		"USER_DELETED":                       CauseUnknownUser,
		"PEER_ID_INVALID":                    CauseUnknownUser,
		"CALL_ALREADY_DECLINED":              CauseBusy,
		"CALL_ALREADY_ACCEPTED":              CauseAnsweredElsewhere,
		"CALL_PEER_INVALID":                  CauseDisconnected,
		"CALL_OCCUPY_FAILED":                 CauseInternal,
		"PARTICIPANT_CALL_FAILED":            CauseDisconnected,
		"PEER_FLOOD":                         CausePeerFlood,
	}
	for rpc, c := range want {
		if got := rpcError(tgerr.New(400, rpc)).Cause; got != c {
			t.Errorf("%s = %v, want %v", rpc, got, c)
		}
	}
	if len(rpcCauses) != len(want) {
		t.Errorf("rpcCauses has %d rows, the test covers %d", len(rpcCauses), len(want))
	}
}

func TestDiscardReasonRoundTrip(t *testing.T) {
	for _, r := range []DiscardReason{DiscardHangup, DiscardBusy, DiscardMissed, DiscardDisconnect} {
		if got := reasonFromTL(r.tl()); got != r {
			t.Errorf("%v round-trips to %v", r, got)
		}
	}
	// DiscardNone goes out as hangup; an unknown reason comes in as none.
	if _, ok := DiscardNone.tl().(*tg.PhoneCallDiscardReasonHangup); !ok {
		t.Errorf("DiscardNone sends %T", DiscardNone.tl())
	}
	if got := reasonFromTL(nil); got != DiscardNone {
		t.Errorf("nil reason reads as %v", got)
	}
}

func TestDiscardReasonString(t *testing.T) {
	for r, s := range map[DiscardReason]string{DiscardNone: "none", DiscardHangup: "hangup", DiscardBusy: "busy", DiscardMissed: "missed", DiscardDisconnect: "disconnect"} {
		if got := r.String(); got != s {
			t.Errorf("%d.String() = %q, want %q", int(r), got, s)
		}
	}
}

func TestErrorString(t *testing.T) {
	for _, tt := range []struct {
		e    *Error
		want string
	}{
		{&Error{Cause: CauseHangup, Reason: DiscardHangup, Remote: true}, "call ended: hangup (discard hangup by peer)"},
		{&Error{Cause: CausePeerFlood, RPC: "PEER_FLOOD"}, "call ended: peer-flood: PEER_FLOOD"},
		{&Error{Cause: CauseTimeout, Err: context.DeadlineExceeded}, "call ended: timeout: context deadline exceeded"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
