package tgcall

import (
	"context"
	"fmt"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/wire"
)

// The caller side (research/tgcalls.md §1.2).

func (call *Call) startOutgoing() {
	call.state = stateRequesting
	call.arm(call.client.timeouts.Receive + time.Second) // bounds the RPCs themselves, as tdlib does
	if k := call.client.takeKey(); k != nil {
		call.dh, call.secret, call.gA = k.cfg, k.secret, k.public
		call.sendRequest(evRPC{name: "dhConfig"})
		return
	}
	call.fetchDH()
}

// sendRequest sends phone.requestCall once the DH group is known: g_a stays
// secret until confirmCall, only its hash goes out now.
func (call *Call) sendRequest(e evRPC) {
	if e.err == nil && call.hangupWant {
		e.err = &Error{Cause: CauseCancelled}
	}
	if e.err != nil {
		call.onRequestResult(e)
		return
	}
	if call.gA == nil { // a prepared key brings its g_a
		call.gA = wire.Public(call.dh, call.secret)
	}
	call.gAHash = wire.GAHash(call.gA)
	c, user, gAHash, proto := call.client, call.peerInput, call.gAHash, call.protocolOffer()
	randomID := int(randomInt32(c))
	call.goRPC("requestCall", func(ctx context.Context) (any, error) {
		return c.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
			UserID:   user,
			RandomID: randomID,
			GAHash:   gAHash,
			Protocol: proto,
		})
	})
}

func (call *Call) onRequestResult(e evRPC) {
	defer close(call.requested)
	if e.err != nil {
		call.requestErr = rpcError(e.err)
		call.finish(call.requestErr.(*Error))
		return
	}
	res := e.res.(*tg.PhonePhoneCall)
	w, ok := res.PhoneCall.(*tg.PhoneCallWaiting)
	if !ok {
		// tdesktop startOutgoing: anything but phoneCallWaiting is a failure.
		call.requestErr = &Error{Cause: CauseInternal, Err: fmt.Errorf("requestCall returned %T", res.PhoneCall)}
		if d, ok := res.PhoneCall.(*tg.PhoneCallDiscarded); ok {
			call.requestErr = call.discardedError(d)
		}
		call.finish(call.requestErr.(*Error))
		return
	}
	call.mu.Lock()
	call.id, call.accessHash, call.peer = w.ID, w.AccessHash, w.ParticipantID
	call.mu.Unlock()
	call.setLogger(call.log.With("call_id", w.ID, "peer", w.ParticipantID))
	call.state = stateWaiting
	call.arm(call.client.timeouts.Receive)
	call.client.bind(call, w.ID)
	call.log.Info("call requested")
	if call.hangupWant {
		call.onHangup(DiscardNone)
		return
	}
	call.onUpdate(w) // a receive_date already set means the callee rings
}

func (call *Call) onAccepted(a *tg.PhoneCallAccepted) {
	if call.state != stateWaiting && call.state != stateRinging {
		return
	}
	call.markRinging()
	key, err := wire.SharedKey(call.dh, a.GB, call.secret)
	if err != nil {
		call.fail(&Error{Cause: CauseProtocol, Err: fmt.Errorf("%w: g_b: %v", ErrKeyMismatch, err)})
		return
	}
	call.key = &key
	call.state = stateExchanging
	call.arm(call.client.timeouts.Receive) // tdlib on_begin_exchanging_key
	fp := key.Fingerprint()
	in, gA, proto := call.input(), call.gA, call.protocolOffer()
	call.goRPC("confirmCall", func(ctx context.Context) (any, error) {
		return call.client.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{
			Peer: in, GA: gA, KeyFingerprint: fp, Protocol: proto,
		})
	})
}
