package b2bua

import (
	"context"
	"errors"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Telegram -> SIP: a Telegram call to one of the accounts becomes an
// INVITE to the PBX.
//
// phone.receivedCall: tgcall sends it as soon as the call rings on the
// account (tdlib send_received_query), before the PBX is asked, so the
// caller never hits call_receive_timeout_ms however slow the PBX is; the
// PBX's first provisional response therefore needs no further action here.

func (t *Trunk) telegramToSIP(acc Account, tc *tgcall.Call) {
	log := tc.Logger().With("account", acc.Name())
	lease, err := t.pool.LeaseAccount(acc.Name())
	if err != nil {
		// The account already carries a call: busy (one call per account).
		log.Info("account busy, declining", "err", err)
		tc.Decline()
		<-tc.Done()
		return
	}
	defer lease.Release()
	route, err := t.tgRoute.Route(acc.Name(), callerOf(acc, tc.Peer()))
	if err != nil {
		log.Info("incoming call not routed", "err", err)
		tc.HangupWith(Classify(err).Discard())
		<-tc.Done()
		return
	}
	hdrs := make(map[string]string, len(route.Identity.Headers))
	for _, h := range route.Identity.Headers {
		hdrs[h.Name] = h.Value
	}
	// Until the INVITE is out, the Telegram caller's hang-up or the
	// trunk's kill abandon it through ctx.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan struct{})
	go func() {
		select {
		case <-tc.Done():
			cancel()
		case <-t.kill:
			cancel()
		case <-sent:
		}
	}()
	out, err := t.sip.Dial(ctx, sip.DialRequest{
		To:       route.Target,
		FromUser: route.Identity.User,
		FromName: route.Identity.DisplayName,
		Headers:  hdrs,
	})
	close(sent)
	if err != nil {
		log.Warn("INVITE to the PBX failed", "err", err)
		tc.HangupWith(OutcomeInternal.Discard())
		<-tc.Done()
		return
	}
	// ctx stays alive for the call: sip.Server.Dial ties the INVITE's
	// client transaction to it (cancelling it CANCELs the call).
	t.bridgeTelegramToSIP(newCall(t, out.Logger().With("account", acc.Name()), out, tc), out)
}

// bridgeTelegramToSIP is the state machine of a call from Telegram: the
// PBX's 200 accepts the Telegram call, the media is bridged once Telegram
// connects it, a PBX's final failure discards it with the mapped reason.
func (t *Trunk) bridgeTelegramToSIP(c *call, out *sip.OutboundCall) {
	tc := c.tc
	answered, connected := out.Answered(), tc.Connected()
	progress := out.Progress()
	sipDone, tgDone := out.Done(), tc.Done()
	kill := t.kill
	for !c.done() {
		select {
		case ev, ok := <-progress:
			if !ok {
				progress = nil
				continue
			}
			c.log.Debug("PBX progress", "status", ev.Status)
		case <-answered:
			answered = nil
			tc.Accept()
		case <-connected:
			connected = nil
			if err := c.startMedia(); err != nil {
				c.log.Error("media bridge failed", "err", err)
				c.endBoth(OutcomeInternal)
			}
		case <-c.sip.MediaChanged():
			c.renegotiated()
		case <-tgDone:
			tgDone, connected = nil, nil
			c.tgEnded = true
			c.endSIP(Classify(tgErr(tc)).Reason())
			c.stopMedia()
		case <-sipDone:
			sipDone, answered = nil, nil
			c.sipEnded = true
			if !c.tgEnded {
				err := out.Err()
				var ce *sip.CallError
				if errors.As(err, &ce) {
					c.log.Info("PBX ended the call", "status", ce.Status, "outcome", ClassifySIP(ce))
				}
				tc.HangupWith(discardForSIP(err))
			}
			c.stopMedia()
		case err := <-c.mediaDone:
			c.mediaStopped(err)
		case <-kill:
			kill = nil
			c.endBoth(OutcomeShuttingDown)
		}
	}
}
