package sip

import (
	"errors"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// reliableState tracks RFC 3262 reliable provisional responses of one
// INVITE: at most one is outstanding at a time (§3).
type reliableState struct {
	rseq    uint32
	pending *reliableResponse
}

type reliableResponse struct {
	rseq    uint32
	hasSDP  bool
	pracked chan struct{}
	once    sync.Once
	aborted chan struct{}
}

func (r *reliableResponse) ack() { r.once.Do(func() { close(r.pracked) }) }

// abort stops the retransmission of an outstanding reliable provisional.
func (s *reliableState) abort() {
	if p := s.pending; p != nil {
		select {
		case <-p.aborted:
		default:
			close(p.aborted)
		}
	}
}

// errNoPRACK means a reliable provisional was never acknowledged.
var errNoPRACK = errors.New("sip: reliable provisional response not acknowledged (no PRACK)")

// sendReliable sends a provisional response reliably: RSeq and Require:
// 100rel, retransmitted at T1, 2T1 … until PRACKed, for at most 64*T1.
func (c *InboundCall) sendReliable(res *sip.Response, hasSDP bool) error {
	// Wait for the previous one (RFC 3262 §3: one outstanding at a time).
	if err := c.waitPRACK(false); err != nil {
		return err
	}
	c.mu.Lock()
	if c.state != stateEarly || c.ended() {
		c.mu.Unlock()
		return ErrAnswered
	}
	if c.rel.rseq == 0 {
		c.rel.rseq = 1 + uint32(time.Now().UnixNano()%(1<<16))
	} else {
		c.rel.rseq++
	}
	p := &reliableResponse{rseq: c.rel.rseq, hasSDP: hasSDP, pracked: make(chan struct{}), aborted: make(chan struct{})}
	c.rel.pending = p
	if hasSDP {
		c.sdpSent = true
	}
	c.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", itoa(int(p.rseq))))
	if err := c.tx.Respond(res); err != nil {
		return err
	}
	if c.Transport != UDP {
		return nil // reliable transports deliver it once (RFC 3262 §3 still wants the PRACK)
	}
	c.s.goTracked(func() {
		t1 := c.s.cfg.T1
		retrans := time.NewTimer(t1)
		defer retrans.Stop()
		giveUp := time.NewTimer(64 * t1)
		defer giveUp.Stop()
		for i := 1; ; i++ {
			select {
			case <-p.pracked:
				return
			case <-p.aborted:
				return
			case <-c.finalSent:
				return
			case <-c.done:
				return
			case <-giveUp.C:
				return
			case <-retrans.C:
				if err := c.tx.Respond(res); err != nil {
					return
				}
				retrans.Reset(timerBackoff(t1, i))
			}
		}
	})
	return nil
}

// waitPRACK waits for the outstanding reliable provisional (if any; with
// onlySDP, only one that carried SDP) to be PRACKed, for up to 64*T1.
func (c *InboundCall) waitPRACK(onlySDP bool) error {
	c.mu.Lock()
	p := c.rel.pending
	c.mu.Unlock()
	if p == nil || (onlySDP && !p.hasSDP) {
		return nil
	}
	t := time.NewTimer(64 * c.s.cfg.T1)
	defer t.Stop()
	select {
	case <-p.pracked:
		return nil
	case <-c.done:
		return ErrCallEnded
	case <-c.cancelled:
		return ErrCancelled
	case <-t.C:
		return errNoPRACK
	}
}

func (c *InboundCall) waitPRACKWithSDP() error {
	err := c.waitPRACK(true)
	if errors.Is(err, errNoPRACK) {
		// RFC 3262 §3: reject the INVITE when a reliable provisional
		// response is never acknowledged.
		c.Reject(504, "No PRACK")
	}
	return err
}

// handlePRACK matches RAck against the outstanding reliable provisional.
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
	c.mu.Lock()
	p := c.rel.pending
	c.mu.Unlock()
	if p == nil || ra.RSeq != p.rseq || ra.CSeq != c.inv.CSeq().SeqNo || ra.Method != "INVITE" {
		// §7.2: a PRACK that matches no unacknowledged response.
		c.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// An SDP answer in a PRACK (when our 18x carried an offer) is not
	// used: our reliable 18x only carries answers.
	p.ack()
	c.s.reply(tx, req, 200, "OK", nil)
}
