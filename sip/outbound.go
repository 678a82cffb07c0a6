package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
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
	answered chan struct{}
	cancel   chan Reason
	reAcks   atomic.Int32 // ACKs sent for retransmitted 2xx

	// guarded by leg.mu
	invite      *sip.Request
	ack         *sip.Request
	provisional bool // a provisional arrived: CANCEL may be sent (RFC 3261 §9.1)
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
		leg: leg{
			ending:      newEnding(),
			s:           s,
			port:        port,
			eng:         eng,
			transport:   Transport(tp),
			contactUser: fromUser,
			dtmf:        make(chan DTMF, 16),
		},
		ID:       newCallID(),
		CallID:   callID,
		progress: make(chan ProgressEvent, 8),
		answered: make(chan struct{}),
		cancel:   make(chan Reason, 1),
	}
	c.leg.endCall = c.finish
	c.log = callLogger(s.log, c.ID, callID, "out")
	c.eng.setLogger(c.log)
	c.d = &dialog{
		callID:       callID,
		localTag:     tag,
		local:        sip.Uri{Scheme: "sip", User: fromUser, Host: fromHost},
		remote:       sip.Uri{Scheme: target.Scheme, User: target.User, Host: target.Host, Port: target.Port},
		transport:    tp,
		remoteTarget: target,
		localCSeq:    1 + uint32(time.Now().UnixNano()%1000),
	}
	c.key = dialogKey{callID: callID, localTag: tag}
	if s.cfg.Outbound.RingTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Outbound.RingTimeout)
		s.goTracked(func() { <-c.done; cancel() })
	}

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
	s.dialogs.add(c.key, c)
	c.log.Info("outbound call", "to", target.User, "from", fromUser)
	s.goTracked(func() { c.run(ctx) })
	return c, nil
}

// Hangup ends the call: CANCEL before the answer, BYE after.
func (c *OutboundCall) Hangup(reason Reason) {
	c.mu.Lock()
	confirmed := c.up
	if !confirmed {
		// Queued under mu, which final holds while it brings the call
		// up and takes a queued hang-up: one that arrives with the 2xx
		// is not lost.
		select {
		case c.cancel <- reason:
		default:
		}
	}
	c.mu.Unlock()
	if confirmed {
		c.bye(reason, &CallError{Status: 200, Cause: CauseNormal, Reason: reason})
	}
}

func (c *OutboundCall) shutdown() {
	c.Hangup(shutdownReason)
}

// run drives the INVITE client transaction to its end.
func (c *OutboundCall) run(ctx context.Context) {
	authTries, timerTries := 0, 0
	var cancelReason *Reason
	for {
		c.mu.Lock()
		inv := c.invite
		c.mu.Unlock()
		tx, err := c.s.request(context.WithoutCancel(ctx), inv)
		if err != nil {
			c.finish(&CallError{Status: 503, Cause: CauseTransport, Err: err})
			return
		}
		c.d.setContact(inv.Contact()) // with its port when it names our connection
		res, again := c.awaitFinal(ctx, tx, &cancelReason)
		if again {
			continue
		}
		if res == nil {
			tx.Terminate()
			return
		}
		if (res.StatusCode == 401 || res.StatusCode == 407) && authTries < 2 && cancelReason == nil {
			authTries++
			if err := c.authorize(res); err != nil {
				c.log.Warn("cannot answer challenge", "err", err)
			} else {
				tx.Terminate()
				continue
			}
		}
		if res.StatusCode == 422 && timerTries < 2 && cancelReason == nil && c.raiseSessionInterval(res) {
			timerTries++
			tx.Terminate()
			continue
		}
		tx.Terminate() // 2xx retransmissions now reach onStrayResponse and get ACKed
		c.final(res, cancelReason)
		return
	}
}

// awaitFinal reads responses until a final one, sending CANCEL when asked.
func (c *OutboundCall) awaitFinal(ctx context.Context, tx sip.ClientTransaction, cancelReason **Reason) (*sip.Response, bool) {
	cancelCh := c.cancel
	ctxDone := ctx.Done()
	// RFC 3261 §9.1: without a final response 64*T1 after our CANCEL the
	// INVITE transaction is over (sipgo keeps a proceeding one forever).
	var cancelled <-chan time.Time
	cancel := func() {
		c.sendCancel(**cancelReason)
		t := time.NewTimer(64 * c.s.cfg.T1)
		cancelled = t.C
	}
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				c.onProvisional(res)
				if *cancelReason != nil && c.canCancel() {
					cancel()
				}
				continue
			}
			return res, false
		case <-cancelled:
			c.finish(&CallError{Status: 487, Cause: CauseCancelled, Reason: **cancelReason, Err: errors.New("sip: no final response to the cancelled INVITE")})
			return nil, false
		case <-tx.Done():
			status := 408
			c.finish(&CallError{Status: status, Cause: CauseTimeout, Err: tx.Err()})
			return nil, false
		case r := <-cancelCh:
			cancelCh = nil
			ctxDone = nil
			c.markCancelled(r, cancelReason)
		case <-ctxDone:
			ctxDone = nil
			cancelCh = nil
			c.markCancelled(Reason{Protocol: "SIP", Cause: 487, Text: "Cancelled"}, cancelReason)
		case <-c.s.halt:
			// Close stopped waiting: the PBX never answered our CANCEL
			// (or sent no provisional response that would allow one).
			c.finish(&CallError{Status: 503, Cause: CauseShutdown, Reason: shutdownReason, Err: errHalted})
			return nil, false
		}
		if *cancelReason != nil && c.canCancel() {
			cancel()
		}
	}
}

func (c *OutboundCall) markCancelled(r Reason, cancelReason **Reason) {
	*cancelReason = &r
}

// canCancel reports whether CANCEL may go now: only after a provisional
// response (RFC 3261 §9.1), and once.
func (c *OutboundCall) canCancel() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.provisional {
		return false
	}
	c.provisional = false // send once
	return true
}

// sendCancel sends CANCEL for the INVITE: same Request-URI, Call-ID, From,
// To, CSeq number and top Via as the INVITE (RFC 3261 §9.1).
func (c *OutboundCall) sendCancel(r Reason) {
	c.mu.Lock()
	inv := c.invite
	c.mu.Unlock()
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
	c.mu.Lock()
	c.provisional = true // any provisional, 100 included, allows CANCEL (§9.1)
	c.mu.Unlock()
	reliable := res.StatusCode > 100 && hasOption(res, "Require", "100rel")
	if len(res.Body()) > 0 {
		if err := c.earlyAnswer(res.Body(), reliable); err == nil {
			ev.EarlyMedia = true
		} else {
			c.log.Info("early media SDP not usable", "err", err)
		}
	}
	if reliable {
		c.sendPRACK(res)
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

// sendPRACK acknowledges a reliable provisional (RFC 3262 §7.2) within
// the early dialog it created.
func (c *OutboundCall) sendPRACK(res *sip.Response) {
	h := res.GetHeaders("RSeq")
	if len(h) == 0 {
		return
	}
	rseq, err := parseRSeq(h[0].Value())
	if err != nil {
		return
	}
	c.mu.Lock()
	inv := c.invite
	c.mu.Unlock()
	c.d.mu.Lock()
	c.d.remoteTag = RemoteTag(toTag(res))
	c.d.mu.Unlock()
	c.learnRoute(res)
	req := c.d.newRequest(sip.PRACK, c.d.nextCSeq())
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, inv.CSeq().SeqNo)))
	c.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		if _, err := c.s.do(ctx, req); err != nil {
			c.log.Debug("PRACK failed", "err", err)
		}
	})
}

// learnRoute takes the route set and target from a response that creates
// the dialog (RFC 3261 §12.1.2: Record-Route in reverse order).
func (c *OutboundCall) learnRoute(res *sip.Response) {
	rr := res.GetHeaders("Record-Route")
	c.d.mu.Lock()
	c.d.routeSet = c.d.routeSet[:0]
	for i := len(rr) - 1; i >= 0; i-- {
		if h, ok := rr[i].(*sip.RecordRouteHeader); ok {
			c.d.routeSet = append(c.d.routeSet, *h.Address.Clone())
		}
	}
	c.d.mu.Unlock()
	c.d.setTarget(res.Contact())
}

// authorize answers a 401/407 with credentials for the strongest
// challenge we support and a fresh CSeq.
func (c *OutboundCall) authorize(res *sip.Response) error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Lock()
	defer c.mu.Unlock()
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

// final handles the final response to our INVITE.
func (c *OutboundCall) final(res *sip.Response, cancelReason *Reason) {
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
	c.d.mu.Lock()
	c.d.remoteTag = RemoteTag(toTag(res))
	c.d.mu.Unlock()
	c.learnRoute(res)
	ack := c.d.newRequest(sip.ACK, res.CSeq().SeqNo)
	c.mu.Lock()
	c.ack = ack
	c.mu.Unlock()
	if err := c.s.writeStateless(ack); err != nil {
		c.log.Warn("ACK not sent", "err", err)
	}
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
	c.mu.Lock()
	c.up = true
	if h := res.GetHeader("Allow"); h != nil {
		c.peerAllow = h.Value()
	}
	var late *Reason
	select {
	case r := <-c.cancel:
		// Hangup came after awaitFinal took the 2xx but before the call
		// was up: as a 2xx crossing our CANCEL (above), the call exists
		// at the PBX, so end it with a BYE at once.
		late = &r
	default:
	}
	c.mu.Unlock()
	if late != nil {
		c.bye(*late, &CallError{Status: 487, Cause: CauseCancelled, Reason: *late})
		return
	}
	c.startUACTimer(res)
	close(c.answered)
	c.log.Info("answered")
}

// handleRetransmitted2xx ACKs every copy of the 2xx (RFC 3261 §13.2.2.4);
// a 2xx from another fork gets ACK and BYE.
func (c *OutboundCall) handleRetransmitted2xx(res *sip.Response) {
	c.mu.Lock()
	ack := c.ack
	c.mu.Unlock()
	if ack != nil && RemoteTag(toTag(res)) == c.d.remoteTag {
		if err := c.s.writeStateless(ack.Clone()); err != nil {
			c.log.Debug("re-ACK failed", "err", err)
		}
		c.reAcks.Add(1)
		return
	}
	c.log.Info("2xx from another fork, ending it")
	fork := &dialog{
		callID: c.d.callID, localTag: c.d.localTag, remoteTag: RemoteTag(toTag(res)),
		local: c.d.local, remote: c.d.remote, transport: c.d.transport, laddr: c.d.laddr,
		remoteTarget: *c.d.remoteTarget.Clone(),
	}
	fork.setTarget(res.Contact())
	fa := fork.newRequest(sip.ACK, res.CSeq().SeqNo)
	_ = c.s.writeStateless(fa) // best effort; the BYE below ends the fork either way
	bye := fork.newRequest(sip.BYE, res.CSeq().SeqNo+1)
	c.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		_, _ = c.s.do(ctx, bye) // the fork's fate does not change ours
	})
}

func (c *OutboundCall) finish(e *CallError) bool {
	if !c.end(e) {
		return false
	}
	c.mu.Lock()
	if c.timer != nil {
		c.timer.stop()
	}
	ack := c.ack
	c.mu.Unlock()
	if ack != nil {
		// 2xx copies may still come for 64*T1 and each needs its ACK.
		c.s.rememberAck(c.key, ack)
	}
	c.s.dialogs.remove(c.key)
	// The endpoint first: its RTCP BYE needs the socket (RFC 3550 §6.3.7).
	c.eng.close()
	c.port.Release()
	logEnd(c.log, e)
	return true
}

// handleInDialog serves BYE, re-INVITE, UPDATE and INFO from the PBX.
func (c *OutboundCall) handleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c.d.mu.Lock()
	remote := c.d.remoteTag
	c.d.mu.Unlock()
	if remote == "" || RemoteTag(fromTag(req)) != remote {
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

// startUACTimer applies the Session-Expires of the 2xx (RFC 4028 §7.2).
func (c *OutboundCall) startUACTimer(res *sip.Response) {
	se, ok, err := sessionExpiresHeader(res)
	if !ok || err != nil {
		return
	}
	c.mu.Lock()
	c.timer = &sessionTimer{interval: se.Interval, refresher: se.Refresher, weRefresh: se.Refresher != RefresherUAS}
	c.mu.Unlock()
	c.armTimer()
}
