package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// This file is the ONLY place where Telegram call outcomes and SIP statuses
// meet. Nothing else in tgsip may pick a SIP status or a Telegram discard
// reason for a call outcome: it classifies the outcome into an Outcome here
// and reads the row. The legs know only their own terms: telegram/tgcall a
// Cause and a DiscardReason, sip a CallError (docs/routing.md).
//
// Principles:
//   - 5xx only when this instance cannot take the call (no free account,
//     flood wait, overload, shutting down), so that a SIP load balancer
//     (Kamailio dispatcher, OpenSIPS load_balancer) retries another
//     instance; what the called user did is 4xx/6xx (RFC 3261 §21.4-21.6).
//   - Every SIP ending carries an RFC 3326 Reason header with the ITU-T
//     Q.850 cause, in BYE and CANCEL (RFC 3326 §2) and in final responses
//     (RFC 6432). The Q.850 values follow the ISUP → SIP table of RFC 3398
//     §7.2.4.1 wherever our SIP status agrees with it; where we choose
//     another status the row says why.
//   - Telegram has four discard reasons (phoneCallDiscardReason*): hangup,
//     busy, missed, disconnect. tdesktop sends busy both when the user is in
//     another call and when they press Decline (calls_call.cpp
//     Call::hangup: "declined ? phoneCallDiscardReasonBusy"), and tdlib
//     names busy "callDiscardReasonDeclined" (CallDiscardReason.cpp), so a
//     decline usually reaches SIP as 486; it is 603 only when the peer
//     discarded an unanswered call with hangup.

// Outcome is how a trunk call ended, in the terms both legs are mapped from.
type Outcome int

// Outcomes. Each has one row in outcomeTable.
const (
	// OutcomeHangup is a normal end of an answered call.
	OutcomeHangup Outcome = iota
	// OutcomeBusy is a called user who is busy (Telegram discard busy).
	OutcomeBusy
	// OutcomeDeclined is a called user who rejected the call.
	OutcomeDeclined
	// OutcomeNoAnswer is a call that rang until the ring timeout.
	OutcomeNoAnswer
	// OutcomeUnreachable is a Telegram user whose devices never acknowledged
	// the call (no phone.receivedCall before call_receive_timeout_ms).
	OutcomeUnreachable
	// OutcomeServerTimeout is Telegram's servers not answering our request.
	OutcomeServerTimeout
	// OutcomeCancelled is a call the caller gave up before it was answered.
	OutcomeCancelled
	// OutcomeAnsweredElsewhere is an incoming Telegram call taken by another
	// device of the account.
	OutcomeAnsweredElsewhere
	// OutcomeDisconnected is a call whose media or signaling broke.
	OutcomeDisconnected
	// OutcomePrivacy is a Telegram user whose privacy settings forbid the
	// call (USER_PRIVACY_RESTRICTED), or a PBX answering 403.
	OutcomePrivacy
	// OutcomeBlocked is a Telegram user who blocked the account (USER_IS_BLOCKED).
	OutcomeBlocked
	// OutcomeUnknownUser is a peer that does not exist: not a Telegram user,
	// unknown username, deleted account; or an unknown extension on the PBX.
	OutcomeUnknownUser
	// OutcomeNoRoute is a called number no routing rule accepts.
	OutcomeNoRoute
	// OutcomeInvalidNumber is a called number that is not a valid number.
	OutcomeInvalidNumber
	// OutcomeIncompatible is a peer whose app is too old for the call
	// (PARTICIPANT_VERSION_OUTDATED) or a PBX refusing our media (488).
	OutcomeIncompatible
	// OutcomeProtocol is a peer that chose what we cannot honour or failed
	// the key verification.
	OutcomeProtocol
	// OutcomeFloodWait is Telegram refusing the account for a while (FLOOD_WAIT_n).
	OutcomeFloodWait
	// OutcomePeerFlood is Telegram limiting calls to new peers (PEER_FLOOD).
	OutcomePeerFlood
	// OutcomeNoAccount is no Telegram account free to place the call.
	OutcomeNoAccount
	// OutcomeOverload is this instance refusing calls to protect itself.
	OutcomeOverload
	// OutcomeShuttingDown is this instance draining before it stops.
	OutcomeShuttingDown
	// OutcomeInternal is a failure on our side.
	OutcomeInternal
	numOutcomes
)

// Q.850 cause values used below (ITU-T Q.850 Table 1).
const (
	q850Unallocated        = 1
	q850NoRoute            = 3
	q850NormalClearing     = 16
	q850UserBusy           = 17
	q850NoUserResponding   = 18
	q850NoAnswer           = 19
	q850SubscriberAbsent   = 20
	q850CallRejected       = 21
	q850NumberChanged      = 22
	q850InvalidNumber      = 28
	q850NormalUnspecified  = 31
	q850NoCircuit          = 34
	q850NetworkOutOfOrder  = 38
	q850TemporaryFailure   = 41
	q850Congestion         = 42
	q850ResourceUnavail    = 47
	q850BearerNotImpl      = 65
	q850ServiceNotImpl     = 79
	q850Incompatible       = 88
	q850RecoveryOnTimer    = 102
	q850ProtocolError      = 111
	q850InterworkingUnspec = 127
)

// outcomeRow is one row of the table.
type outcomeRow struct {
	name string
	// status is the SIP final response for an INVITE not yet answered. An
	// answered call always ends with BYE carrying the Reason instead.
	status int
	// reason is the RFC 3326 Reason header value.
	reason sip.Reason
	// discard is what we send to Telegram when the outcome comes from the
	// SIP side (phone.discardCall reason).
	discard tgcall.DiscardReason
}

func q850(cause int, text string) sip.Reason {
	return sip.Reason{Protocol: "Q.850", Cause: cause, Text: text}
}

// outcomeTable is the mapping. Row by row (RFC 3398 §7.2.4.1 is ISUP → SIP,
// §8.2.6.1 SIP → ISUP):
var outcomeTable = [numOutcomes]outcomeRow{
	// 16 normal clearing → BYE (RFC 3398 §7.2.4.1 maps 16 to no response).
	// 480 only if the SIP leg was somehow still unanswered.
	OutcomeHangup: {"hangup", 480, q850(q850NormalClearing, "Normal call clearing"), tgcall.DiscardHangup},
	// 17 ↔ 486 both ways in RFC 3398.
	OutcomeBusy: {"busy", 486, q850(q850UserBusy, "User busy"), tgcall.DiscardBusy},
	// 603 → 21 (RFC 3398 §8.2.6.1); tdesktop declines with busy.
	OutcomeDeclined: {"declined", 603, q850(q850CallRejected, "Call rejected"), tgcall.DiscardBusy},
	// 19 → 480 (RFC 3398 §7.2.4.1); Telegram's own word is "missed".
	OutcomeNoAnswer: {"no-answer", 480, q850(q850NoAnswer, "No answer from user"), tgcall.DiscardMissed},
	// 20 → 480 (RFC 3398 §7.2.4.1).
	OutcomeUnreachable: {"unreachable", 480, q850(q850SubscriberAbsent, "Subscriber absent"), tgcall.DiscardMissed},
	// 408 → 102 (RFC 3398 §8.2.6.1). RFC 3398 would send 504 for 102;
	// we send 408 because the request, not this instance, failed.
	OutcomeServerTimeout: {"server-timeout", 408, q850(q850RecoveryOnTimer, "Telegram did not answer"), tgcall.DiscardMissed},
	// ISDN clears an abandoned call with 16; the INVITE gets 487
	// (RFC 3261 §9.2).
	OutcomeCancelled: {"cancelled", 487, q850(q850NormalClearing, "Caller cancelled"), tgcall.DiscardMissed},
	// RFC 3326 §2's own example: CANCEL with `SIP;cause=200;text="Call
	// completed elsewhere"` so the PBX logs no missed call.
	OutcomeAnsweredElsewhere: {"answered-elsewhere", 487, sip.Reason{Protocol: "SIP", Cause: 200, Text: "Call completed elsewhere"}, tgcall.DiscardHangup},
	// 38 network out of order. RFC 3398 maps 38 → 503, but a broken call
	// with one peer is no reason for a load balancer to fail over; on an
	// answered call it is a BYE anyway.
	OutcomeDisconnected: {"disconnected", 480, q850(q850NetworkOutOfOrder, "Telegram peer disconnected"), tgcall.DiscardDisconnect},
	// 21 ↔ 403 (RFC 3398 both ways). Telegram shows the caller "declined".
	OutcomePrivacy: {"privacy", 403, q850(q850CallRejected, "Privacy settings forbid the call"), tgcall.DiscardBusy},
	OutcomeBlocked: {"blocked", 403, q850(q850CallRejected, "Blocked by the user"), tgcall.DiscardBusy},
	// 1 ↔ 404 (RFC 3398 both ways).
	OutcomeUnknownUser: {"unknown-user", 404, q850(q850Unallocated, "Not a Telegram user"), tgcall.DiscardHangup},
	// 3 → 404 (RFC 3398 §7.2.4.1).
	OutcomeNoRoute: {"no-route", 404, q850(q850NoRoute, "No route to destination"), tgcall.DiscardHangup},
	// 28 ↔ 484 (RFC 3398 both ways).
	OutcomeInvalidNumber: {"invalid-number", 484, q850(q850InvalidNumber, "Invalid number format"), tgcall.DiscardHangup},
	// 88 incompatible destination. RFC 3398 maps 88 → 503; the peer's
	// app, not this instance, is the problem, so 488 (RFC 3261 §21.4.26).
	OutcomeIncompatible: {"incompatible", 488, q850(q850Incompatible, "Peer app outdated"), tgcall.DiscardDisconnect},
	// 111 protocol error; 488 for the same reason as above.
	OutcomeProtocol: {"protocol", 488, q850(q850ProtocolError, "Telegram protocol error"), tgcall.DiscardDisconnect},
	// 42 → 503 (RFC 3398), with Retry-After (RFC 3261 §21.5.4).
	OutcomeFloodWait: {"flood-wait", 503, q850(q850Congestion, "Telegram flood wait"), tgcall.DiscardHangup},
	OutcomePeerFlood: {"peer-flood", 503, q850(q850Congestion, "Telegram peer flood limit"), tgcall.DiscardHangup},
	// 34 no circuit/channel available → 503 (RFC 3398): accounts are our
	// channels. A Telegram call we cannot take (the account is in a call,
	// we are overloaded or draining) is declined busy, as tdesktop does
	// when already in a call (calls_instance.cpp handleCallUpdate).
	OutcomeNoAccount: {"no-account", 503, q850(q850NoCircuit, "No Telegram account free"), tgcall.DiscardBusy},
	OutcomeOverload:  {"overload", 503, q850(q850Congestion, "Overloaded"), tgcall.DiscardBusy},
	// 41 temporary failure → 503 (RFC 3398).
	OutcomeShuttingDown: {"shutting-down", 503, q850(q850TemporaryFailure, "Shutting down"), tgcall.DiscardBusy},
	// 127 interworking unspecified → 500 (RFC 3398 §7.2.4.1).
	OutcomeInternal: {"internal", 500, q850(q850InterworkingUnspec, "Gateway failure"), tgcall.DiscardDisconnect},
}

func (o Outcome) row() outcomeRow {
	if o < 0 || o >= numOutcomes {
		return outcomeTable[OutcomeInternal]
	}
	return outcomeTable[o]
}

func (o Outcome) String() string {
	if o < 0 || o >= numOutcomes {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return outcomeTable[o].name
}

// SIPStatus is the SIP final response an unanswered INVITE gets for o.
func (o Outcome) SIPStatus() int { return o.row().status }

// Reason is the RFC 3326 Reason header value for o.
func (o Outcome) Reason() sip.Reason { return o.row().reason }

// Discard is the Telegram discard reason for o.
func (o Outcome) Discard() tgcall.DiscardReason { return o.row().discard }

// Retryable reports whether o means "this instance cannot take the call
// now" (a 5xx other than 500), the only outcomes a load balancer should
// retry elsewhere.
func (o Outcome) Retryable() bool { return o.row().status >= 501 && o.row().status <= 599 }

// SIPEnd is how the SIP leg ends for an outcome.
type SIPEnd struct {
	// Outcome is the classified outcome.
	Outcome Outcome
	// Status is the final response for an INVITE not yet answered. An
	// answered call ends with BYE carrying Reason instead.
	Status int
	// Reason goes in the final response (RFC 6432), BYE or CANCEL (RFC 3326).
	Reason sip.Reason
	// RetryAfter, when not zero, is sent as Retry-After (whole seconds,
	// RFC 3261 §20.33) with a 503.
	RetryAfter time.Duration
}

// Errors of this package that end a call. Routing and the pool wrap them.
var (
	// ErrNoRoute is a called number no routing rule accepts.
	ErrNoRoute = errors.New("b2bua: no route")
	// ErrInvalidNumber is a called number that cannot be normalized.
	ErrInvalidNumber = errors.New("b2bua: invalid number")
	// ErrCallerRejected is a Telegram caller refused by the routing policy.
	ErrCallerRejected = errors.New("b2bua: caller rejected by policy")
	// ErrOverload is this instance refusing calls to protect itself.
	ErrOverload = errors.New("b2bua: overloaded")
	// ErrShuttingDown is this instance draining before it stops.
	ErrShuttingDown = errors.New("b2bua: shutting down")
)

// rpcOutcomes are Telegram RPC errors tgcall files under CauseInternal that
// have a meaning of their own here. (PEER_FLOOD stays for errors that reach
// here from the account package without going through tgcall, which gives
// it CausePeerFlood.)
var rpcOutcomes = map[string]Outcome{
	"PEER_FLOOD":       OutcomePeerFlood,
	"USERNAME_INVALID": OutcomeUnknownUser,
	// contacts.resolveUsername / resolvePhone errors, reached through the
	// account package.
	"USERNAME_NOT_OCCUPIED": OutcomeUnknownUser,
	"PHONE_NOT_OCCUPIED":    OutcomeUnknownUser,
	"PHONE_NUMBER_INVALID":  OutcomeInvalidNumber,
}

// causeOutcomes maps tgcall causes whose outcome needs no further look.
var causeOutcomes = map[tgcall.Cause]Outcome{
	tgcall.CauseHangup:            OutcomeHangup,
	tgcall.CauseNoAnswer:          OutcomeNoAnswer,
	tgcall.CauseUnreachable:       OutcomeUnreachable,
	tgcall.CauseCancelled:         OutcomeCancelled,
	tgcall.CauseDisconnected:      OutcomeDisconnected,
	tgcall.CausePrivacy:           OutcomePrivacy,
	tgcall.CauseBlocked:           OutcomeBlocked,
	tgcall.CauseOutdated:          OutcomeIncompatible,
	tgcall.CauseUnknownUser:       OutcomeUnknownUser,
	tgcall.CauseFloodWait:         OutcomeFloodWait,
	tgcall.CauseProtocol:          OutcomeProtocol,
	tgcall.CauseAnsweredElsewhere: OutcomeAnsweredElsewhere,
	tgcall.CausePeerFlood:         OutcomePeerFlood,
	tgcall.CauseTimeout:           OutcomeServerTimeout,
}

// Classify maps an error from the Telegram leg, the pool or routing to its
// outcome. nil is a normal hang-up.
func Classify(err error) Outcome {
	if err == nil {
		return OutcomeHangup
	}
	var nfa *NoFreeAccountError
	var te *tgcall.Error
	switch {
	case errors.As(err, &nfa):
		return OutcomeNoAccount
	case errors.Is(err, ErrNoRoute):
		return OutcomeNoRoute
	case errors.Is(err, ErrInvalidNumber):
		return OutcomeInvalidNumber
	case errors.Is(err, ErrCallerRejected):
		return OutcomeDeclined
	case errors.Is(err, ErrOverload):
		return OutcomeOverload
	case errors.Is(err, ErrShuttingDown), errors.Is(err, tgcall.ErrClosed):
		return OutcomeShuttingDown
	case errors.Is(err, tgcall.ErrBusy), errors.Is(err, ErrAccountBusy):
		// The account already carries a call: the pool should have
		// prevented it, and another account or instance can take it.
		return OutcomeNoAccount
	case errors.As(err, &te):
		return classifyTelegram(te)
	case isTimeout(err):
		return OutcomeServerTimeout
	}
	return OutcomeInternal
}

func classifyTelegram(te *tgcall.Error) Outcome {
	if o, ok := rpcOutcomes[te.RPC]; ok {
		return o
	}
	switch te.Cause {
	case tgcall.CauseBusy:
		// A peer that discards an unanswered call with hangup declined it
		// (tgcall discardedError); busy is the usual decline and the real
		// busy alike (see the file comment).
		if te.Remote && te.Reason == tgcall.DiscardHangup {
			return OutcomeDeclined
		}
		return OutcomeBusy
	case tgcall.CauseInternal:
		if te.RPC == "" && isTimeout(te.Err) {
			return OutcomeServerTimeout
		}
		return OutcomeInternal
	}
	if o, ok := causeOutcomes[te.Cause]; ok {
		return o
	}
	return OutcomeInternal
}

// isTimeout reports a request that got no answer in time: a deadline, not
// a refusal.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// SIPEndFor is how the SIP leg ends when the Telegram leg, the pool or
// routing ended the call with err.
func SIPEndFor(err error) SIPEnd {
	o := Classify(err)
	end := SIPEnd{Outcome: o, Status: o.SIPStatus(), Reason: o.Reason()}
	if o.SIPStatus() == 503 {
		end.RetryAfter = retryAfterOf(err)
	}
	return end
}

// retryAfterOf is the Retry-After an error announces, rounded up to whole
// seconds (Retry-After is delta-seconds, RFC 3261 §20.33).
func retryAfterOf(err error) time.Duration {
	var d time.Duration
	var nfa *NoFreeAccountError
	var te *tgcall.Error
	switch {
	case errors.As(err, &nfa):
		d = nfa.RetryAfter
	case errors.As(err, &te):
		d = te.RetryAfter
	}
	if d <= 0 {
		return 0
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}

// sipStatusOutcomes classifies a PBX's final response to our INVITE (a
// Telegram → SIP call). Statuses not listed fall back by class in
// ClassifySIPStatus.
var sipStatusOutcomes = map[int]Outcome{
	403: OutcomePrivacy,
	404: OutcomeUnknownUser,
	410: OutcomeUnknownUser,
	484: OutcomeUnknownUser,
	485: OutcomeUnknownUser,
	604: OutcomeUnknownUser,
	408: OutcomeNoAnswer,
	480: OutcomeNoAnswer,
	487: OutcomeNoAnswer,
	486: OutcomeBusy,
	600: OutcomeBusy,
	603: OutcomeDeclined,
	607: OutcomeDeclined,
	406: OutcomeIncompatible,
	415: OutcomeIncompatible,
	488: OutcomeIncompatible,
	606: OutcomeIncompatible,
}

// ClassifySIPStatus maps a SIP final status to an outcome.
func ClassifySIPStatus(status int) Outcome {
	if o, ok := sipStatusOutcomes[status]; ok {
		return o
	}
	switch {
	case status >= 200 && status < 300:
		return OutcomeHangup
	case status >= 600:
		return OutcomeDeclined
	}
	// Other 4xx are a request the PBX could not serve; 5xx its failure.
	return OutcomeInternal
}

// q850Outcomes reads a Q.850 cause in a Reason header from the PBX
// (RFC 3398 §7.2.4.1 grouping).
var q850Outcomes = map[int]Outcome{
	q850Unallocated:        OutcomeUnknownUser,
	2:                      OutcomeUnknownUser,
	q850NoRoute:            OutcomeUnknownUser,
	q850NumberChanged:      OutcomeUnknownUser,
	q850InvalidNumber:      OutcomeUnknownUser,
	q850NormalClearing:     OutcomeHangup,
	q850UserBusy:           OutcomeBusy,
	q850NoUserResponding:   OutcomeNoAnswer,
	q850NoAnswer:           OutcomeNoAnswer,
	q850SubscriberAbsent:   OutcomeNoAnswer,
	q850NormalUnspecified:  OutcomeNoAnswer,
	q850CallRejected:       OutcomeDeclined,
	q850NoCircuit:          OutcomeDisconnected,
	q850NetworkOutOfOrder:  OutcomeDisconnected,
	q850TemporaryFailure:   OutcomeDisconnected,
	q850Congestion:         OutcomeDisconnected,
	q850ResourceUnavail:    OutcomeDisconnected,
	q850BearerNotImpl:      OutcomeIncompatible,
	q850ServiceNotImpl:     OutcomeIncompatible,
	q850Incompatible:       OutcomeIncompatible,
	q850RecoveryOnTimer:    OutcomeNoAnswer,
	q850ProtocolError:      OutcomeInternal,
	q850InterworkingUnspec: OutcomeInternal,
}

// ClassifySIP maps how the SIP leg ended to an outcome. A Q.850 Reason
// from the PBX is more specific than the status that carries it
// (RFC 6432 §1: the status is what SIP can express, the cause what the
// network behind it said), so a known cause wins; `SIP;cause=200` on a
// CANCEL is RFC 3326's "call completed elsewhere".
func ClassifySIP(ce *sip.CallError) Outcome {
	if ce == nil {
		return OutcomeHangup
	}
	answered := ce.Status >= 200 && ce.Status < 300
	if o, ok := reasonOutcome(ce.Reason); ok {
		if answered {
			// An answered call ends normally unless the cause says the
			// network failed.
			if o == OutcomeDisconnected || o == OutcomeInternal {
				return OutcomeDisconnected
			}
			return OutcomeHangup
		}
		return o
	}
	switch ce.Cause {
	case sip.CauseTransport, sip.CauseACKTimeout, sip.CauseSessionExpired, sip.CauseDialogGone:
		return OutcomeDisconnected
	case sip.CauseCancelled:
		return OutcomeCancelled
	case sip.CauseTimeout:
		return OutcomeNoAnswer
	case sip.CauseShutdown:
		return OutcomeHangup
	case sip.CauseNormal:
		return OutcomeHangup
	}
	if ce.Status == 0 {
		return OutcomeDisconnected
	}
	return ClassifySIPStatus(ce.Status)
}

func reasonOutcome(r sip.Reason) (Outcome, bool) {
	switch strings.ToUpper(r.Protocol) {
	case "Q.850":
		o, ok := q850Outcomes[r.Cause]
		return o, ok
	case "SIP":
		if r.Cause == 200 {
			return OutcomeAnsweredElsewhere, true
		}
		if r.Cause >= 300 && r.Cause <= 699 {
			return ClassifySIPStatus(r.Cause), true
		}
	}
	return 0, false
}

// DiscardFor is the Telegram discard reason for HangupWith when the SIP leg
// ended the call with err (a *sip.CallError, or another error meaning the
// SIP side failed).
func DiscardFor(err error) tgcall.DiscardReason {
	if err == nil {
		return tgcall.DiscardHangup
	}
	var ce *sip.CallError
	if errors.As(err, &ce) {
		return ClassifySIP(ce).Discard()
	}
	return Classify(err).Discard()
}
