package sip

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
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
	leg

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

	inv *sip.Request
	tx  sip.ServerTransaction

	localSDP  []byte // our answer (or our offer when the INVITE had none)
	lateOffer bool

	// Closed by the loop: finalSent when the INVITE has its final
	// response, confirmed when the ACK for our 2xx came.
	finalSent chan struct{}
	confirmed chan struct{}

	// answeredAt is when answer handed the 200 to the transport; written
	// by the loop before Answer returns nil (AnsweredAt).
	answeredAt time.Time

	// Owned by the loop.
	state     callState
	cancelReq *sip.Request // the CANCEL of the INVITE, for its Reason
	sdpSent   bool         // our SDP went out in a reliable provisional
	rel       reliableState
	byeLater  *Reason // Hangup between our 2xx and its ACK
}

// Header returns the first value of a header of the INVITE (not the read
// time the server adds, overload.go).
func (c *InboundCall) Header(name string) string {
	if strings.EqualFold(name, rxHeader) {
		return ""
	}
	if h := c.inv.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
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
	rx, _ := takeRxStamp(req)
	if s.beforeInvite != nil {
		s.beforeInvite()
	}
	if s.shedLate(req, tx, rx) {
		return
	}
	select {
	case <-s.closing:
		s.reply(tx, req, 503, "Service Unavailable", nil)
		return
	default:
	}
	if s.draining.Load() {
		s.log.Info("INVITE refused: draining", "src", sourceAddr(req))
		s.reply(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", retryAfter))
		return
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
	verdict := s.gate.checkFrom(req, src, Transport(strings.ToUpper(req.Transport())))
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
	if s.cfg.MaxCalls > 0 && s.dialogs.len() >= s.cfg.MaxCalls {
		// RFC 3261 §21.5.4: overloaded; Retry-After tells when to retry.
		s.overloaded.Add(1)
		s.log.Warn("INVITE refused: call limit reached", "max_calls", s.cfg.MaxCalls, "call_id", req.CallID().Value())
		s.reply(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	port, err := s.ports.Allocate()
	if err != nil {
		s.log.Warn("no RTP port for INVITE", "err", err)
		s.reply(tx, req, 503, "Service Unavailable", nil)
		return
	}
	eng := s.newEngine(port, s.cfg.srtpPolicy(verdict.Trunk.SRTP), verdict.Trunk.SymmetricRTP)
	c := s.newInboundCall(req, tx, verdict.Trunk, port, eng, timer)
	if len(req.Body()) > 0 {
		ans, err := eng.answer(req.Body())
		if err != nil {
			me := asMediaError(err)
			c.log.Info("offer not acceptable", "status", me.Status, "err", err)
			eng.close()
			port.Release()
			s.reply(tx, req, me.Status, reasonPhrase(me.Status), nil, sip.NewHeader("Warning", me.Warning))
			return
		}
		c.localSDP = ans
	} else {
		c.lateOffer = true
		c.localSDP = eng.offer(false)
	}
	// The loop first: from here on the call's events go to it.
	c.startLoop()
	if c.ended() {
		s.reply(tx, req, 503, "Service Unavailable", nil) // the server closed meanwhile
		return
	}
	if s.addCall(c.key, c) {
		// Close began meanwhile: the call ends with 503 (shutdownNow).
		c.serveInvite()
		return
	}
	c.log.Info("inbound call", "trunk", c.Trunk, "to", c.RequestUser, "from", c.CallerID, "src", src, "transport", c.Transport)
	// Watch for CANCEL before the b2bua can send 180: a CANCEL answering
	// it must find our callback, or its Reason is lost.
	c.watchCancel()
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
	from, to := req.From(), req.To()
	tp := Transport(strings.ToUpper(req.Transport()))
	c := &InboundCall{
		leg:         newLeg(s, port, eng, tp, to.Address.User),
		ID:          newCallID(),
		CallID:      callID,
		Trunk:       trunk.Name,
		RequestUser: req.Recipient.User,
		Source:      sourceAddr(req),
		Transport:   tp,
		Offer:       req.Body(),
		inv:         req,
		tx:          tx,
		finalSent:   make(chan struct{}),
		confirmed:   make(chan struct{}),
	}
	c.timer = timer
	c.serve, c.onShutdown, c.onEnd, c.hold = c.serveInDialog, c.shutdownNow, c.onFinish, c.holdForAck
	if h := req.GetHeader("Allow"); h != nil {
		c.peerAllow = h.Value()
	}
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
	c.eng.setLogger(c.log)
	c.d = newUASDialog(req, tag)
	if s.reusesConnection(tp) {
		c.d.contact = s.contactFor(req, c.contactUser)
	}
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
	select {
	case <-c.finalSent:
	case <-c.done:
	case <-c.tx.Done():
		c.post(func() {
			if c.state == stateEarly {
				c.finish(&CallError{Status: 500, Cause: CauseTransport, Err: c.tx.Err()})
			}
		})
	}
}

// watchCancel posts a CANCEL of the INVITE to the loop (sipgo answers it
// with 200 and the INVITE with 487).
func (c *InboundCall) watchCancel() {
	if !c.tx.OnCancel(func(r *sip.Request) { c.post(func() { c.cancelled(r) }) }) {
		c.post(func() { c.cancelled(nil) })
	}
}

// cancelled ends a call whose INVITE the caller cancelled before our final
// response; a CANCEL that lost the race to our 2xx changes nothing.
func (c *InboundCall) cancelled(r *sip.Request) {
	if r != nil {
		c.cancelReq = r
	}
	if c.state != stateEarly {
		return
	}
	c.finish(&CallError{Status: 487, Cause: CauseCancelled, Remote: true, Reason: c.cancelReason()})
}

// cancelReason is the RFC 3326 Reason of the CANCEL, if it had one.
func (c *InboundCall) cancelReason() Reason {
	if r := c.cancelReq; r != nil {
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
		res.AppendHeader(c.ourContact())
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

// do runs f on the loop and waits for the error it replies.
func (c *InboundCall) do(f func(reply chan<- error)) error {
	reply := make(chan error, 1)
	if !c.post(func() { f(reply) }) {
		return ErrCallEnded
	}
	return await(&c.leg, reply, ErrCallEnded)
}

// Ringing sends 180 Ringing (reliably when the INVITE requires 100rel).
func (c *InboundCall) Ringing() error {
	return c.do(func(reply chan<- error) { c.provisional(180, "Ringing", nil, reply) })
}

// Progress sends 183 Session Progress with early media SDP; nil means the
// answer computed when the INVITE arrived. Escape hatch: SDP given here
// is sent as it is and bypasses the call's SDP session (Media does not
// follow it); the b2bua passes nil.
func (c *InboundCall) Progress(sdp []byte) error {
	return c.do(func(reply chan<- error) {
		body := sdp
		if body == nil {
			body = c.localSDP
		}
		c.provisional(183, "Session Progress", body, reply)
	})
}

// provisional sends a provisional response (loop). A reliable one waits
// for the PRACK of the one before (RFC 3262 §3: one outstanding at a
// time); reply gets the outcome.
func (c *InboundCall) provisional(code int, text string, body []byte, reply chan<- error) {
	if c.state != stateEarly || c.over {
		reply <- ErrAnswered
		return
	}
	res := c.response(code, text, body)
	if !hasOption(c.inv, "Require", "100rel") {
		reply <- c.tx.Respond(res)
		return
	}
	if c.rel.pending != nil {
		c.rel.waiters = append(c.rel.waiters, func(err error) {
			if err != nil {
				reply <- err
				return
			}
			c.provisional(code, text, body, reply)
		})
		return
	}
	reply <- c.sendReliable(res, len(body) > 0)
}

// Answer sends 200 OK with sdp (nil: the precomputed answer), retransmits
// it until the ACK comes (RFC 3261 §13.3.1.4) and, if no ACK comes within
// 64*T1, ends the call with a BYE. It returns once the 200 is sent. A
// reliable provisional response that carried SDP must be PRACKed first
// (RFC 3262 §3). Escape hatch: SDP given here bypasses the call's SDP
// session, as in Progress; the b2bua passes nil.
func (c *InboundCall) Answer(sdp []byte) error {
	return c.do(func(reply chan<- error) { c.answer(sdp, reply) })
}

// AnsweredAt is when Answer handed the 200 to the transport, so before
// the PBX can have received it (the time of a load run's "200" step).
// Read it after Answer has returned nil; zero before.
func (c *InboundCall) AnsweredAt() time.Time { return c.answeredAt }

func (c *InboundCall) answer(sdp []byte, reply chan<- error) {
	if c.over {
		reply <- ErrCallEnded
		return
	}
	if c.state != stateEarly {
		reply <- ErrAnswered
		return
	}
	if p := c.rel.pending; p != nil && p.hasSDP {
		// RFC 3262 §3: no 2xx before the PRACK of a reliable provisional
		// that carried SDP.
		c.rel.waiters = append(c.rel.waiters, func(err error) {
			if err != nil {
				reply <- err
				return
			}
			c.answer(sdp, reply)
		})
		return
	}
	if sdp == nil {
		sdp = c.localSDP
	}
	if c.sdpSent && !c.lateOffer {
		sdp = nil // the offer/answer exchange finished in the reliable 183
	}
	res := c.response(200, "OK", sdp)
	if c.timer != nil {
		c.timer.addHeaders(res)
	}
	at := time.Now()
	if err := c.tx.Respond(res); err != nil {
		if errors.Is(err, sip.ErrTransactionCanceled) {
			// The CANCEL won the race: 487 went out instead (RFC 3261
			// §9.2); its event ends the call.
			reply <- ErrCancelled
			return
		}
		c.s.sendFailed(200, c.inv, err)
		c.finish(&CallError{Status: 500, Cause: CauseTransport, Err: err})
		reply <- err
		return
	}
	c.answeredAt = at
	c.state = stateAnswered
	c.rel.finalSent() // a reliable 18x without SDP is not retransmitted any more
	close(c.finalSent)
	c.log.Info("answered")
	c.awaitAck(c.tx, res, c.inv.CSeq().SeqNo, c.lateOffer, c.acked)
	reply <- nil
}

// acked completes the initial INVITE: the dialog is confirmed.
func (c *InboundCall) acked(*sip.Request) {
	if c.state != stateAnswered {
		return
	}
	c.state = stateConfirmed
	c.up = true
	close(c.confirmed)
	c.armTimer()
	if later := c.byeLater; later != nil {
		c.bye(*later, &CallError{Status: 200, Cause: CauseNormal, Reason: *later})
	}
}

// Reject answers the INVITE with a final non-2xx status and a Reason
// header (RFC 3326) carrying the same cause: `SIP;cause=<status>` with
// reason as its text. RejectWith carries a Q.850 cause and Retry-After.
func (c *InboundCall) Reject(status int, reason string) {
	c.RejectWith(status, Reason{Protocol: "SIP", Cause: status, Text: reason}, 0)
}

// RejectWith answers the INVITE with a final non-2xx status (500 if status
// is not 300-699) and:
//   - a Reason header with reason (RFC 3326; RFC 6432 §2 lets any final
//     response carry a Q.850 cause, e.g. `Q.850;cause=17;text="User busy"`
//     with a 486); a zero Reason sends `SIP;cause=<status>`;
//   - when retryAfter > 0, Retry-After in whole seconds, rounded up
//     (RFC 3261 §20.33): with a 503 it tells a load balancer (Kamailio's
//     dispatcher, OpenSIPS) how long to leave this instance alone
//     (§21.5.4); §20.33 also allows it with 404, 413, 480, 486, 500, 600
//     and 603.
//
// Only the first final response counts: after Answer, Reject or the
// call's end RejectWith does nothing.
func (c *InboundCall) RejectWith(status int, reason Reason, retryAfter time.Duration) {
	c.call(func() { c.reject(status, reason, retryAfter) })
}

func (c *InboundCall) reject(status int, reason Reason, retryAfter time.Duration) {
	if status < 300 || status > 699 {
		status = 500
	}
	if reason.IsZero() {
		reason = Reason{Protocol: "SIP", Cause: status}
	}
	if c.state != stateEarly || c.over {
		return
	}
	c.state = stateEnded
	res := c.response(status, reasonPhrase(status), nil)
	res.AppendHeader(sip.NewHeader("Reason", reason.String()))
	if retryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", retryAfterSeconds(retryAfter)))
	}
	if err := c.tx.Respond(res); err != nil {
		c.s.sendFailed(status, c.inv, err)
	}
	close(c.finalSent)
	c.finish(&CallError{Status: status, Cause: CauseRejected, Reason: reason})
}

// maxRetryAfter bounds Retry-After. Its delta-seconds is 1*DIGIT
// (RFC 3261 §25.1) with no upper bound; a day keeps the value small and
// is longer than any wait Telegram imposes on an account in practice.
const maxRetryAfter = 24 * time.Hour

// retryAfterSeconds formats d as Retry-After delta-seconds, rounded up so
// a peer never retries before d has passed.
func retryAfterSeconds(d time.Duration) string {
	d = min(d, maxRetryAfter)
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Hangup ends the call: BYE with a Reason header once answered, or a
// final response before (480, or the SIP cause in reason) carrying reason.
// Between our 2xx and its ACK the BYE waits for the ACK (RFC 3261 §15).
func (c *InboundCall) Hangup(reason Reason) {
	c.call(func() { c.hangup(reason) })
}

func (c *InboundCall) hangup(reason Reason) {
	switch c.state {
	case stateAnswered:
		// RFC 3261 §15: no BYE before the ACK for our 2xx (or its
		// timeout, which sends the BYE anyway).
		c.byeLater = &reason
	case stateEarly:
		status := 480
		if reason.Protocol == "SIP" && reason.Cause >= 300 && reason.Cause < 700 {
			status = reason.Cause
		}
		// The final response carries the caller's Reason, a Q.850 cause
		// included (RFC 6432 §2).
		c.reject(status, reason, 0)
	default:
		c.bye(reason, &CallError{Status: 200, Cause: CauseNormal, Reason: reason})
	}
}

// shutdownNow ends the call when the server closes (loop): BYE, even for
// a 2xx still waiting for its ACK (Close does not wait 64·T1 for it, and
// the retransmissions stop), else as Hangup.
func (c *InboundCall) shutdownNow() {
	if c.state == stateAnswered {
		c.bye(shutdownReason, &CallError{Status: 503, Cause: CauseShutdown, Reason: shutdownReason})
		return
	}
	c.hangup(shutdownReason)
}

// onFinish is the inbound part of finish: no more final responses, and
// whoever waits for a PRACK learns of the end.
func (c *InboundCall) onFinish(*CallError) {
	c.state = stateEnded
	c.rel.abort(ErrCallEnded)
}

// serveInDialog serves BYE, re-INVITE, UPDATE, INFO and PRACK (loop).
func (c *InboundCall) serveInDialog(req *sip.Request, tx sip.ServerTransaction) {
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
	case sip.INVITE, sip.UPDATE:
		c.handleModify(req, tx)
	case sip.INFO:
		c.handleInfo(req, tx)
	case sip.PRACK:
		c.handlePRACK(req, tx)
	default:
		c.s.reply(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowMethods))
	}
}

func (c *InboundCall) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	if c.state == stateEarly {
		// RFC 3261 §15.1.2: BYE in an early dialog ends the INVITE with 487.
		c.state = stateEnded
		_ = c.tx.Respond(c.response(487, "Request Terminated", nil)) // best effort: the dialog ends anyway
		close(c.finalSent)
	}
	c.byeReceived(req, tx)
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
