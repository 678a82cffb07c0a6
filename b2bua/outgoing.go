package b2bua

import (
	"context"
	"errors"
	"time"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/account"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// SIP -> Telegram: an INVITE from the PBX becomes a Telegram call.

// rejectSIP answers an unanswered INVITE with the status err maps to
// (mapping.go), its Q.850 Reason (RFC 6432) and, on a 503, Retry-After
// (RFC 3261 §20.33).
func rejectSIP(in *sip.InboundCall, err error) SIPEnd {
	end := sipEndFor(err)
	in.RejectWith(end.Status, end.Reason, end.RetryAfter)
	return end
}

// rejectOutcome answers an unanswered INVITE for o with its status and
// Q.850 Reason.
func rejectOutcome(in *sip.InboundCall, o Outcome) {
	in.RejectWith(o.SIPStatus(), o.Reason(), 0)
}

// sipEndFor is SIPEndFor plus the errors of this file's collaborators
// that mapping.go does not know: a peer resolution's "not found" and the
// account package's flood waits.
func sipEndFor(err error) SIPEnd {
	var fw *account.FloodWaitError
	switch {
	case errors.Is(err, ErrPeerNotFound):
		o := OutcomeUnknownUser
		return SIPEnd{Outcome: o, Status: o.SIPStatus(), Reason: o.Reason()}
	case errors.As(err, &fw):
		o := OutcomeFloodWait
		if fw.PeerFlood {
			o = OutcomePeerFlood
		}
		return SIPEnd{Outcome: o, Status: o.SIPStatus(), Reason: o.Reason(), RetryAfter: (fw.Wait + time.Second - 1).Truncate(time.Second)}
	}
	return SIPEndFor(err)
}

func (t *Trunk) sipToTelegram(in *sip.InboundCall) {
	began := time.Now()
	log := in.Logger()
	route, err := t.sipRoute.Route(Called{RequestUser: in.RequestUser, ToUser: in.ToUser, Header: in.Header})
	if err != nil {
		end := rejectSIP(in, err)
		log.Info("call not routed", "status", end.Status, "err", err)
		return
	}
	lease, err := t.pool.Lease(context.Background(), route.Prefs)
	if err != nil {
		end := rejectSIP(in, err)
		log.Info("no account for the call", "status", end.Status, "err", err)
		return
	}
	defer lease.Release()
	acc := lease.Account().(Account)
	log = log.With("account", acc.Name(), "route", route.Peer.String())
	t.step(StepInvite, in.CallID, acc.Name(), began)

	// Until the Telegram call exists, a CANCEL (or the trunk's kill)
	// aborts resolution and phone.requestCall through ctx.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-in.Done():
		case <-t.kill:
		case <-ctx.Done():
		}
		cancel()
	}()
	user, err := acc.ResolvePeer(ctx, route.Peer)
	if err == nil {
		var tc *tgcall.Call
		t.stepNow(StepDial, in.CallID)
		tc, err = acc.Engine().Dial(ctx, user, tgcall.WithLogger(log))
		if err == nil {
			cancel()
			t.bridgeSIPToTelegram(newCall(t, log, in, tc), in)
			t.observe(acc, tgErr(tc))
			return
		}
	}
	t.observe(acc, err)
	if errors.Is(err, context.Canceled) {
		select {
		case <-in.Done():
			log.Info("call cancelled by SIP before Telegram took it")
		default:
			rejectSIP(in, ErrShuttingDown)
		}
		return
	}
	end := rejectSIP(in, err)
	log.Info("Telegram refused the call", "status", end.Status, "err", err)
}

// observe lets the pool back the account off after FLOOD_WAIT/PEER_FLOOD.
func (t *Trunk) observe(acc Account, err error) {
	if err == nil {
		return
	}
	var fw *account.FloodWaitError
	if errors.As(err, &fw) {
		if t.pool.BackOff(acc.Name(), fw.Until, err.Error()) == nil {
			t.log.Warn("account backs off", "account", acc.Name(), "until", fw.Until, "err", err)
		}
		return
	}
	if until, ok, _ := t.pool.ObserveError(acc.Name(), err); ok {
		t.log.Warn("account backs off", "account", acc.Name(), "until", until, "err", err)
	}
}

// bridgeSIPToTelegram is the state machine of an outgoing Telegram call:
// 180 when Telegram rings, 200 (the SDP answer negotiated when the INVITE
// came) only once the Telegram media is connected, no early media.
func (t *Trunk) bridgeSIPToTelegram(c *call, in *sip.InboundCall) {
	tc := c.tc
	ringing, connected := tc.Ringing(), tc.Connected()
	sipDone, tgDone := in.Done(), tc.Done()
	kill := t.kill
	answered := false
	var ringTimeout <-chan time.Time
	if t.opts.RingTimeout > 0 {
		rt := time.NewTimer(t.opts.RingTimeout)
		defer rt.Stop()
		ringTimeout = rt.C
	}
	for !c.done() {
		select {
		case <-ringTimeout:
			ringTimeout = nil
			if !answered && !c.tgEnded {
				// tdesktop/tdlib discard an unanswered call with missed
				// at their ring timeout; the PBX hears 480.
				c.log.Info("ring timeout")
				o := OutcomeNoAnswer
				if !c.sipEnded {
					rejectOutcome(in, o)
				}
				tc.HangupWith(o.Discard())
			}
		case <-ringing:
			t.stepNow(StepRinging, in.CallID)
			ringing = nil
			if err := in.Ringing(); err != nil {
				c.log.Debug("180 not sent", "err", err)
			}
			t.stepNow(Step180, in.CallID)
		case <-connected:
			t.stepNow(StepConnected, in.CallID)
			connected, ringing, ringTimeout = nil, nil, nil
			if err := c.startMedia(); err != nil {
				c.log.Error("media bridge failed", "err", err)
				rejectOutcome(in, OutcomeInternal)
				c.endBoth(OutcomeInternal)
				continue
			}
			if err := in.Answer(nil); err != nil {
				// A CANCEL won the race, or the 200 could not be sent:
				// the SIP leg's Done follows.
				c.log.Info("200 not sent", "err", err)
				continue
			}
			answered = true
			// The time the 200 went out, not now: this goroutine may run
			// again only after the PBX has it.
			t.step(Step200, in.CallID, "", in.AnsweredAt())
		case <-c.sip.MediaChanged():
			c.renegotiated()
		case <-tgDone:
			tgDone, ringing, connected = nil, nil, nil
			c.tgEnded = true
			err := tgErr(tc)
			if !c.sipEnded {
				if answered {
					c.sip.Hangup(Classify(err).Reason())
				} else {
					end := rejectSIP(in, err)
					c.log.Info("Telegram ended the call before answer", "status", end.Status, "err", err)
				}
			}
			c.stopMedia()
		case <-sipDone:
			t.stepNow(StepSIPEnded, in.CallID)
			sipDone = nil
			c.sipEnded = true
			if !c.tgEnded {
				tc.HangupWith(discardForSIP(in.Err()))
				t.stepNow(StepDiscard, in.CallID)
			}
			c.stopMedia()
		case err := <-c.mediaDone:
			c.mediaStopped(err)
		case <-kill:
			kill = nil
			if !answered && !c.sipEnded {
				rejectOutcome(in, OutcomeShuttingDown)
			}
			c.endBoth(OutcomeShuttingDown)
		}
	}
}
