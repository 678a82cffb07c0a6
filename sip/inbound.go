package sip

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// callState is where an inbound INVITE is in its life.
type callState int

const (
	stateEarly     callState = iota // INVITE received, no final response
	stateAnswered                   // 2xx sent, waiting for ACK
	stateConfirmed                  // ACK received
	stateEnded
)

// InboundCall is one INVITE from the PBX and the dialog it creates. The
// b2bua answers it with Ringing/Progress/Answer or Reject, ends it with
// Hangup, and learns of its end through Done and Err.
type InboundCall struct {
	ending

	// ID is our short id for logs and records.
	ID string
	// CallID is the SIP Call-ID.
	CallID string
	// Trunk is the name of the trunk that let the call in.
	Trunk string
	// RequestUser is the user part of the Request-URI (the dialled number).
	RequestUser string
	// FromUser / ToUser are the user parts of From and To.
	FromUser, ToUser string
	// CallerID is the calling number: P-Asserted-Identity's user when the
	// trunk sent one, else From's; CallerName is the matching display name.
	CallerID, CallerName string
	// Source is where the INVITE came from, over Transport.
	Source    netip.AddrPort
	Transport Transport
	// Offer is the SDP offer of the INVITE (empty for a late offer).
	Offer []byte

	s    *Server
	d    *dialog
	key  dialogKey
	inv  *sip.Request
	tx   sip.ServerTransaction
	log  *slog.Logger
	port *RTPPort
	eng  mediaEngine

	localSDP  []byte // our answer (or our offer when the INVITE had none)
	lateOffer bool

	cancelled  chan struct{}
	cancelOnce sync.Once
	cancelReq  atomic.Pointer[sip.Request]
	finalSent  chan struct{}
	finalOnce  sync.Once
	confirmed  chan struct{}

	mu         sync.Mutex
	state      callState
	sdpSent    bool // our SDP went out in a reliable provisional
	rel        reliableState
	timer      *sessionTimer
	inviteBusy bool       // a re-INVITE or UPDATE is being processed or sent
	ackWait    *ackWaiter // the 2xx to an INVITE waiting for its ACK
	onOffer    func([]byte) ([]byte, error)
	onMedia    func(Media)
	dtmf       chan DTMF
	peerAllow  string
}

// ackWaiter is a 2xx to an INVITE (initial or re-INVITE) that waits for
// its ACK.
type ackWaiter struct {
	cseq  uint32
	acked chan *sip.Request
	once  sync.Once
	// wantAnswer: our 2xx carried an offer (late-offer INVITE), so the ACK
	// carries the answer.
	wantAnswer bool
}

func (w *ackWaiter) ack(r *sip.Request) {
	w.once.Do(func() { w.acked <- r; close(w.acked) })
}

// Header returns the first value of a header of the INVITE.
func (c *InboundCall) Header(name string) string {
	if h := c.inv.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// Logger is the call's logger (call id, SIP Call-ID).
func (c *InboundCall) Logger() *slog.Logger { return c.log }

// Media is the RTP endpoint as last negotiated.
func (c *InboundCall) Media() Media { return c.eng.media() }

// DTMF delivers key presses received in SIP INFO requests.
func (c *InboundCall) DTMF() <-chan DTMF { return c.dtmf }

// OnOffer installs the function that answers new offers in re-INVITE or
// UPDATE (hold, resume, codec change). Without it the call's own SDP
// session answers (a sendonly offer gets recvonly back).
func (c *InboundCall) OnOffer(f func(offer []byte) (answer []byte, err error)) {
	c.mu.Lock()
	c.onOffer = f
	c.mu.Unlock()
}

// OnMedia installs a function called after each successful renegotiation.
func (c *InboundCall) OnMedia(f func(Media)) {
	c.mu.Lock()
	c.onMedia = f
	c.mu.Unlock()
}

// Confirmed is closed when the ACK for our 2xx arrived: the call is up.
func (c *InboundCall) Confirmed() <-chan struct{} { return c.confirmed }

// LocalSDP is the SDP we will answer with (computed when the INVITE came).
func (c *InboundCall) LocalSDP() []byte { return c.localSDP }

// onInvite handles every INVITE: a new call, or a re-INVITE in a dialog.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if toTag(req) != "" {
		s.inDialog(req, tx)
		return
	}
	select {
	case <-s.closing:
		s.reply(tx, req, 503, "Service Unavailable", nil)
		return
	default:
	}
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil ||
		fromTag(req) == "" || req.CSeq().MethodName != sip.INVITE {
		// RFC 3261 §8.1.1.3 (From tag) and §8.1.1.5 (CSeq method).
		s.reply(tx, req, 400, "Bad Request", nil)
		return
	}
	// A Kamailio in front fails over after ~2 s of silence; answer at once.
	s.reply(tx, req, 100, "Trying", nil)

	src := sourceAddr(req)
	verdict := s.gate.check(req, src.Addr())
	if verdict.Status != 0 {
		text := "Forbidden"
		switch verdict.Status {
		case 401:
			text = "Unauthorized"
		case 407:
			text = "Proxy Authentication Required"
		}
		s.log.Info("INVITE refused", "status", verdict.Status, "why", verdict.Why, "src", src, "call_id", req.CallID().Value())
		s.reply(tx, req, verdict.Status, text, nil, verdict.Challenges...)
		return
	}
	if bad := unsupportedRequire(req); bad != "" {
		s.reply(tx, req, 420, "Bad Extension", nil, sip.NewHeader("Unsupported", bad))
		return
	}
	timer, minSE, err := s.negotiateTimerUAS(req)
	if err != nil {
		if minSE > 0 {
			s.reply(tx, req, 422, "Session Interval Too Small", nil, sip.NewHeader("Min-SE", itoa(int(minSE/time.Second))))
		} else {
			s.reply(tx, req, 400, "Bad Session-Expires", nil)
		}
		return
	}
	port, err := s.ports.Allocate()
	if err != nil {
		s.log.Warn("no RTP port for INVITE", "err", err)
		s.reply(tx, req, 503, "Service Unavailable", nil)
		return
	}
	eng := s.newEngine(port)
	c := s.newInboundCall(req, tx, verdict.Trunk, port, eng, timer)
	if len(req.Body()) > 0 {
		ans, err := eng.answer(req.Body())
		if err != nil {
			me := asMediaError(err)
			c.log.Info("offer not acceptable", "status", me.Status, "err", err)
			port.Release()
			s.reply(tx, req, me.Status, "Not Acceptable Here", nil, sip.NewHeader("Warning", me.Warning))
			return
		}
		c.localSDP = ans
	} else {
		c.lateOffer = true
		c.localSDP = eng.offer(false)
	}
	s.dialogs.add(c.key, c)
	c.log.Info("inbound call", "trunk", c.Trunk, "to", c.RequestUser, "from", c.CallerID, "src", src, "transport", c.Transport)
	if s.onCall == nil {
		c.Reject(480, "No handler")
	} else {
		s.goTracked(func() { s.onCall(c) })
	}
	c.serveInvite()
}

func (s *Server) newInboundCall(req *sip.Request, tx sip.ServerTransaction, trunk *TrunkConfig, port *RTPPort, eng mediaEngine, timer *sessionTimer) *InboundCall {
	callID := req.CallID().Value()
	tag := LocalTag(sip.GenerateTagN(16))
	c := &InboundCall{
		ending:      newEnding(),
		ID:          newCallID(),
		CallID:      callID,
		Trunk:       trunk.Name,
		RequestUser: req.Recipient.User,
		Source:      sourceAddr(req),
		Transport:   Transport(strings.ToUpper(req.Transport())),
		Offer:       req.Body(),
		s:           s,
		inv:         req,
		tx:          tx,
		port:        port,
		eng:         eng,
		cancelled:   make(chan struct{}),
		finalSent:   make(chan struct{}),
		confirmed:   make(chan struct{}),
		timer:       timer,
		dtmf:        make(chan DTMF, 16),
	}
	if h := req.GetHeader("Allow"); h != nil {
		c.peerAllow = h.Value()
	}
	from, to := req.From(), req.To()
	c.FromUser, c.ToUser = from.Address.User, to.Address.User
	c.CallerID, c.CallerName = from.Address.User, from.DisplayName
	if pai := req.GetHeader("P-Asserted-Identity"); pai != nil {
		var u sip.Uri
		var params sip.HeaderParams
		// Only the first identity counts (a sip: and a tel: may follow).
		first := splitOutsideQuotes(pai.Value(), ',')[0]
		if name, err := sip.ParseAddressValue(strings.TrimSpace(first), &u, &params); err == nil && u.User != "" {
			c.CallerID = u.User
			if name != "" {
				c.CallerName = name
			}
		}
	}
	c.log = callLogger(s.log, c.ID, callID, "in")
	d := &dialog{
		callID:     callID,
		localTag:   tag,
		remoteTag:  RemoteTag(fromTag(req)),
		local:      to.Address,
		remote:     from.Address,
		transport:  req.Transport(),
		dest:       req.Source(),
		remoteCSeq: req.CSeq().SeqNo,
	}
	if ct := req.Contact(); ct != nil {
		d.remoteTarget = *ct.Address.Clone()
	} else {
		d.remoteTarget = *from.Address.Clone()
	}
	// UAS route set: the Record-Route values in order (RFC 3261 §12.1.1).
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			d.routeSet = append(d.routeSet, *rr.Address.Clone())
		}
	}
	d.localCSeq = 1 + uint32(time.Now().UnixNano()%1000)
	c.d = d
	c.key = dialogKey{callID: callID, localTag: tag}
	return c
}

// unsupportedRequire lists Require option tags we do not implement.
func unsupportedRequire(req *sip.Request) string {
	var bad []string
	for _, t := range headerValues(req, "Require") {
		switch strings.ToLower(t) {
		case "100rel", "timer":
		default:
			bad = append(bad, t)
		}
	}
	return strings.Join(bad, ", ")
}

// serveInvite holds sipgo's INVITE handler until the INVITE has a final
// response: sipgo terminates a server transaction whose handler returned
// without one.
func (c *InboundCall) serveInvite() {
	if !c.tx.OnCancel(func(r *sip.Request) { c.cancelReq.Store(r); c.markCancelled() }) {
		c.markCancelled()
	}
	select {
	case <-c.finalSent:
	case <-c.cancelled:
		// sipgo has answered 200 to the CANCEL and 487 to the INVITE.
		c.finish(&CallError{Status: 487, Cause: CauseCancelled, Remote: true, Reason: c.cancelReason()})
	case <-c.tx.Done():
		c.finish(&CallError{Status: 500, Cause: CauseTransport, Err: c.tx.Err()})
	case <-c.done:
	}
}

func (c *InboundCall) markCancelled() {
	c.cancelOnce.Do(func() { close(c.cancelled) })
}

// cancelReason is the RFC 3326 Reason of the CANCEL, if it had one.
func (c *InboundCall) cancelReason() Reason {
	if r := c.cancelReq.Load(); r != nil {
		if h := r.GetHeader("Reason"); h != nil {
			if reason, err := parseReason(h.Value()); err == nil {
				return reason
			}
		}
	}
	return Reason{}
}

// response builds a response to the INVITE carrying our tag and Contact.
func (c *InboundCall) response(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(c.inv, code, reason, body)
	if to := res.To(); to != nil {
		to.Params.Add("tag", string(c.d.localTag))
	}
	res.AppendHeader(sip.NewHeader("Server", c.s.cfg.UserAgent))
	if code > 100 && code < 300 {
		res.AppendHeader(c.s.contact(c.d.transport, c.ToUser))
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// Ringing sends 180 Ringing (reliably when the INVITE requires 100rel).
func (c *InboundCall) Ringing() error {
	return c.provisional(180, "Ringing", nil)
}

// Progress sends 183 Session Progress with early media SDP; nil means the
// answer computed when the INVITE arrived.
func (c *InboundCall) Progress(sdp []byte) error {
	if sdp == nil {
		sdp = c.localSDP
	}
	return c.provisional(183, "Session Progress", sdp)
}

func (c *InboundCall) provisional(code int, text string, body []byte) error {
	c.mu.Lock()
	if c.state != stateEarly || c.ended() {
		c.mu.Unlock()
		return ErrAnswered
	}
	reliable := hasOption(c.inv, "Require", "100rel")
	c.mu.Unlock()
	res := c.response(code, text, body)
	if reliable {
		return c.sendReliable(res, len(body) > 0)
	}
	return c.tx.Respond(res)
}

// Answer sends 200 OK with sdp (nil: the precomputed answer), retransmits
// it until the ACK comes (RFC 3261 §13.3.1.4) and, if no ACK comes within
// 64*T1, ends the call with a BYE. It returns once the 200 is sent.
func (c *InboundCall) Answer(sdp []byte) error {
	if sdp == nil {
		sdp = c.localSDP
	}
	// RFC 3262 §3: no 2xx before the PRACK of a reliable provisional that
	// carried SDP.
	if err := c.waitPRACKWithSDP(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.ended() {
		c.mu.Unlock()
		return ErrCallEnded
	}
	if c.state != stateEarly {
		c.mu.Unlock()
		return ErrAnswered
	}
	if c.sdpSent && !c.lateOffer {
		sdp = nil // the offer/answer exchange finished in the reliable 183
	}
	c.state = stateAnswered
	w := &ackWaiter{cseq: c.inv.CSeq().SeqNo, acked: make(chan *sip.Request, 1), wantAnswer: c.lateOffer}
	c.ackWait = w
	timer := c.timer
	c.mu.Unlock()

	res := c.response(200, "OK", sdp)
	if timer != nil {
		timer.addHeaders(res, c.inv)
	}
	if err := c.tx.Respond(res); err != nil {
		if errors.Is(err, sip.ErrTransactionCanceled) {
			// The CANCEL won the race: 487 went out instead (RFC 3261 §9.2).
			return ErrCancelled
		}
		c.finish(&CallError{Status: 500, Cause: CauseTransport, Err: err})
		return err
	}
	c.finalOnce.Do(func() { close(c.finalSent) })
	c.log.Info("answered")
	c.s.goTracked(func() { c.awaitAck(c.tx, res, w, true) })
	return nil
}

// awaitAck retransmits a 2xx at T1, 2T1 … T2 until its ACK arrives; after
// 64*T1 without one the dialog is torn down with a BYE.
func (c *InboundCall) awaitAck(tx sip.ServerTransaction, res *sip.Response, w *ackWaiter, initial bool) {
	t1 := c.s.cfg.T1
	giveUp := time.NewTimer(64 * t1)
	defer giveUp.Stop()
	retrans := time.NewTimer(t1)
	defer retrans.Stop()
	if c.Transport != UDP {
		retrans.Stop() // reliable transports carry the 2xx once
	}
	txAcks, txDone := tx.Acks(), tx.Done()
	for i := 1; ; i++ {
		select {
		case ack := <-w.acked:
			c.acked(ack, w, initial)
			return
		case ack := <-txAcks:
			// An ACK that reused the INVITE's branch lands in the tx.
			c.acked(ack, w, initial)
			return
		case <-txDone:
			txAcks, txDone = nil, nil
		case <-retrans.C:
			if err := tx.Respond(res); err != nil {
				_ = c.s.srv.WriteResponse(res) // the tx is gone; a stateless copy is as good
			}
			retrans.Reset(timerBackoff(t1, i))
		case <-giveUp.C:
			c.log.Warn("no ACK for 2xx, hanging up")
			c.bye(Reason{Protocol: "SIP", Cause: 408, Text: "ACK timeout"}, &CallError{Status: 408, Cause: CauseACKTimeout})
			return
		case <-c.done:
			return
		}
	}
}

func (c *InboundCall) acked(ack *sip.Request, w *ackWaiter, initial bool) {
	c.mu.Lock()
	if c.ackWait == w {
		c.ackWait = nil
	}
	late := w.wantAnswer
	confirmedNow := initial && c.state == stateAnswered
	if confirmedNow {
		c.state = stateConfirmed
	}
	c.mu.Unlock()
	if confirmedNow {
		close(c.confirmed)
	}
	if late && len(ack.Body()) > 0 {
		if err := c.eng.acceptAnswer(ack.Body()); err != nil {
			c.log.Warn("bad SDP answer in ACK", "err", err)
			c.bye(Reason{Protocol: "SIP", Cause: 488, Text: "Bad answer"}, &CallError{Status: 488, Cause: CauseRejected, Err: err})
			return
		}
		c.mediaChanged()
	}
	if initial {
		c.startSessionTimer()
	}
}

// Reject answers the INVITE with a final non-2xx status and a Reason
// header (RFC 3326) carrying the same cause.
func (c *InboundCall) Reject(status int, reason string) {
	if status < 300 || status > 699 {
		status = 500
	}
	c.mu.Lock()
	if c.state != stateEarly || c.ended() {
		c.mu.Unlock()
		return
	}
	c.state = stateEnded
	c.mu.Unlock()
	res := c.response(status, statusText(status), nil)
	r := Reason{Protocol: "SIP", Cause: status, Text: reason}
	res.AppendHeader(sip.NewHeader("Reason", r.String()))
	if err := c.tx.Respond(res); err != nil && !errors.Is(err, sip.ErrTransactionCanceled) {
		c.log.Debug("reject not sent", "err", err)
	}
	c.finalOnce.Do(func() { close(c.finalSent) })
	c.finish(&CallError{Status: status, Cause: CauseRejected, Reason: r})
}

// Hangup ends the call: BYE with a Reason header once answered, or a
// final response before (480, or the SIP cause in reason).
func (c *InboundCall) Hangup(reason Reason) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == stateEarly {
		status := 480
		if reason.Protocol == "SIP" && reason.Cause >= 300 && reason.Cause < 700 {
			status = reason.Cause
		}
		c.Reject(status, reason.Text)
		return
	}
	c.bye(reason, &CallError{Status: 200, Cause: CauseNormal, Reason: reason})
}

// shutdown ends the call when the server closes.
func (c *InboundCall) shutdown() {
	c.Hangup(Reason{Protocol: "SIP", Cause: 503, Text: "Shutting down"})
}

// bye ends the dialog from our side.
func (c *InboundCall) bye(reason Reason, e *CallError) {
	if !c.finish(e) {
		return
	}
	req := c.d.newRequest(sip.BYE, c.d.nextCSeq())
	if !reason.IsZero() {
		req.AppendHeader(sip.NewHeader("Reason", reason.String()))
	}
	c.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
		defer cancel()
		if res, err := c.s.do(ctx, req); err != nil {
			c.log.Debug("BYE failed", "err", err)
		} else if !res.IsSuccess() {
			c.log.Debug("BYE answered", "status", res.StatusCode)
		}
	})
}

// finish ends the call once: unregister, free the port, stop timers.
func (c *InboundCall) finish(e *CallError) bool {
	if !c.end(e) {
		return false
	}
	c.mu.Lock()
	c.state = stateEnded
	if c.timer != nil {
		c.timer.stop()
	}
	c.rel.abort()
	c.mu.Unlock()
	c.s.dialogs.remove(c.key)
	c.port.Release()
	c.log.Info("call ended", "cause", e.Cause, "status", e.Status, "remote", e.Remote)
	return true
}

// handleAck takes an ACK that arrived as its own transaction.
func (c *InboundCall) handleAck(req *sip.Request) {
	c.mu.Lock()
	w := c.ackWait
	c.mu.Unlock()
	if w != nil && req.CSeq() != nil && req.CSeq().SeqNo == w.cseq {
		w.ack(req)
	}
}

// handleInDialog serves BYE, re-INVITE, UPDATE, INFO and PRACK.
func (c *InboundCall) handleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if RemoteTag(fromTag(req)) != c.d.remoteTag {
		c.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if req.Method != sip.PRACK && !c.d.checkRemoteCSeq(req.CSeq().SeqNo, req.Method) {
		c.s.reply(tx, req, 500, "CSeq Out of Order", nil)
		return
	}
	switch req.Method {
	case sip.BYE:
		c.handleBye(req, tx)
	case sip.INVITE:
		c.handleReinvite(req, tx)
	case sip.UPDATE:
		c.handleUpdate(req, tx)
	case sip.INFO:
		c.handleInfo(req, tx)
	case sip.PRACK:
		c.handlePRACK(req, tx)
	default:
		c.s.reply(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowMethods))
	}
}

func (c *InboundCall) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	c.s.reply(tx, req, 200, "OK", nil)
	var r Reason
	if h := req.GetHeader("Reason"); h != nil {
		r, _ = parseReason(h.Value()) // a bad Reason does not stop the BYE
	}
	c.mu.Lock()
	early := c.state == stateEarly
	if early {
		c.state = stateEnded
	}
	c.mu.Unlock()
	if early {
		// RFC 3261 §15.1.2: BYE in an early dialog ends the INVITE with 487.
		_ = c.tx.Respond(c.response(487, "Request Terminated", nil)) // best effort: the dialog is gone anyway
		c.finalOnce.Do(func() { close(c.finalSent) })
	}
	c.finish(&CallError{Status: 200, Cause: CauseNormal, Reason: r, Remote: true})
}

func (c *InboundCall) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if len(req.Body()) == 0 {
		c.s.reply(tx, req, 200, "OK", nil) // keep-alive INFO
		return
	}
	d, err := parseDTMFInfo(ct, req.Body())
	if err != nil {
		c.s.reply(tx, req, 415, "Unsupported Media Type", nil, sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	c.s.reply(tx, req, 200, "OK", nil)
	select {
	case c.dtmf <- d:
	default:
		c.log.Warn("DTMF dropped, reader too slow", "digit", string(d.Digit))
	}
}

// mediaChanged tells the b2bua about a renegotiated endpoint.
func (c *InboundCall) mediaChanged() {
	c.mu.Lock()
	f := c.onMedia
	c.mu.Unlock()
	if f != nil {
		f(c.eng.media())
	}
}

// statusText is the reason phrase we use for statuses we send.
func statusText(code int) string {
	switch code {
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	case 604:
		return "Does Not Exist Anywhere"
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirect"
	case code < 500:
		return "Request Failure"
	case code < 600:
		return "Server Failure"
	}
	return "Global Failure"
}
