package tgcall

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/wire"
)

// The callee side (research/tgcalls.md §1.3).

// ringGrace is how much longer than call_ring_timeout_ms an incoming call
// may ring before we decline it ourselves: tdesktop arms the bare timeout
// and declines (busy), tdlib arms none and waits for Telegram's missed.
// Waiting a little longer lets Telegram's missed arrive first, so the caller
// sees a missed call rather than a decline.
const ringGrace = 3 * time.Second

func (call *Call) startIncoming() {
	call.state = stateRinging
	c := call.client
	// Telegram ends a call that rings too long (phoneCallDiscarded, missed);
	// our own timer is the safety net behind it, so it runs a little longer.
	call.arm(c.timeouts.Ring + ringGrace)
	call.markRinging()
	in := call.input()
	// Acknowledge at once, or the caller never sees ringing and gives up
	// after call_receive_timeout_ms (tdlib send_received_query).
	//
	// Not goRPC's call.ctx, which our own end cancels: a callee that ends
	// the call as soon as it rings (the trunk relaying a PBX's instant 480
	// as missed) must still have acknowledged it, and its discardCall
	// waits for this (fail, end.go). Otherwise the two RPCs race at
	// Telegram, and a discard that lands first ends a call still waiting
	// (phoneCallWaiting without receive_date), which the caller reads as
	// an unreachable callee instead of the outcome we sent.
	received := make(chan struct{})
	call.received = received
	call.rpcs.Add(1)
	go func() {
		defer call.rpcs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
		defer cancel()
		res, err := c.api.PhoneReceivedCall(ctx, in)
		close(received)
		call.box.post(evRPC{name: "receivedCall", res: res, err: err})
	}()
	call.log.Info("incoming call ringing")
	if c.opts.OnIncoming == nil {
		call.onHangup(DiscardBusy)
		return
	}
	go c.opts.OnIncoming(call)
}

func (call *Call) onAccept() {
	if call.outgoing || call.state != stateRinging {
		return
	}
	call.state = stateAccepting
	call.arm(call.client.timeouts.Receive)
	call.gAHash = call.request.GAHash
	if k := call.client.takeKey(); k != nil {
		call.dh, call.secret, call.gB = k.cfg, k.secret, k.public
		call.sendAccept(evRPC{name: "dhConfig"})
		return
	}
	call.fetchDH()
}

// sendAccept sends phone.acceptCall with g_b once the DH group is known. The
// secret is set before the RPC goes out, so a phoneCall update that beats
// the acceptCall result is handled.
func (call *Call) sendAccept(e evRPC) {
	if e.err != nil {
		call.fail(rpcError(e.err))
		return
	}
	if call.gB == nil { // a prepared key brings its g_b
		call.gB = wire.Public(call.dh, call.secret)
	}
	c, in, gB, proto := call.client, call.input(), call.gB, call.protocolOffer()
	call.goRPC("acceptCall", func(ctx context.Context) (any, error) {
		return c.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: gB, Protocol: proto})
	})
}

// onConfirmed is the callee's phoneCall carrying g_a.
func (call *Call) onConfirmedIncoming(pc *tg.PhoneCall) {
	if call.state != stateAccepting || call.secret == nil {
		return
	}
	// The commitment: the caller revealed g_a only now (tdesktop startConfirmedCall).
	if !bytes.Equal(wire.GAHash(pc.GAOrB), call.gAHash) {
		call.fail(&Error{Cause: CauseProtocol, Err: fmt.Errorf("%w: g_a does not match g_a_hash", ErrKeyMismatch)})
		return
	}
	key, err := wire.SharedKey(call.dh, pc.GAOrB, call.secret)
	if err != nil {
		call.fail(&Error{Cause: CauseProtocol, Err: fmt.Errorf("%w: g_a: %v", ErrKeyMismatch, err)})
		return
	}
	call.key = &key
	call.gA = pc.GAOrB
	call.startMedia(pc)
}
