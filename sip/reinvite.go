package sip

import (
	"math/rand/v2"

	"github.com/emiago/sipgo/sip"
)

// answerOffer answers a new offer inside the dialog with the b2bua's hook
// or the call's SDP session.
func (c *InboundCall) answerOffer(offer []byte) ([]byte, error) {
	c.mu.Lock()
	f := c.onOffer
	c.mu.Unlock()
	if f != nil {
		return f(offer)
	}
	return c.eng.answer(offer)
}

// beginModify marks a re-INVITE/UPDATE in progress; false means glare.
func (c *InboundCall) beginModify() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inviteBusy {
		return false
	}
	c.inviteBusy = true
	return true
}

func (c *InboundCall) endModify() {
	c.mu.Lock()
	c.inviteBusy = false
	c.mu.Unlock()
}

// handleReinvite serves a re-INVITE: hold/resume, codec change, target
// refresh or session refresh (RFC 3261 §14.2, RFC 4028).
func (c *InboundCall) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st != stateConfirmed {
		// §14.2: a second INVITE before the first is done: 500 with a
		// Retry-After of 0-10 s.
		c.s.reply(tx, req, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", itoa(rand.IntN(11))))
		return
	}
	if !c.beginModify() {
		// §14.2: our own re-INVITE (or UPDATE) is pending: glare.
		c.s.reply(tx, req, 491, "Request Pending", nil)
		return
	}
	defer c.endModify()
	timer, minSE, err := c.s.negotiateTimerUAS(req)
	if err != nil {
		if minSE > 0 {
			c.s.reply(tx, req, 422, "Session Interval Too Small", nil, sip.NewHeader("Min-SE", itoa(int(minSE.Seconds()))))
		} else {
			c.s.reply(tx, req, 400, "Bad Session-Expires", nil)
		}
		return
	}
	var body []byte
	late := len(req.Body()) == 0
	if late {
		// A re-INVITE without SDP asks us to offer (§14.2); the answer
		// comes in the ACK.
		body = c.eng.offer(false)
	} else {
		body, err = c.answerOffer(req.Body())
		if err != nil {
			me := asMediaError(err)
			// The old session stays in force (RFC 3261 §14.2).
			c.s.reply(tx, req, me.Status, statusText(me.Status), nil, sip.NewHeader("Warning", me.Warning))
			return
		}
	}
	c.d.setTarget(req.Contact())
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Server", c.s.cfg.UserAgent))
	res.AppendHeader(c.s.contact(c.d.transport, c.ToUser))
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.applyTimer(timer, res, req)
	w := &ackWaiter{cseq: req.CSeq().SeqNo, acked: make(chan *sip.Request, 1), wantAnswer: late}
	c.mu.Lock()
	c.ackWait = w
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.log.Warn("re-INVITE 2xx not sent", "err", err)
		return
	}
	if !late {
		c.mediaChanged()
	}
	c.s.goTracked(func() { c.awaitAck(tx, res, w, false) })
}

// applyTimer takes the timer a refresh request negotiated, adds it to our
// 2xx and restarts it.
func (c *InboundCall) applyTimer(n *sessionTimer, res *sip.Response, req *sip.Request) {
	c.mu.Lock()
	t := c.timer
	if t == nil && n != nil {
		c.timer, t = n, n
	} else if t != nil && n != nil {
		t.update(n)
	}
	c.mu.Unlock()
	if t == nil {
		return
	}
	if n == nil {
		return // a refresh without Session-Expires: the timer keeps running unchanged
	}
	t.addHeaders(res, req)
	c.startSessionTimer()
}

// handleUpdate serves UPDATE (RFC 3311): a session refresh without SDP,
// or a new offer.
func (c *InboundCall) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !c.beginModify() {
		c.s.reply(tx, req, 491, "Request Pending", nil)
		return
	}
	defer c.endModify()
	timer, minSE, err := c.s.negotiateTimerUAS(req)
	if err != nil {
		if minSE > 0 {
			c.s.reply(tx, req, 422, "Session Interval Too Small", nil, sip.NewHeader("Min-SE", itoa(int(minSE.Seconds()))))
		} else {
			c.s.reply(tx, req, 400, "Bad Session-Expires", nil)
		}
		return
	}
	var body []byte
	if len(req.Body()) > 0 {
		body, err = c.answerOffer(req.Body())
		if err != nil {
			me := asMediaError(err)
			c.s.reply(tx, req, me.Status, statusText(me.Status), nil, sip.NewHeader("Warning", me.Warning))
			return
		}
	}
	c.d.setTarget(req.Contact())
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Server", c.s.cfg.UserAgent))
	res.AppendHeader(c.s.contact(c.d.transport, c.ToUser))
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	c.applyTimer(timer, res, req)
	if err := tx.Respond(res); err != nil {
		c.log.Warn("UPDATE 2xx not sent", "err", err)
		return
	}
	if len(body) > 0 {
		c.mediaChanged()
	}
}
