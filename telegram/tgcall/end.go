package tgcall

import (
	"context"
	"errors"
	"time"

	"github.com/gotd/td/tg"
)

// How calls end: timers, hang-ups, failures and the peer's discard
// (research/tgcalls.md §1.4).

// onTimeout handles the expiry of the state timer.
func (call *Call) onTimeout() {
	switch call.state {
	case stateRequesting, stateWaiting:
		call.fail(&Error{Cause: CauseUnreachable, Reason: DiscardMissed})
	case stateRinging:
		if call.outgoing {
			call.fail(&Error{Cause: CauseNoAnswer, Reason: DiscardMissed})
		} else {
			// tdesktop arms callRingTimeoutMs for incoming calls and
			// hangs up as busy ("declined") when it expires.
			call.fail(&Error{Cause: CauseNoAnswer, Reason: DiscardBusy})
		}
	case stateAccepting, stateExchanging, stateConnecting:
		call.fail(&Error{Cause: CauseDisconnected, Reason: DiscardDisconnect, Err: errors.New("timed out")})
	}
}

// onHangup ends the call on our initiative.
func (call *Call) onHangup(reason DiscardReason) {
	switch call.state {
	case stateNew, stateRequesting:
		// The request may still create the call on Telegram: discard it
		// when the result comes (tdlib cancels the query, tdesktop defers
		// with _finishAfterRequestingCall).
		call.hangupWant = true
		if call.state == stateNew {
			call.finish(&Error{Cause: CauseCancelled})
		}
		return
	case stateEnding, stateEnded:
		return
	}
	if reason == DiscardNone {
		switch {
		case call.state == stateActive:
			reason = DiscardHangup
		case call.outgoing && call.state <= stateRinging:
			reason = DiscardMissed
		case !call.outgoing && call.state == stateRinging:
			reason = DiscardBusy
		default:
			reason = DiscardHangup
		}
	}
	cause := CauseHangup
	switch {
	case reason == DiscardDisconnect:
		cause = CauseDisconnected
	case call.state < stateActive && !call.outgoing && reason == DiscardBusy:
		cause = CauseBusy
	case call.state < stateActive:
		cause = CauseCancelled
	}
	call.fail(&Error{Cause: cause, Reason: reason})
}

// fail ends the call with e, discarding it on Telegram if it exists there.
func (call *Call) fail(e *Error) {
	if call.state >= stateEnding {
		return
	}
	if e.Reason == DiscardNone && call.id != 0 {
		e.Reason = causeTable[e.Cause].discard
		if e.Reason == DiscardNone {
			e.Reason = DiscardDisconnect
		}
	}
	if !call.startedAt.IsZero() {
		e.Duration = time.Since(call.startedAt)
	}
	call.setResult(e)
	if call.id == 0 {
		call.state = stateEnded
		return
	}
	call.state = stateEnding
	call.arm(hangupTimeout)
	call.closeMedia()
	in, reason, dur := call.input(), e.Reason, int(e.Duration/time.Second)
	api, received := call.client.api, call.received
	call.rpcs.Add(1)
	go func() {
		defer call.rpcs.Done()
		// Not call.ctx: the discard must go out even as the call winds down.
		ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
		defer cancel()
		if received != nil {
			// An incoming call is discarded only after our
			// phone.receivedCall (startIncoming): Telegram then has it
			// ringing, and the caller sees our reason, not unreachable.
			select {
			case <-received:
			case <-ctx.Done():
			}
		}
		_, err := api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
			Peer:     in,
			Duration: dur,
			Reason:   reason.tl(),
			// connection_id: InstanceV2Impl's getPreferredRelayId returns 0.
		})
		call.box.post(evRPC{name: "discardCall", err: err})
	}()
	call.log.Info("call ended", "cause", e.Cause, "reason", reason, "duration", e.Duration)
}

// finish ends a call that never existed on Telegram or is already gone there.
func (call *Call) finish(e *Error) {
	if call.state >= stateEnding {
		return
	}
	if !call.startedAt.IsZero() && e.Duration == 0 {
		e.Duration = time.Since(call.startedAt)
	}
	call.setResult(e)
	call.state = stateEnded
}

func (call *Call) finishRemote(d *tg.PhoneCallDiscarded) {
	e := call.discardedError(d)
	call.log.Info("call discarded by peer", "cause", e.Cause, "reason", e.Reason, "duration", e.Duration)
	call.finish(e)
}

// discardedError classifies a phoneCallDiscarded (tdlib CallDiscardReason,
// tdesktop Call::handleUpdate).
func (call *Call) discardedError(d *tg.PhoneCallDiscarded) *Error {
	e := &Error{Remote: true}
	if r, ok := d.GetReason(); ok {
		e.Reason = reasonFromTL(r)
	}
	if dur, ok := d.GetDuration(); ok {
		e.Duration = time.Duration(dur) * time.Second
	}
	switch {
	case call.state == stateActive:
		e.Cause = CauseHangup
		if e.Reason == DiscardDisconnect {
			e.Cause = CauseDisconnected
		}
	case e.Reason == DiscardBusy:
		e.Cause = CauseBusy
	case e.Reason == DiscardMissed:
		e.Cause = CauseNoAnswer
		if call.outgoing && call.state < stateRinging {
			e.Cause = CauseUnreachable
		}
	case !call.outgoing && call.state <= stateAccepting && e.Reason == DiscardNone:
		// phone.discardCall requires a reason, so a discard without one
		// is Telegram's own: another device of the account answered
		// (tdesktop shows EndedByOtherDevice; inferred, the server is
		// closed source). While we are accepting it also means that
		// device won the race (our acceptCall gets CALL_ALREADY_ACCEPTED).
		e.Cause = CauseAnsweredElsewhere
	case !call.outgoing && call.state == stateRinging:
		// The caller gave up before the answer. tdesktop's hangup() sends
		// missed (handled above) while Waiting or Ringing; a third-party
		// client may send hangup or disconnect: a cancel all the same.
		e.Cause = CauseCancelled
	case call.state < stateActive && e.Reason == DiscardHangup && call.outgoing:
		e.Cause = CauseBusy
	default:
		e.Cause = CauseDisconnected
	}
	return e
}

func (call *Call) setResult(e *Error) {
	call.mu.Lock()
	if call.result == nil {
		call.result = e
	}
	call.mu.Unlock()
}

func (call *Call) closeMedia() {
	if call.media != nil {
		if err := call.media.Close(); err != nil {
			call.log.Debug("close media", "err", err)
		}
	}
	call.cancel()
}

// teardown runs after the loop: wait for RPC goroutines, release the call.
func (call *Call) teardown() {
	call.timer.Stop()
	call.closeMedia()
	if call.sig != nil {
		call.sig.close()
	}
	call.rpcs.Wait()
	call.client.release(call)
	call.client.prepareKey() // for the next call, now that this one is over
	if call.outgoing {
		select {
		case <-call.requested:
		default:
			if call.requestErr == nil {
				if r := call.Err(); r != nil {
					call.requestErr = r
				} else {
					call.requestErr = &Error{Cause: CauseCancelled}
				}
			}
			close(call.requested)
		}
	}
	close(call.done)
}
