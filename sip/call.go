package sip

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Cause names why a call ended.
type Cause string

// End causes.
const (
	CauseNormal         Cause = "normal"          // BYE, either side
	CauseCancelled      Cause = "cancelled"       // CANCEL before answer
	CauseRejected       Cause = "rejected"        // a final non-2xx answer
	CauseACKTimeout     Cause = "ack timeout"     // 2xx never acknowledged
	CauseSessionExpired Cause = "session expired" // RFC 4028 refresh missing
	CauseTransport      Cause = "transport error"
	// CauseDialogGone: the peer answered an in-dialog request of ours 481,
	// so it no longer has the dialog (its BYE crossed our request, or it
	// restarted); RFC 3261 §12.2.1.2 ends the dialog, with no BYE.
	CauseDialogGone Cause = "dialog gone"
	CauseShutdown   Cause = "shutdown"
	CauseTimeout    Cause = "timeout" // no answer in time (outbound)
)

// CallError says how a call ended: the SIP status that ended it (487 for a
// cancelled INVITE, 486 busy, 200 for an answered call ended by BYE …), a
// Cause, the Reason header that came with it, and who ended it.
type CallError struct {
	Status int
	Cause  Cause
	Reason Reason
	Remote bool
	// RetryAfter is the Retry-After of the final response that refused
	// the call (RFC 3261 §20.33), in whole seconds; 0 when it had none.
	RetryAfter time.Duration
	Err        error
}

func (e *CallError) Error() string {
	who := "local"
	if e.Remote {
		who = "remote"
	}
	s := fmt.Sprintf("sip: call ended (%s, %s, status %d)", e.Cause, who, e.Status)
	if !e.Reason.IsZero() {
		s += " reason " + e.Reason.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// shutdownReason ends the calls of a closing server (RFC 3326).
var shutdownReason = Reason{Protocol: "SIP", Cause: 503, Text: "Shutting down"}

// Errors returned by call methods used at the wrong moment.
var (
	ErrCallEnded    = errors.New("sip: call has ended")
	ErrAnswered     = errors.New("sip: call already answered")
	ErrCancelled    = errors.New("sip: call was cancelled")
	ErrNotConfirmed = errors.New("sip: call is not established")
)

// newCallID returns a short random id for logs.
func newCallID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// callLogger is the per-call logger: our id and the SIP Call-ID.
func callLogger(base *slog.Logger, id, sipCallID string, dir string) *slog.Logger {
	return base.With("call", id, "sip_call_id", sipCallID, "dir", dir)
}

// logEnd writes the "call ended" line: why (cause, status, the Reason
// header) and, for transport errors and the like, the error itself (the
// x509 reason of a refused certificate, a refused connection).
func logEnd(log *slog.Logger, e *CallError) {
	attrs := []any{"cause", e.Cause, "status", e.Status, "remote", e.Remote}
	if !e.Reason.IsZero() {
		attrs = append(attrs, "reason", e.Reason.String())
	}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err.Error())
	}
	log.Info("call ended", attrs...)
}
