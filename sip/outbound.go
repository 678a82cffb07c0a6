package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tgsip/tgsip/sip/sdp"
)

// DialRequest is a call from Telegram to the PBX.
type DialRequest struct {
	// To is the user part dialled at the PBX (or a full sip: URI).
	To string
	// FromUser and FromName are the caller id we present; empty uses the
	// configured from_user.
	FromUser, FromName string
	// Headers are extra headers for the INVITE (X-…).
	Headers map[string]string
}

// ProgressEvent is a provisional response to our INVITE.
type ProgressEvent struct {
	Status int // 100, 180, 183 …
	// EarlyMedia is set when the response carried SDP we accepted.
	EarlyMedia bool
}

// OutboundCall is an INVITE we sent to the PBX and its dialog.
type OutboundCall struct {
	leg

	// ID is our short id for logs and records; CallID the SIP Call-ID.
	ID     string
	CallID string

	progress chan ProgressEvent
	answered chan struct{} // closed by the loop
	stopCtx  func() bool   // unhooks the Dial context
	cancelTO context.CancelFunc

	// Owned by the loop.
	invite       *sip.Request
	ack          *sip.Request
	txGen        int  // which INVITE transaction is current (401/422 retries make new ones)
	provisional  bool // a provisional arrived: CANCEL may be sent (RFC 3261 §9.1)
	cancelReason *Reason
	cancelSent   bool
	cancelTimer  *time.Timer
	authTries    int
	timerTries   int
	rseqs        map[RemoteTag]uint32 // the last RSeq taken per early dialog (RFC 3262 §4)
}

// Progress delivers provisional responses (buffered; late readers may
// miss some).
func (c *OutboundCall) Progress() <-chan ProgressEvent { return c.progress }

// Answered is closed when the PBX answered and we sent the ACK.
func (c *OutboundCall) Answered() <-chan struct{} { return c.answered }

// Dial sends an INVITE to the configured PBX. It returns at once; watch
// Progress, Answered and Done. Cancelling ctx before the answer sends
// CANCEL.
func (s *Server) Dial(ctx context.Context, dr DialRequest) (*OutboundCall, error) {
	select {
	case <-s.closing:
		return nil, errors.New("sip: server closing")
	default:
	}
	if s.cfg.Outbound.URI == "" {
		return nil, errors.New("sip: no outbound PBX configured")
	}
	var target sip.Uri
	if err := sip.ParseUri(s.cfg.Outbound.URI, &target); err != nil {
		return nil, fmt.Errorf("sip: outbound uri: %w", err)
	}
	if strings.HasPrefix(dr.To, "sip:") || strings.HasPrefix(dr.To, "sips:") {
		if err := sip.ParseUri(dr.To, &target); err != nil {
			return nil, fmt.Errorf("sip: dial uri: %w", err)
		}
	} else {
		target.User = dr.To
	}
	port, err := s.ports.Allocate()
	if err != nil {
		return nil, err
	}
	eng := s.newEngine(port, s.cfg.srtpPolicy(s.cfg.Outbound.SRTP), s.cfg.Outbound.SymmetricRTP)
	callID := sip.GenerateTagN(24) + "@" + s.hostForURIs()
	tag := LocalTag(sip.GenerateTagN(16))
	fromUser := dr.FromUser
	if fromUser == "" {
		fromUser = s.identityUser()
	}
	fromHost := s.cfg.Outbound.FromDomain
	if fromHost == "" {
		fromHost = s.hostForURIs()
	}
	tp := "UDP"
	if v, ok := target.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToUpper(v)
	} else if target.IsEncrypted() {
		tp = "TLS"
	}
	c := &OutboundCall{
		leg:      newLeg(s, port, eng, Transport(tp), fromUser),
		ID:       newCallID(),
		CallID:   callID,
		progress: make(chan ProgressEvent, 8),
		answered: make(chan struct{}),
	}
	c.serve, c.onShutdown, c.onEnd, c.hold = c.serveInDialog, c.shutdownNow, c.onFinish, c.holdUntilAnswer
	c.log = callLogger(s.log, c.ID, callID, "out")
	c.eng.setLogger(c.log)
	c.d = newUACDialog(callID, tag, sip.Uri{Scheme: "sip", User: fromUser, Host: fromHost}, target, tp)
	c.key = dialogKey{callID: callID, localTag: tag}

	inv := c.d.newRequest(sip.INVITE, c.d.localCSeq)
	if from := inv.From(); from != nil {
		from.DisplayName = sanitizeHeaderText(dr.FromName)
	}
	inv.AppendHeader(s.contact(tp, fromUser))
	inv.AppendHeader(sip.NewHeader("Allow", allowMethods))
	inv.AppendHeader(sip.NewHeader("Supported", "timer, 100rel"))
	if se := s.cfg.SessionTimers.Expires; se > 0 {
		inv.AppendHeader(sip.NewHeader("Session-Expires", itoa(int(se/time.Second))))
		inv.AppendHeader(sip.NewHeader("Min-SE", itoa(int(s.cfg.SessionTimers.MinSE/time.Second))))
	}
	for k, v := range dr.Headers {
		inv.AppendHeader(sip.NewHeader(sanitizeHeaderText(k), sanitizeHeaderText(v)))
	}
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(eng.offer(false))
	c.invite = inv
	c.log.Info("outbound call", "to", target.User, "from", fromUser)
	// Cancelling ctx (or the ring timeout) before the answer sends CANCEL.
	if s.cfg.Outbound.RingTimeout > 0 {
		ctx, c.cancelTO = context.WithTimeout(ctx, s.cfg.Outbound.RingTimeout)
	}
	c.stopCtx = context.AfterFunc(ctx, func() {
		c.post(func() { c.cancelCall(Reason{Protocol: "SIP", Cause: 487, Text: "Cancelled"}) })
	})
	c.startLoop()
	if c.ended() {
		return nil, errServerClosed
	}
	if s.addCall(c.key, c) {
		return nil, errors.New("sip: server closing") // the call ends before its INVITE goes out
	}
	c.post(c.sendInvite)
	return c, nil
}

// Hangup ends the call: CANCEL before the answer, BYE after.
func (c *OutboundCall) Hangup(reason Reason) {
	c.call(func() { c.hangup(reason) })
}

func (c *OutboundCall) hangup(reason Reason) {
	if c.over {
		return
	}
	if c.up {
		c.bye(reason, &CallError{Status: 200, Cause: CauseNormal, Reason: reason})
		return
	}
	c.cancelCall(reason)
}

func (c *OutboundCall) shutdownNow() { c.hangup(shutdownReason) }

// sendInvite sends the current INVITE in a new client transaction, off the
// loop; a forwarder posts its responses, its end and a halting Close back.
func (c *OutboundCall) sendInvite() {
	if c.over {
		return
	}
	c.txGen++
	gen, inv, done := c.txGen, c.invite, c.done
	c.s.goTracked(func() {
		tx, err := c.s.request(context.Background(), inv)
		if err != nil {
			c.post(func() { c.finish(&CallError{Status: 503, Cause: CauseTransport, Err: err}) })
			return
		}
		contact := inv.Contact() // with its port when it names our connection
		if !c.post(func() { c.d.setContact(contact) }) {
			tx.Terminate()
			return
		}
		for {
			select {
			case res := <-tx.Responses():
				if c.s.beforeResponsePost != nil {
					c.s.beforeResponsePost(res)
				}
				if !c.post(func() { c.onResponse(gen, tx, res) }) {
					tx.Terminate()
					return
				}
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				c.post(func() {
					if gen == c.txGen {
						c.finish(&CallError{Status: 408, Cause: CauseTimeout, Err: tx.Err()})
					}
				})
				return
			case <-c.s.halt:
				// Close stopped waiting: the PBX never answered our
				// CANCEL (or sent no provisional response that would
				// allow one).
				c.post(func() {
					c.finish(&CallError{Status: 503, Cause: CauseShutdown, Reason: shutdownReason, Err: errHalted})
				})
				tx.Terminate()
				return
			case <-done:
				tx.Terminate()
				return
			}
		}
	})
}

// onResponse takes a response to our INVITE (loop).
func (c *OutboundCall) onResponse(gen int, tx sip.ClientTransaction, res *sip.Response) {
	if gen != c.txGen || c.over {
		if !res.IsProvisional() {
			tx.Terminate()
		}
		return
	}
	if res.IsProvisional() {
		c.onProvisional(res)
		c.maybeCancel()
		return
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && c.authTries < 2 && c.cancelReason == nil {
		c.authTries++
		if err := c.authorize(res); err != nil {
			c.log.Warn("cannot answer challenge", "err", err)
		} else {
			tx.Terminate()
			c.sendInvite()
			return
		}
	}
	if res.StatusCode == 422 && c.timerTries < 2 && c.cancelReason == nil && c.raiseSessionInterval(res) {
		c.timerTries++
		tx.Terminate()
		c.sendInvite()
		return
	}
	c.txGen++      // the transaction's end is no longer news
	tx.Terminate() // 2xx retransmissions now reach onStrayResponse and get ACKed
	c.stopCancelTimer()
	c.final(res)
	c.releaseHeld()
}

// holdUntilAnswer keeps back a BYE or INVITE from the PBX that arrives
// before the final response to our INVITE has been taken (loop). The
// callee sends neither before its 2xx (RFC 3261 §15: no BYE on an early
// dialog; §14.1: no re-INVITE before the INVITE is done), so such a
// request overtook that 2xx on its way to the loop (the 2xx comes through
// the INVITE's transaction, the request through a handler of its own).
// Served at once it would get 481 and the call would stay up with us.
func (c *OutboundCall) holdUntilAnswer(req *sip.Request) bool {
	return !c.up && (req.Method == sip.BYE || req.Method == sip.INVITE) || c.holdForAck(req)
}

// cancelCall asks for the INVITE to be cancelled (loop): the CANCEL goes
// once a provisional response allows it (RFC 3261 §9.1).
func (c *OutboundCall) cancelCall(r Reason) {
	if c.over || c.up || c.cancelReason != nil {
		return
	}
	if c.txGen == 0 {
		// No INVITE went out yet (Dial's context was cancelled at once,
		// or Close began during Dial): nothing to cancel at the PBX.
		status, cause := 487, CauseCancelled
		if r == shutdownReason {
			status, cause = 503, CauseShutdown
		}
		c.finish(&CallError{Status: status, Cause: cause, Reason: r})
		return
	}
	c.cancelReason = &r
	c.maybeCancel()
}

// maybeCancel sends the CANCEL asked for once a provisional response came.
// Without a final response 64*T1 after it the INVITE transaction is over
// (RFC 3261 §9.1; sipgo keeps a proceeding one forever).
func (c *OutboundCall) maybeCancel() {
	if c.cancelReason == nil || c.cancelSent || !c.provisional {
		return
	}
	c.cancelSent = true
	r := *c.cancelReason
	c.sendCancel(r)
	gen := c.txGen
	c.cancelTimer = time.AfterFunc(64*c.s.cfg.T1, func() {
		c.post(func() {
			if gen == c.txGen {
				c.finish(&CallError{Status: 487, Cause: CauseCancelled, Reason: r, Err: errors.New("sip: no final response to the cancelled INVITE")})
			}
		})
	})
}

func (c *OutboundCall) stopCancelTimer() {
	if c.cancelTimer != nil {
		c.cancelTimer.Stop()
	}
}

// sendCancel sends CANCEL for the INVITE: same Request-URI, Call-ID, From,
// To, CSeq number and top Via as the INVITE (RFC 3261 §9.1).
func (c *OutboundCall) sendCancel(r Reason) {
	inv := c.invite
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(inv.Via().Clone())
	sip.CopyHeaders("Route", inv, req)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	if !r.IsZero() {
		req.AppendHeader(sip.NewHeader("Reason", r.String()))
	}
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr
	req.SetBody(nil)
	c.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		if !c.s.sends.enter() {
			c.log.Warn("CANCEL not sent", "err", errServerClosed)
			return
		}
		tx, err := c.s.cli.TransactionRequest(ctx, req, noBuild)
		c.s.sends.leave()
		if err != nil {
			c.log.Warn("CANCEL not sent", "err", err)
			return
		}
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-ctx.Done():
		case <-c.s.halt:
		}
	})
}

func (c *OutboundCall) onProvisional(res *sip.Response) {
	ev := ProgressEvent{Status: res.StatusCode}
	c.provisional = true // any provisional, 100 included, allows CANCEL (§9.1)
	reliable := res.StatusCode > 100 && hasOption(res, "Require", "100rel")
	var rseq uint32
	if reliable {
		h := res.GetHeaders("RSeq")
		var err error
		if len(h) == 0 {
			err = errors.New("no RSeq")
		} else {
			rseq, err = parseRSeq(h[0].Value())
		}
		if err != nil {
			// Cannot be PRACKed: taken as an unreliable one, as before.
			c.log.Info("reliable provisional response without a valid RSeq", "status", res.StatusCode, "err", err)
			reliable = false
		} else if !c.newRSeq(RemoteTag(toTag(res)), rseq) {
			return
		}
	}
	if len(res.Body()) > 0 {
		if err := c.earlyAnswer(res.Body(), reliable); err == nil {
			ev.EarlyMedia = true
		} else {
			c.log.Info("early media SDP not usable", "err", err)
		}
	}
	if reliable {
		c.sendPRACK(res, rseq)
	}
	select {
	case c.progress <- ev:
	default:
	}
}

// earlyAnswer takes the SDP of a provisional response. A reliable one
// carries the answer (RFC 3262 §5); an unreliable one only previews it
// for early media, and the 2xx brings the answer (RFC 3261 §13.2.1,
// RFC 6337 §3.1.1). Either may repeat the SDP in force.
func (c *OutboundCall) earlyAnswer(body []byte, reliable bool) error {
	if reliable {
		return c.takeAnswer(body)
	}
	err := c.eng.previewAnswer(body)
	if errors.Is(err, sdp.ErrRepeatedAnswer) {
		return nil
	}
	if err == nil {
		c.mediaChanged()
	}
	return err
}

// newRSeq checks the RSeq of a reliable provisional response against the
// last one of its early dialog (RFC 3262 §4): the first, or one higher,
// is new; a copy of one already taken (the PBX retransmits until our PRACK
// arrives; the PRACK's own transaction makes it reliable) and one that
// skips a number are discarded, neither PRACKed nor processed.
func (c *OutboundCall) newRSeq(tag RemoteTag, rseq uint32) bool {
	if last, ok := c.rseqs[tag]; ok && rseq != last+1 {
		c.log.Debug("reliable provisional response discarded", "rseq", rseq, "last", last)
		return false
	}
	if c.rseqs == nil {
		c.rseqs = map[RemoteTag]uint32{}
	}
	c.rseqs[tag] = rseq
	return true
}

// sendPRACK acknowledges a reliable provisional (RFC 3262 §7.2) within
// the early dialog it created, off the loop.
func (c *OutboundCall) sendPRACK(res *sip.Response, rseq uint32) {
	c.d.confirm(res)
	req := c.d.newRequest(sip.PRACK, c.d.nextCSeq())
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, c.invite.CSeq().SeqNo)))
	c.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		if _, err := c.s.do(ctx, req); err != nil {
			c.log.Debug("PRACK failed", "err", err)
		}
	})
}

// authorize answers a 401/407 with credentials for the strongest
// challenge we support and a fresh CSeq.
func (c *OutboundCall) authorize(res *sip.Response) error {
	inv := c.invite.Clone()
	inv.SetBody(c.invite.Body())
	h, err := c.s.digestAnswer(res, "INVITE", inv.Recipient.Addr())
	if err != nil {
		return err
	}
	inv.RemoveHeader("Authorization")
	inv.RemoveHeader("Proxy-Authorization")
	inv.AppendHeader(h)
	inv.CSeq().SeqNo = c.d.nextCSeq()
	c.invite = inv
	return nil
}

// raiseSessionInterval answers a 422 Session Interval Too Small: RFC 4028
// §7.4 has the UAC retry with Session-Expires and Min-SE raised to the
// 422's Min-SE, in a new transaction (new CSeq and branch, same Call-ID
// and From tag). It reports false when the 422 gives nothing higher than
// what we asked for (a retry would only be refused again).
func (c *OutboundCall) raiseSessionInterval(res *sip.Response) bool {
	minSE := minSEHeader(res)
	var asked time.Duration
	if se, ok, err := sessionExpiresHeader(c.invite); ok && err == nil {
		asked = se.Interval
	}
	if minSE <= asked {
		c.log.Warn("422 without a higher Min-SE", "min_se", minSE, "session_expires", asked)
		return false
	}
	inv := c.invite.Clone()
	inv.SetBody(c.invite.Body())
	inv.RemoveHeader("Session-Expires")
	inv.RemoveHeader("x") // compact form
	inv.RemoveHeader("Min-SE")
	secs := itoa(int(minSE / time.Second))
	inv.AppendHeader(sip.NewHeader("Session-Expires", secs))
	inv.AppendHeader(sip.NewHeader("Min-SE", secs))
	previous := c.invite.CSeq().SeqNo
	inv.CSeq().SeqNo = c.d.nextCSeq()
	c.invite = inv
	c.log.Info("PBX wants a longer session interval, retrying", "min_se", minSE,
		"cseq", inv.CSeq().SeqNo, "previous_cseq", previous)
	return true
}

// final handles the final response to our INVITE (loop).
func (c *OutboundCall) final(res *sip.Response) {
	cancelReason := c.cancelReason
	if !res.IsSuccess() {
		var r Reason
		if h := res.GetHeaders("Reason"); len(h) > 0 {
			r, _ = parseReason(h[0].Value()) // informative only
		}
		cause := CauseRejected
		if cancelReason != nil && res.StatusCode == 487 {
			cause = CauseCancelled
		}
		c.finish(&CallError{Status: res.StatusCode, Cause: cause, Reason: r, Remote: cancelReason == nil,
			RetryAfter: parseRetryAfter(res.GetHeader("Retry-After"))})
		return
	}
	c.d.confirm(res)
	c.ack = c.d.newRequest(sip.ACK, res.CSeq().SeqNo)
	c.sendAck(c.ack)
	if cancelReason != nil {
		// The 2xx crossed our CANCEL (RFC 3261 §9.1): the call exists at
		// the PBX, so ACK it and end it at once.
		c.bye(*cancelReason, &CallError{Status: 487, Cause: CauseCancelled, Reason: *cancelReason})
		return
	}
	if len(res.Body()) > 0 {
		// The 2xx's SDP is the answer unless a reliable 18x carried it
		// already; then RFC 3261 §13.2.1 has us ignore it (ErrNoOffer).
		// A repeat of the SDP in force is no new answer (RFC 3264 §8).
		err := c.takeAnswer(res.Body())
		if errors.Is(err, sdp.ErrNoOffer) {
			c.log.Info("SDP in 2xx ignored: the answer came in a reliable provisional response")
		} else if err != nil {
			c.log.Warn("SDP answer not acceptable", "err", err)
			me := asMediaError(err)
			c.bye(Reason{Protocol: "SIP", Cause: me.Status, Text: "Incompatible media"}, &CallError{Status: me.Status, Cause: CauseRejected, Err: err})
			return
		}
	}
	c.up = true
	if h := res.GetHeader("Allow"); h != nil {
		c.peerAllow = h.Value()
	}
	// RFC 4028 §7.2: the 2xx's Session-Expires sets the timer.
	if t := newUACTimer(res); t != nil {
		c.timer = t
		c.armTimer()
	}
	close(c.answered)
	c.log.Info("answered")
}

// handleRetransmitted2xx posts a 2xx that came after our INVITE's
// transaction ended to the loop.
func (c *OutboundCall) handleRetransmitted2xx(res *sip.Response) {
	c.post(func() { c.retransmitted2xx(res) })
}

// retransmitted2xx ACKs every copy of the 2xx to our INVITE or last
// re-INVITE (RFC 3261 §13.2.2.4); a 2xx from another fork gets ACK and BYE.
func (c *OutboundCall) retransmitted2xx(res *sip.Response) {
	if c.reAck(res) {
		return
	}
	if RemoteTag(toTag(res)) == c.d.remoteTag {
		if c.ack != nil && res.CSeq().SeqNo == c.ack.CSeq().SeqNo {
			c.resendAck(c.ack) // the initial 2xx again, after a re-INVITE of ours
		}
		return
	}
	c.log.Info("2xx from another fork, ending it")
	fork := c.d.fork(res)
	fa := fork.newRequest(sip.ACK, res.CSeq().SeqNo)
	bye := fork.newRequest(sip.BYE, res.CSeq().SeqNo+1)
	c.s.goTracked(func() {
		_ = c.s.writeStateless(fa) // best effort; the BYE below ends the fork either way
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		_, _ = c.s.do(ctx, bye) // the fork's fate does not change ours
	})
}

// onFinish is the outbound part of finish: the Dial context and timers
// let go, and the ACK is kept for late 2xx copies.
func (c *OutboundCall) onFinish(*CallError) {
	c.txGen++
	c.stopCancelTimer()
	if c.stopCtx != nil {
		c.stopCtx()
	}
	if c.cancelTO != nil {
		c.cancelTO()
	}
	if c.ack != nil {
		// 2xx copies may still come for 64*T1 and each needs its ACK.
		c.s.rememberAck(c.key, c.ack)
	}
}

// serveInDialog serves BYE, re-INVITE, UPDATE and INFO from the PBX (loop).
func (c *OutboundCall) serveInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if c.d.remoteTag == "" || RemoteTag(fromTag(req)) != c.d.remoteTag {
		c.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if !c.d.checkRemoteCSeq(req.CSeq().SeqNo, req.Method) {
		c.s.reply(tx, req, 500, "CSeq Out of Order", nil)
		return
	}
	switch req.Method {
	case sip.BYE:
		c.byeReceived(req, tx)
	case sip.INFO:
		c.handleInfo(req, tx)
	case sip.INVITE, sip.UPDATE:
		c.handleModify(req, tx)
	default:
		c.s.reply(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowMethods))
	}
}
