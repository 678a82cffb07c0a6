package b2bua

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// sipLeg is what a call's state machine uses of either SIP call
// (sip.InboundCall, sip.OutboundCall).
type sipLeg interface {
	Done() <-chan struct{}
	Err() error
	Media() sip.Media
	MediaChanged() <-chan sip.Media
	Hangup(sip.Reason)
}

// call is one bridged call: its SIP leg, its Telegram call and, once the
// Telegram media is connected, the media bridge. Only the call's own
// goroutine (the loop in outgoing.go or incoming.go) touches it; the legs
// reach it through their channels, never through a shared lock.
type call struct {
	t   *Trunk
	log *slog.Logger
	sip sipLeg
	tc  *tgcall.Call

	media       *Media
	mediaCancel context.CancelFunc
	mediaDone   chan error

	sipEnded, tgEnded bool
}

func newCall(t *Trunk, log *slog.Logger, leg sipLeg, tc *tgcall.Call) *call {
	return &call{t: t, log: log, sip: leg, tc: tc}
}

// tgErr is the Telegram call's outcome as an error (nil for none).
func tgErr(tc *tgcall.Call) error {
	if e := tc.Err(); e != nil {
		return e
	}
	return nil
}

// startMedia bridges the SIP leg's negotiated RTP with the connected
// Telegram call and runs the bridge until the call ends.
func (c *call) startMedia() error {
	// The SIP leg owns its endpoint: it was made by the negotiation and
	// is updated on re-INVITE and closed at the call's end by package sip.
	m := c.sip.Media()
	if m.Endpoint == nil {
		return errors.New("b2bua: SIP leg has no negotiated media")
	}
	conn := c.tc.Conn()
	if conn == nil {
		return errors.New("b2bua: Telegram call has no media")
	}
	med, err := NewMedia(m.Endpoint, m.Negotiated, conn, c.tc.Hangup, c.t.opts.Media)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.media, c.mediaCancel, c.mediaDone = med, cancel, make(chan error, 1)
	go func() { c.mediaDone <- med.Run(ctx) }()
	c.log.Debug("media bridged", "passthrough", med.Bridge.Passthrough(), "codec", m.Codec.Name)
	return nil
}

// renegotiated applies the SIP leg's newest negotiation (after a
// re-INVITE/UPDATE; MediaChanged may also hold older ones) to the running
// bridge; a codec change it cannot follow ends the call.
func (c *call) renegotiated() {
	if c.media == nil {
		return
	}
	neg := c.sip.Media().Negotiated
	if err := c.media.Update(neg); err != nil {
		c.log.Warn("renegotiation not applied, ending the call", "err", err)
		c.endBoth(OutcomeIncompatible)
	}
}

// mediaStopped handles the bridge's end: its stop has hung the Telegram
// call up; the SIP leg gets a BYE saying the media broke.
func (c *call) mediaStopped(err error) {
	c.mediaDone = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Info("media bridge stopped", "err", err)
	}
	c.endSIP(OutcomeDisconnected.Reason())
	c.tc.HangupWith(OutcomeDisconnected.Discard())
}

// endSIP hangs the SIP leg up with reason (a BYE once answered, a final
// response before) unless it has ended.
func (c *call) endSIP(r sip.Reason) {
	if !c.sipEnded {
		c.sip.Hangup(r)
	}
}

// endBoth ends both legs for one outcome.
func (c *call) endBoth(o Outcome) {
	c.endSIP(o.Reason())
	if !c.tgEnded {
		c.tc.HangupWith(o.Discard())
	}
}

// stopMedia stops the bridge (if any) and waits for it.
func (c *call) stopMedia() {
	if c.media == nil {
		return
	}
	c.mediaCancel()
	if c.mediaDone != nil {
		<-c.mediaDone
		c.mediaDone = nil
	}
}

// done reports whether nothing of the call is left running.
func (c *call) done() bool { return c.sipEnded && c.tgEnded && c.mediaDone == nil }

// discardForSIP is the Telegram discard reason for a SIP leg's end. A
// CANCEL is a caller giving up before the answer whatever Reason it
// carries (Asterisk sends Q.850 cause 16 with it), so the ringing
// Telegram user sees a missed call, as tdlib/tdesktop send when their
// caller hangs up before the answer.
// TODO(b2bua-logic): ClassifySIP lets the Reason win over CauseCancelled;
// once it checks the cause first this can be DiscardFor.
func discardForSIP(err error) tgcall.DiscardReason {
	var ce *sip.CallError
	if errors.As(err, &ce) && ce.Cause == sip.CauseCancelled {
		return OutcomeCancelled.Discard()
	}
	return DiscardFor(err)
}
