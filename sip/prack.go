package sip

import (
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"
)

// reliableState tracks the RFC 3262 reliable provisional responses of one
// INVITE, on the call's loop: at most one is outstanding at a time (§3);
// what must wait for its PRACK (the next reliable provisional, a 2xx after
// one with SDP) waits in waiters.
type reliableState struct {
	rseq    uint32
	pending *reliableResponse
	waiters []func(error)
}

type reliableResponse struct {
	rseq   uint32
	hasSDP bool
	rt     *retransmitter
}

// acked ends the outstanding reliable provisional (its PRACK came) and
// lets its waiters go on.
func (s *reliableState) acked() {
	if p := s.pending; p != nil {
		p.rt.stop()
		s.pending = nil
	}
	s.flush(nil)
}

// finalSent stops retransmitting the outstanding reliable provisional: the
// final response went out (RFC 3262 §3). Its PRACK, if it still comes, is
// matched and answered 200; the waiters (provisional responses) learn that
// the INVITE is answered.
func (s *reliableState) finalSent() {
	if p := s.pending; p != nil {
		p.rt.stop()
	}
	s.flush(ErrAnswered)
}

// abort stops the outstanding reliable provisional and fails its waiters.
func (s *reliableState) abort(err error) {
	if p := s.pending; p != nil {
		p.rt.stop()
		s.pending = nil
	}
	s.flush(err)
}

// flush runs the waiters in order; one may queue itself again behind a
// reliable provisional it sent (a waiter queued meanwhile waits for it).
func (s *reliableState) flush(err error) {
	ws := s.waiters
	s.waiters = nil
	for _, w := range ws {
		w(err)
	}
}

// errNoPRACK means a reliable provisional was never acknowledged.
var errNoPRACK = errors.New("sip: reliable provisional response not acknowledged (no PRACK)")

// sendReliable sends a provisional response reliably (loop): RSeq and
// Require: 100rel, retransmitted at T1, 2T1 … until PRACKed; after 64*T1
// without a PRACK the INVITE is rejected with 504 (RFC 3262 §3).
func (c *InboundCall) sendReliable(res *sip.Response, hasSDP bool) error {
	if c.rel.rseq == 0 {
		c.rel.rseq = 1 + uint32(time.Now().UnixNano()%(1<<16))
	} else {
		c.rel.rseq++
	}
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", itoa(int(c.rel.rseq))))
	if err := c.tx.Respond(res); err != nil {
		return err
	}
	p := &reliableResponse{rseq: c.rel.rseq, hasSDP: hasSDP}
	if hasSDP {
		c.sdpSent = true
	}
	c.rel.pending = p
	p.rt = c.retransmit(func() {
		if err := c.tx.Respond(res); err != nil {
			p.rt.stop()
		}
	}, func() {
		if c.rel.pending != p {
			return
		}
		c.rel.pending = nil
		// RFC 3262 §3: reject the INVITE when a reliable provisional
		// response is never acknowledged.
		c.rel.flush(errNoPRACK)
		c.reject(504, Reason{Protocol: "SIP", Cause: 504, Text: "No PRACK"}, 0)
	})
	return nil
}

// handlePRACK matches RAck against the outstanding reliable provisional
// (loop).
func (c *InboundCall) handlePRACK(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("RAck")
	if h == nil {
		c.s.reply(tx, req, 400, "Missing RAck", nil)
		return
	}
	ra, err := parseRAck(h.Value())
	if err != nil {
		c.s.reply(tx, req, 400, "Bad RAck", nil)
		return
	}
	p := c.rel.pending
	if p == nil || ra.RSeq != p.rseq || ra.CSeq != c.inv.CSeq().SeqNo || ra.Method != "INVITE" {
		// §7.2: a PRACK that matches no unacknowledged response.
		c.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// An SDP answer in a PRACK (when our 18x carried an offer) is not
	// used: our reliable 18x only carries answers.
	c.s.reply(tx, req, 200, "OK", nil)
	c.rel.acked()
}
