package tgcall

import (
	"bytes"
	"context"
	"fmt"

	"github.com/gotd/td/tg"

	"github.com/tgsip/tgsip/telegram/wire"
)

// The callee side (research/tgcalls.md §1.3).

func (call *Call) startIncoming() {
	call.state = stateRinging
	c := call.client
	call.arm(c.timeouts.Ring)
	close(call.ringing)
	in := call.input()
	// Acknowledge at once, or the caller never sees ringing and gives up
	// after call_receive_timeout_ms (tdlib send_received_query).
	call.goRPC("receivedCall", func(ctx context.Context) (any, error) {
		return c.api.PhoneReceivedCall(ctx, in)
	})
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
	c := call.client
	call.arm(c.timeouts.Receive)
	in, req := call.input(), call.request
	call.goRPC("acceptCall", func(ctx context.Context) (any, error) {
		cfg, random, err := c.dh.get(ctx, c.api)
		if err != nil {
			return nil, err
		}
		b, err := wire.NewExponent(c.opts.Random, random)
		if err != nil {
			return nil, err
		}
		call.dh, call.secret, call.gAHash = cfg, b, req.GAHash
		return c.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{
			Peer:     in,
			GB:       wire.Public(cfg, b),
			Protocol: call.protocolOffer(),
		})
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
