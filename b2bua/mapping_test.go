package b2bua

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// TestOutcomeTable pins every row: SIP status, Reason and Telegram discard.
func TestOutcomeTable(t *testing.T) {
	rows := []struct {
		o       Outcome
		name    string
		status  int
		reason  string
		discard tgcall.DiscardReason
	}{
		{OutcomeHangup, "hangup", 480, `Q.850;cause=16;text="Normal call clearing"`, tgcall.DiscardHangup},
		{OutcomeBusy, "busy", 486, `Q.850;cause=17;text="User busy"`, tgcall.DiscardBusy},
		{OutcomeDeclined, "declined", 603, `Q.850;cause=21;text="Call rejected"`, tgcall.DiscardBusy},
		{OutcomeNoAnswer, "no-answer", 480, `Q.850;cause=19;text="No answer from user"`, tgcall.DiscardMissed},
		{OutcomeUnreachable, "unreachable", 480, `Q.850;cause=20;text="Subscriber absent"`, tgcall.DiscardMissed},
		{OutcomeServerTimeout, "server-timeout", 408, `Q.850;cause=102;text="Telegram did not answer"`, tgcall.DiscardMissed},
		{OutcomeCancelled, "cancelled", 487, `Q.850;cause=16;text="Caller cancelled"`, tgcall.DiscardMissed},
		{OutcomeAnsweredElsewhere, "answered-elsewhere", 487, `SIP;cause=200;text="Call completed elsewhere"`, tgcall.DiscardHangup},
		{OutcomeDisconnected, "disconnected", 480, `Q.850;cause=38;text="Telegram peer disconnected"`, tgcall.DiscardDisconnect},
		{OutcomePrivacy, "privacy", 403, `Q.850;cause=21;text="Privacy settings forbid the call"`, tgcall.DiscardBusy},
		{OutcomeBlocked, "blocked", 403, `Q.850;cause=21;text="Blocked by the user"`, tgcall.DiscardBusy},
		{OutcomeUnknownUser, "unknown-user", 404, `Q.850;cause=1;text="Not a Telegram user"`, tgcall.DiscardHangup},
		{OutcomeNoRoute, "no-route", 404, `Q.850;cause=3;text="No route to destination"`, tgcall.DiscardHangup},
		{OutcomeInvalidNumber, "invalid-number", 484, `Q.850;cause=28;text="Invalid number format"`, tgcall.DiscardHangup},
		{OutcomeIncompatible, "incompatible", 488, `Q.850;cause=88;text="Peer app outdated"`, tgcall.DiscardDisconnect},
		{OutcomeProtocol, "protocol", 488, `Q.850;cause=111;text="Telegram protocol error"`, tgcall.DiscardDisconnect},
		{OutcomeFloodWait, "flood-wait", 503, `Q.850;cause=42;text="Telegram flood wait"`, tgcall.DiscardHangup},
		{OutcomePeerFlood, "peer-flood", 503, `Q.850;cause=42;text="Telegram peer flood limit"`, tgcall.DiscardHangup},
		{OutcomeNoAccount, "no-account", 503, `Q.850;cause=34;text="No Telegram account free"`, tgcall.DiscardBusy},
		{OutcomeOverload, "overload", 503, `Q.850;cause=42;text="Overloaded"`, tgcall.DiscardBusy},
		{OutcomeShuttingDown, "shutting-down", 503, `Q.850;cause=41;text="Shutting down"`, tgcall.DiscardBusy},
		{OutcomeInternal, "internal", 500, `Q.850;cause=127;text="Gateway failure"`, tgcall.DiscardDisconnect},
	}
	if len(rows) != int(numOutcomes) {
		t.Fatalf("test pins %d rows, table has %d", len(rows), numOutcomes)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if got := r.o.String(); got != r.name {
				t.Errorf("String = %q, want %q", got, r.name)
			}
			if got := r.o.SIPStatus(); got != r.status {
				t.Errorf("SIPStatus = %d, want %d", got, r.status)
			}
			if got := r.o.Reason().String(); got != r.reason {
				t.Errorf("Reason = %s, want %s", got, r.reason)
			}
			if got := r.o.Discard(); got != r.discard {
				t.Errorf("Discard = %s, want %s", got, r.discard)
			}
		})
	}
}

// TestOnlyCapacityIsRetryable checks the 5xx rule: a load balancer may
// retry another instance only when this one cannot take the call.
func TestOnlyCapacityIsRetryable(t *testing.T) {
	capacity := map[Outcome]bool{OutcomeFloodWait: true, OutcomePeerFlood: true, OutcomeNoAccount: true, OutcomeOverload: true, OutcomeShuttingDown: true}
	for o := Outcome(0); o < numOutcomes; o++ {
		if got := o.Retryable(); got != capacity[o] {
			t.Errorf("%s: Retryable = %v, want %v", o, got, capacity[o])
		}
		st := o.SIPStatus()
		if st >= 500 && st < 600 && !capacity[o] && o != OutcomeInternal {
			t.Errorf("%s: user outcome mapped to %d", o, st)
		}
	}
	if Outcome(99).String() != "outcome(99)" || Outcome(-1).SIPStatus() != 500 {
		t.Error("out-of-range outcome is not internal")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestSIPEndForTelegram maps each way a Telegram call ends to the SIP leg.
func TestSIPEndForTelegram(t *testing.T) {
	te := func(c tgcall.Cause) *tgcall.Error { return &tgcall.Error{Cause: c} }
	cases := []struct {
		name   string
		err    error
		status int
		q850   int
		retry  time.Duration
	}{
		{"nil is a hang-up", nil, 480, 16, 0},
		{"hangup", te(tgcall.CauseHangup), 480, 16, 0},
		{"busy", &tgcall.Error{Cause: tgcall.CauseBusy, Reason: tgcall.DiscardBusy, Remote: true}, 486, 17, 0},
		{"declined with hangup", &tgcall.Error{Cause: tgcall.CauseBusy, Reason: tgcall.DiscardHangup, Remote: true}, 603, 21, 0},
		{"ring timeout", &tgcall.Error{Cause: tgcall.CauseNoAnswer, Reason: tgcall.DiscardMissed}, 480, 19, 0},
		{"never received", &tgcall.Error{Cause: tgcall.CauseUnreachable, Reason: tgcall.DiscardMissed}, 480, 20, 0},
		{"requestCall deadline", &tgcall.Error{Cause: tgcall.CauseInternal, Err: fmt.Errorf("rpc: %w", context.DeadlineExceeded)}, 408, 102, 0},
		{"socket timeout", &tgcall.Error{Cause: tgcall.CauseInternal, Err: timeoutErr{}}, 408, 102, 0},
		{"bare deadline", os.ErrDeadlineExceeded, 408, 102, 0},
		{"cancelled", te(tgcall.CauseCancelled), 487, 16, 0},
		{"disconnected", &tgcall.Error{Cause: tgcall.CauseDisconnected, Reason: tgcall.DiscardDisconnect, Remote: true}, 480, 38, 0},
		{"privacy", &tgcall.Error{Cause: tgcall.CausePrivacy, RPC: "USER_PRIVACY_RESTRICTED"}, 403, 21, 0},
		{"blocked", &tgcall.Error{Cause: tgcall.CauseBlocked, RPC: "USER_IS_BLOCKED"}, 403, 21, 0},
		{"outdated", &tgcall.Error{Cause: tgcall.CauseOutdated, RPC: "PARTICIPANT_VERSION_OUTDATED"}, 488, 88, 0},
		{"unknown user", &tgcall.Error{Cause: tgcall.CauseUnknownUser, RPC: "USER_ID_INVALID"}, 404, 1, 0},
		{"unknown username", &tgcall.Error{Cause: tgcall.CauseInternal, RPC: "USERNAME_NOT_OCCUPIED"}, 404, 1, 0},
		{"not a telegram user", &tgcall.Error{Cause: tgcall.CauseInternal, RPC: "PHONE_NOT_OCCUPIED"}, 404, 1, 0},
		{"bad phone", &tgcall.Error{Cause: tgcall.CauseInternal, RPC: "PHONE_NUMBER_INVALID"}, 484, 28, 0},
		{"protocol", &tgcall.Error{Cause: tgcall.CauseProtocol, Err: tgcall.ErrKeyMismatch}, 488, 111, 0},
		{"flood wait rounds up", &tgcall.Error{Cause: tgcall.CauseFloodWait, RPC: "FLOOD_WAIT", RetryAfter: 41500 * time.Millisecond}, 503, 42, 42 * time.Second},
		{"peer flood (account package)", &tgcall.Error{Cause: tgcall.CauseInternal, RPC: "PEER_FLOOD"}, 503, 42, 0},
		{"peer flood", &tgcall.Error{Cause: tgcall.CausePeerFlood, RPC: "PEER_FLOOD"}, 503, 42, 0},
		{"telegram timeout", &tgcall.Error{Cause: tgcall.CauseTimeout, Err: fmt.Errorf("requestCall: %w", context.DeadlineExceeded)}, 408, 102, 0},
		{"telegram timeout without its error", te(tgcall.CauseTimeout), 408, 102, 0},
		{"answered elsewhere", te(tgcall.CauseAnsweredElsewhere), 487, 200, 0},
		{"internal", &tgcall.Error{Cause: tgcall.CauseInternal, Err: errors.New("media: boom")}, 500, 127, 0},
		{"unknown cause", te(tgcall.Cause(999)), 500, 127, 0},
		{"account busy", fmt.Errorf("dial: %w", tgcall.ErrBusy), 503, 34, 0},
		{"client closed", tgcall.ErrClosed, 503, 41, 0},
		{"no free account", fmt.Errorf("lease: %w", &NoFreeAccountError{RetryAfter: 90 * time.Second}), 503, 34, 90 * time.Second},
		{"no route", fmt.Errorf("%w: x", ErrNoRoute), 404, 3, 0},
		{"invalid number", fmt.Errorf("%w: x", ErrInvalidNumber), 484, 28, 0},
		{"overload", ErrOverload, 503, 42, 0},
		{"shutting down", ErrShuttingDown, 503, 41, 0},
		{"other error", errors.New("boom"), 500, 127, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := SIPEndFor(c.err)
			if end.Status != c.status || end.Reason.Cause != c.q850 || end.RetryAfter != c.retry {
				t.Errorf("SIPEndFor = %d %s retry %s (%s), want %d cause %d retry %s",
					end.Status, end.Reason, end.RetryAfter, end.Outcome, c.status, c.q850, c.retry)
			}
		})
	}
}

// TestFloodWaitFromRPC runs a real gotd FLOOD_WAIT error through tgcall's
// classification as the Telegram leg reports it.
func TestFloodWaitFromRPC(t *testing.T) {
	rpc := tgerr.New(420, "FLOOD_WAIT_30")
	d, ok := tgerr.AsFloodWait(rpc)
	if !ok {
		t.Fatal("gotd does not read FLOOD_WAIT_30")
	}
	end := SIPEndFor(&tgcall.Error{Cause: tgcall.CauseFloodWait, RPC: "FLOOD_WAIT", RetryAfter: d, Err: rpc})
	if end.Status != 503 || end.RetryAfter != 30*time.Second {
		t.Errorf("got %d retry %s, want 503 retry 30s", end.Status, end.RetryAfter)
	}
}

// TestDiscardForSIP maps how the PBX ended a Telegram → SIP call to the
// reason we discard the Telegram call with.
func TestDiscardForSIP(t *testing.T) {
	rej := func(status int) error {
		return &sip.CallError{Status: status, Cause: sip.CauseRejected, Remote: true}
	}
	withReason := func(status int, r sip.Reason) error {
		return &sip.CallError{Status: status, Cause: sip.CauseRejected, Reason: r, Remote: true}
	}
	cases := []struct {
		name    string
		err     error
		outcome Outcome
		discard tgcall.DiscardReason
	}{
		{"nil", nil, OutcomeHangup, tgcall.DiscardHangup},
		{"486 busy", rej(486), OutcomeBusy, tgcall.DiscardBusy},
		{"600 busy everywhere", rej(600), OutcomeBusy, tgcall.DiscardBusy},
		{"603 decline", rej(603), OutcomeDeclined, tgcall.DiscardBusy},
		{"607 unwanted", rej(607), OutcomeDeclined, tgcall.DiscardBusy},
		{"699 other 6xx", rej(699), OutcomeDeclined, tgcall.DiscardBusy},
		{"480 unavailable", rej(480), OutcomeNoAnswer, tgcall.DiscardMissed},
		{"408 timeout", rej(408), OutcomeNoAnswer, tgcall.DiscardMissed},
		{"487 terminated", rej(487), OutcomeNoAnswer, tgcall.DiscardMissed},
		{"404 not found", rej(404), OutcomeUnknownUser, tgcall.DiscardHangup},
		{"484 incomplete", rej(484), OutcomeUnknownUser, tgcall.DiscardHangup},
		{"604 nowhere", rej(604), OutcomeUnknownUser, tgcall.DiscardHangup},
		{"403 forbidden", rej(403), OutcomePrivacy, tgcall.DiscardBusy},
		{"488 media", rej(488), OutcomeIncompatible, tgcall.DiscardDisconnect},
		{"606 not acceptable", rej(606), OutcomeIncompatible, tgcall.DiscardDisconnect},
		{"500 server error", rej(500), OutcomeInternal, tgcall.DiscardDisconnect},
		{"503 overloaded PBX", rej(503), OutcomeInternal, tgcall.DiscardDisconnect},
		{"420 other 4xx", rej(420), OutcomeInternal, tgcall.DiscardDisconnect},
		{"480 with Q.850 17 is busy", withReason(480, sip.Reason{Protocol: "Q.850", Cause: 17}), OutcomeBusy, tgcall.DiscardBusy},
		{"603 with Q.850 19 is no answer", withReason(603, sip.Reason{Protocol: "Q.850", Cause: 19}), OutcomeNoAnswer, tgcall.DiscardMissed},
		{"unknown Q.850 falls back to status", withReason(486, sip.Reason{Protocol: "Q.850", Cause: 95}), OutcomeBusy, tgcall.DiscardBusy},
		{"SIP reason cause", withReason(480, sip.Reason{Protocol: "SIP", Cause: 486}), OutcomeBusy, tgcall.DiscardBusy},
		{"BYE", &sip.CallError{Status: 200, Cause: sip.CauseNormal, Remote: true}, OutcomeHangup, tgcall.DiscardHangup},
		{"BYE Q.850 16", &sip.CallError{Status: 200, Cause: sip.CauseNormal, Reason: sip.Reason{Protocol: "Q.850", Cause: 16}}, OutcomeHangup, tgcall.DiscardHangup},
		{"BYE Q.850 17 after answer is still a hang-up", &sip.CallError{Status: 200, Cause: sip.CauseNormal, Reason: sip.Reason{Protocol: "Q.850", Cause: 17}}, OutcomeHangup, tgcall.DiscardHangup},
		{"BYE Q.850 38 is a failure", &sip.CallError{Status: 200, Cause: sip.CauseNormal, Reason: sip.Reason{Protocol: "Q.850", Cause: 38}}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"CANCEL from the SIP caller", &sip.CallError{Status: 487, Cause: sip.CauseCancelled, Remote: true}, OutcomeCancelled, tgcall.DiscardMissed},
		{"CANCEL completed elsewhere", &sip.CallError{Status: 487, Cause: sip.CauseCancelled, Reason: sip.Reason{Protocol: "SIP", Cause: 200, Text: "Call completed elsewhere"}}, OutcomeAnsweredElsewhere, tgcall.DiscardHangup},
		{"transport", &sip.CallError{Cause: sip.CauseTransport}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"ACK timeout", &sip.CallError{Status: 200, Cause: sip.CauseACKTimeout}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"session expired", &sip.CallError{Status: 200, Cause: sip.CauseSessionExpired}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"dialog gone (481 to our re-INVITE)", &sip.CallError{Status: 481, Cause: sip.CauseDialogGone, Remote: true}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"outbound no answer", &sip.CallError{Status: 487, Cause: sip.CauseTimeout}, OutcomeNoAnswer, tgcall.DiscardMissed},
		{"shutdown", &sip.CallError{Status: 200, Cause: sip.CauseShutdown}, OutcomeHangup, tgcall.DiscardHangup},
		{"no status", &sip.CallError{Cause: sip.Cause("other")}, OutcomeDisconnected, tgcall.DiscardDisconnect},
		{"wrapped", fmt.Errorf("leg: %w", rej(486)), OutcomeBusy, tgcall.DiscardBusy},
		{"caller rejected by policy", fmt.Errorf("%w: x", ErrCallerRejected), OutcomeDeclined, tgcall.DiscardBusy},
		{"no route for the caller", fmt.Errorf("%w: x", ErrNoRoute), OutcomeNoRoute, tgcall.DiscardHangup},
		{"other error", errors.New("dial: connection refused"), OutcomeInternal, tgcall.DiscardDisconnect},
		{"account already in a call", fmt.Errorf("%w: a", ErrAccountBusy), OutcomeNoAccount, tgcall.DiscardBusy},
		{"draining", ErrShuttingDown, OutcomeShuttingDown, tgcall.DiscardBusy},
		{"lower-case q.850", withReason(480, sip.Reason{Protocol: "q.850", Cause: 17}), OutcomeBusy, tgcall.DiscardBusy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ce *sip.CallError
			if errors.As(c.err, &ce) {
				if got := ClassifySIP(ce); got != c.outcome {
					t.Errorf("ClassifySIP = %s, want %s", got, c.outcome)
				}
			} else if got := Classify(c.err); got != c.outcome {
				t.Errorf("Classify = %s, want %s", got, c.outcome)
			}
			if got := DiscardFor(c.err); got != c.discard {
				t.Errorf("DiscardFor = %s, want %s", got, c.discard)
			}
		})
	}
	if ClassifySIP(nil) != OutcomeHangup {
		t.Error("ClassifySIP(nil) is not a hang-up")
	}
}

// TestRoundTrip: the outcome the table sends to the PBX reads back as the
// same class of outcome when a PBX sends it to us, for the user outcomes a
// PBX can produce.
func TestRoundTrip(t *testing.T) {
	for _, o := range []Outcome{OutcomeBusy, OutcomeDeclined, OutcomeNoAnswer, OutcomeUnknownUser, OutcomeIncompatible} {
		ce := &sip.CallError{Status: o.SIPStatus(), Cause: sip.CauseRejected, Reason: o.Reason(), Remote: true}
		if got := ClassifySIP(ce); got != o {
			t.Errorf("%s → %d %s → %s", o, o.SIPStatus(), o.Reason(), got)
		}
	}
}

// TestClassifyEveryTelegramCause pins, row by row, the outcome, SIP status
// and Q.850 cause of every tgcall.Cause (the SIP side of a Telegram ending
// is decided here, never in tgcall), and fails when tgcall gains a cause
// this table does not name.
func TestClassifyEveryTelegramCause(t *testing.T) {
	rows := []struct {
		cause   tgcall.Cause
		outcome Outcome
		status  int
		q850    int
	}{
		{tgcall.CauseHangup, OutcomeHangup, 480, 16},
		{tgcall.CauseBusy, OutcomeBusy, 486, 17},
		{tgcall.CauseNoAnswer, OutcomeNoAnswer, 480, 19},
		{tgcall.CauseUnreachable, OutcomeUnreachable, 480, 20},
		{tgcall.CauseCancelled, OutcomeCancelled, 487, 16},
		{tgcall.CauseDisconnected, OutcomeDisconnected, 480, 38},
		{tgcall.CausePrivacy, OutcomePrivacy, 403, 21},
		{tgcall.CauseBlocked, OutcomeBlocked, 403, 21},
		{tgcall.CauseOutdated, OutcomeIncompatible, 488, 88},
		{tgcall.CauseUnknownUser, OutcomeUnknownUser, 404, 1},
		{tgcall.CauseFloodWait, OutcomeFloodWait, 503, 42},
		{tgcall.CauseProtocol, OutcomeProtocol, 488, 111},
		{tgcall.CauseInternal, OutcomeInternal, 500, 127},
		{tgcall.CauseAnsweredElsewhere, OutcomeAnsweredElsewhere, 487, 200},
		{tgcall.CausePeerFlood, OutcomePeerFlood, 503, 42},
		{tgcall.CauseTimeout, OutcomeServerTimeout, 408, 102},
	}
	for _, r := range rows {
		t.Run(r.cause.String(), func(t *testing.T) {
			end := SIPEndFor(&tgcall.Error{Cause: r.cause})
			if end.Outcome != r.outcome || end.Status != r.status || end.Reason.Cause != r.q850 {
				t.Errorf("got %s %d cause %d, want %s %d cause %d",
					end.Outcome, end.Status, end.Reason.Cause, r.outcome, r.status, r.q850)
			}
		})
	}
	// tgcall names every cause it has; an unnamed one prints as cause(n).
	known := 0
	for c := tgcall.Cause(0); c < 256; c++ {
		if !strings.HasPrefix(c.String(), "cause(") {
			known++
		}
	}
	if known != len(rows) {
		t.Errorf("tgcall has %d causes, this table maps %d", known, len(rows))
	}
}
