package tgcall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// DiscardReason is the reason carried by phone.discardCall and
// phoneCallDiscarded (core.telegram.org/constructor/phoneCallDiscardReason*).
type DiscardReason int

// Discard reasons, as tdlib names their meaning in td/telegram/CallDiscardReason.cpp.
const (
	// DiscardNone means no reason was given (tdlib callDiscardReasonEmpty).
	DiscardNone DiscardReason = iota
	// DiscardHangup is a normal hang-up of an established call.
	DiscardHangup
	// DiscardBusy is a callee that is busy or declined (tdlib maps it to Declined).
	DiscardBusy
	// DiscardMissed is an outgoing call that was never answered.
	DiscardMissed
	// DiscardDisconnect is a call that failed for network or protocol reasons.
	DiscardDisconnect
)

func (r DiscardReason) String() string {
	switch r {
	case DiscardHangup:
		return "hangup"
	case DiscardBusy:
		return "busy"
	case DiscardMissed:
		return "missed"
	case DiscardDisconnect:
		return "disconnect"
	default:
		return "none"
	}
}

func (r DiscardReason) tl() tg.PhoneCallDiscardReasonClass {
	switch r {
	case DiscardBusy:
		return &tg.PhoneCallDiscardReasonBusy{}
	case DiscardMissed:
		return &tg.PhoneCallDiscardReasonMissed{}
	case DiscardDisconnect:
		return &tg.PhoneCallDiscardReasonDisconnect{}
	default:
		return &tg.PhoneCallDiscardReasonHangup{}
	}
}

func reasonFromTL(r tg.PhoneCallDiscardReasonClass) DiscardReason {
	switch r.(type) {
	case *tg.PhoneCallDiscardReasonBusy:
		return DiscardBusy
	case *tg.PhoneCallDiscardReasonMissed:
		return DiscardMissed
	case *tg.PhoneCallDiscardReasonDisconnect:
		return DiscardDisconnect
	case *tg.PhoneCallDiscardReasonHangup:
		return DiscardHangup
	default:
		// Includes phoneCallDiscardReasonMigrateConferenceCall: for a 1:1
		// trunk the call is over either way.
		return DiscardNone
	}
}

// Cause classifies why a call ended, in Telegram's terms. What a cause
// means for another leg is the b2bua's business (b2bua/mapping.go), not
// this package's.
type Cause int

// Causes. The name and discard reason of each are in causeTable.
const (
	// CauseHangup is a normal end after the call was answered.
	CauseHangup Cause = iota
	// CauseBusy is a callee that declined or was busy.
	CauseBusy
	// CauseNoAnswer is an outgoing call nobody answered before the ring timeout.
	CauseNoAnswer
	// CauseUnreachable is a callee whose devices never acknowledged the call
	// (no phone.receivedCall within call_receive_timeout_ms).
	CauseUnreachable
	// CauseCancelled is a call we ended ourselves before it was answered.
	CauseCancelled
	// CauseDisconnected is a call whose media or signaling failed.
	CauseDisconnected
	// CausePrivacy is a callee whose privacy settings forbid our call
	// (USER_PRIVACY_RESTRICTED).
	CausePrivacy
	// CauseBlocked is a callee that blocked the account (USER_IS_BLOCKED).
	CauseBlocked
	// CauseOutdated is a peer whose app cannot take the call
	// (PARTICIPANT_VERSION_OUTDATED, CALL_PROTOCOL_LAYER_INVALID, …).
	CauseOutdated
	// CauseUnknownUser is a peer that does not exist or was deleted.
	CauseUnknownUser
	// CauseFloodWait is Telegram refusing the account for a while (FLOOD_WAIT_n).
	CauseFloodWait
	// CauseProtocol is a peer that selected something we cannot honour
	// (library version, custom_parameters) or failed the key verification.
	CauseProtocol
	// CauseInternal is any other failure on our side or Telegram's.
	CauseInternal
	// CauseAnsweredElsewhere is an incoming call taken by another device of the account.
	CauseAnsweredElsewhere
	// CausePeerFlood is Telegram limiting the account's calls and messages
	// to people it has not talked to (PEER_FLOOD). It is a cause of its own,
	// not CauseFloodWait: the answer carries no duration (RetryAfter stays
	// zero), and the limit usually lasts about a day, so the caller picks a
	// long back-off of its own (the b2bua pool's PeerFloodBackOff) instead
	// of the seconds of a FLOOD_WAIT_n.
	CausePeerFlood
	// CauseTimeout is Telegram's servers not answering a request in time
	// (a deadline or network timeout on phone.requestCall,
	// phone.acceptCall, phone.confirmCall, …), as opposed to refusing it.
	CauseTimeout
)

// causeInfo is one row of causeTable: the cause's name and the discard
// reason we send when the cause is ours (DiscardNone: the call never
// existed on Telegram, or the peer ended it).
type causeInfo struct {
	name    string
	discard DiscardReason
}

// causeTable names every cause and gives its discard reason
// (tdlib CallDiscardReason.cpp; tdesktop calls_call.cpp Call::hangup).
var causeTable = map[Cause]causeInfo{
	CauseHangup:            {"hangup", DiscardHangup},
	CauseBusy:              {"busy", DiscardBusy},
	CauseNoAnswer:          {"no-answer", DiscardMissed},
	CauseUnreachable:       {"unreachable", DiscardMissed},
	CauseCancelled:         {"cancelled", DiscardMissed},
	CauseDisconnected:      {"disconnected", DiscardDisconnect},
	CausePrivacy:           {"privacy", DiscardNone},
	CauseBlocked:           {"blocked", DiscardNone},
	CauseOutdated:          {"outdated", DiscardNone},
	CauseUnknownUser:       {"unknown-user", DiscardNone},
	CauseFloodWait:         {"flood-wait", DiscardNone},
	CauseProtocol:          {"protocol", DiscardDisconnect},
	CauseInternal:          {"internal", DiscardDisconnect},
	CauseAnsweredElsewhere: {"answered-elsewhere", DiscardNone},
	CausePeerFlood:         {"peer-flood", DiscardNone},
	CauseTimeout:           {"timeout", DiscardDisconnect},
}

func (c Cause) String() string {
	if i, ok := causeTable[c]; ok {
		return i.name
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// rpcCauses maps Telegram RPC error types (research/tgcalls.md §1.5) to causes.
var rpcCauses = map[string]Cause{
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
	// PEER_FLOOD: core.telegram.org/api/errors ("too many requests to
	// users you have not talked to"); tdlib treats it as a limit, not a
	// FLOOD_WAIT with a duration.
	"PEER_FLOOD": CausePeerFlood,
}

// Error is how a call ended. Every Call that is Done has one (a normal
// hang-up is an Error with CauseHangup): Cause is the class, Reason what
// went over Telegram.
type Error struct {
	// Cause classifies the outcome.
	Cause Cause
	// Reason is the discard reason sent to or received from Telegram
	// (DiscardNone when the call never existed on Telegram).
	Reason DiscardReason
	// Remote is true when the peer or Telegram ended the call.
	Remote bool
	// Duration is the time media was connected, as sent in phone.discardCall.
	Duration time.Duration
	// RPC is the Telegram error type (e.g. "USER_PRIVACY_RESTRICTED"), if any.
	RPC string
	// RetryAfter is set for CauseFloodWait.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("call ended: ")
	b.WriteString(e.Cause.String())
	if e.Reason != DiscardNone {
		fmt.Fprintf(&b, " (discard %s", e.Reason)
		if e.Remote {
			b.WriteString(" by peer")
		}
		b.WriteString(")")
	}
	if e.RPC != "" {
		fmt.Fprintf(&b, ": %s", e.RPC)
	}
	if e.Err != nil && e.RPC == "" {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// rpcError classifies an error returned by an RPC.
func rpcError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	if d, ok := tgerr.AsFloodWait(err); ok {
		return &Error{Cause: CauseFloodWait, RPC: "FLOOD_WAIT", RetryAfter: d, Err: err}
	}
	if rpc, ok := tgerr.As(err); ok {
		cause, known := rpcCauses[rpc.Type]
		if !known {
			cause = CauseInternal
		}
		return &Error{Cause: cause, RPC: rpc.Type, Err: err}
	}
	if isTimeout(err) {
		return &Error{Cause: CauseTimeout, Err: err}
	}
	return &Error{Cause: CauseInternal, Err: err}
}

// isTimeout reports a request Telegram did not answer in time: a context
// deadline or a network timeout, not a refusal and not a cancellation.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Typed errors for what the peer selects and we cannot honour
// (research/tgcalls.md §3): they end the call with CauseProtocol.
var (
	// ErrUnsupportedVersion is a phoneCall whose library_versions[0] is not one we implement.
	ErrUnsupportedVersion = errors.New("tgcall: peer selected an unsupported library version")
	// ErrUnsupportedParameter is a custom_parameters flag that changes the wire format.
	ErrUnsupportedParameter = errors.New("tgcall: custom_parameters asks for an unsupported transport")
	// ErrKeyMismatch is a failed DH commitment or key fingerprint check.
	ErrKeyMismatch = errors.New("tgcall: key verification failed")
	// ErrBusy is returned by Dial when the account already carries MaxCalls calls.
	ErrBusy = errors.New("tgcall: account busy")
	// ErrClosed is returned after the Client was closed.
	ErrClosed = errors.New("tgcall: client closed")
)
