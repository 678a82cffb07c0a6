package sip

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tgsip/tgsip/sip/sdp"
)

// ErrGlare is returned by Reoffer when the peer answered 491 Request
// Pending, or a session change is still in progress (ours, or the peer's
// re-INVITE awaiting the ACK of our 2xx): both sides changed the session
// at once (RFC 3261 §14.1). The caller may retry
// after a random 2.1-4 s (we own the Call-ID) or 0-2 s.
var ErrGlare = errors.New("sip: re-INVITE glare (491)")

// leg is what both call directions share once a dialog exists: the
// call's loop (loop.go), the dialog, the media session, in-dialog
// requests either way (re-INVITE, UPDATE, INFO, BYE), RFC 4028 session
// timers and the one end of the call (finish).
type leg struct {
	// Set when the call is made, read-only afterwards.
	s           *Server
	key         dialogKey
	log         *slog.Logger
	port        *RTPPort
	eng         mediaEngine // its negotiations run on the loop; media() is safe anywhere
	transport   Transport
	contactUser string
	box         *mailbox
	// serve answers an in-dialog request on the loop (the direction's
	// own), onShutdown ends the call when the server closes, onEnd is the
	// direction's part of finish.
	serve      func(req *sip.Request, tx sip.ServerTransaction)
	onShutdown func()
	onEnd      func(*CallError)
	// hold, when set, keeps an in-dialog request back until releaseHeld
	// (outbound: a BYE or re-INVITE that overtook the 2xx it follows).
	hold func(*sip.Request) bool

	// What the b2bua reads, from any goroutine. Only the loop sends on or
	// closes them.
	dtmf    chan DTMF
	mediaCh chan Media
	done    chan struct{} // closed by finish
	exited  chan struct{} // closed when the loop has run its last event
	err     atomic.Pointer[CallError]

	// Owned by the loop.
	d         *dialog
	over      bool // finish ran
	up        bool // the dialog is confirmed: re-INVITEs are served
	timer     *sessionTimer
	modifying bool       // a re-INVITE or UPDATE is in progress either way
	ackWait   *ackWaiter // our 2xx to an INVITE awaiting its ACK
	peerAllow string
	refreshes int // session refreshes we sent and had accepted
	// refreshDue: our session refresh fell due while a change was in
	// progress; it goes out when the change is over (changeOver).
	refreshDue bool
	ackOut     chan struct{} // closed once our last ACK is written: a BYE, re-INVITE or UPDATE after it waits
	held       []heldRequest // in-dialog requests kept back by hold
	// holdTimer serves the held requests after holdFor·T1 if what they
	// wait for does not come; holdGen tells a stale firing (its hold was
	// released already, and another may have begun since) from the
	// current one.
	holdTimer *time.Timer
	holdGen   uint64
	// lastAck is the ACK of the 2xx to our last INVITE (the initial one or
	// a re-INVITE), as built: every copy of that 2xx gets it again.
	lastAck *sip.Request
	reAcks  atomic.Int32 // ACKs resent for copies of a 2xx (a counter for tests)
}

func newLeg(s *Server, port *RTPPort, eng mediaEngine, tp Transport, contactUser string) leg {
	return leg{
		s:           s,
		port:        port,
		eng:         eng,
		transport:   tp,
		contactUser: contactUser,
		box:         newMailbox(),
		dtmf:        make(chan DTMF, 16),
		mediaCh:     make(chan Media, 8),
		done:        make(chan struct{}),
		exited:      make(chan struct{}),
	}
}

// ackWaiter is a 2xx of ours to an INVITE (initial or re-INVITE) that
// waits for its ACK while its retransmitter resends it.
type ackWaiter struct {
	cseq uint32
	rt   *retransmitter
	// wantAnswer: our 2xx carried an offer (the INVITE had none), so the
	// ACK carries the answer.
	wantAnswer bool
	onAck      func(*sip.Request)
}

// Logger is the call's logger (call id, SIP Call-ID).
func (l *leg) Logger() *slog.Logger { return l.log }

// Media is the call's RTP endpoint and what the last offer/answer agreed.
func (l *leg) Media() Media { return l.eng.media() }

// DTMF delivers key presses received in SIP INFO requests.
func (l *leg) DTMF() <-chan DTMF { return l.dtmf }

// MediaChanged delivers the call's media after each negotiation that
// completes once the call exists: early media and the 2xx's answer to our
// INVITE, the answer in an ACK, re-INVITE and UPDATE (hold, resume, new
// keys or address). An inbound call's INVITE offer was answered before
// OnCall saw the call: Media has it. The channel keeps the newest 8; when
// the reader falls behind the oldest are dropped (Media always has the
// newest).
func (l *leg) MediaChanged() <-chan Media { return l.mediaCh }

// Done is closed when the call has ended; Err then says how.
func (l *leg) Done() <-chan struct{} { return l.done }

// Err is how the call ended, a *CallError, once Done is closed; else nil.
func (l *leg) Err() error {
	if e := l.err.Load(); e != nil {
		return e
	}
	return nil
}

// ended reports whether the call has ended (any goroutine).
func (l *leg) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// finish ends the call once, for both directions (on the loop): stop the
// timers and retransmissions, the direction's part (onEnd), unregister,
// close the endpoint, free the port, record the end. It reports whether
// this call ended it.
func (l *leg) finish(e *CallError) bool {
	if l.over {
		return false
	}
	l.over = true
	if l.timer != nil {
		l.timer.stop()
	}
	if w := l.ackWait; w != nil {
		w.rt.stop()
		l.ackWait = nil
	}
	if l.onEnd != nil {
		l.onEnd(e)
	}
	l.releaseHeld() // 481: the call is over
	l.s.dialogs.remove(l.key)
	// The endpoint first: its RTCP BYE needs the socket (RFC 3550 §6.3.7).
	l.eng.close()
	l.port.Release()
	l.err.Store(e)
	close(l.done)
	logEnd(l.log, e)
	return true
}

// heldRequest is an in-dialog request the loop serves later (hold).
type heldRequest struct {
	req    *sip.Request
	tx     sip.ServerTransaction
	served chan struct{}
}

// handleInDialog hands an in-dialog request to the loop and waits until
// the loop has answered it; a call whose loop has ended answers 481.
func (l *leg) handleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	served := make(chan struct{})
	if !l.post(func() {
		if l.over {
			l.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
			close(served)
			return
		}
		if l.hold != nil && len(l.held) < maxHeld && l.hold(req) {
			l.held = append(l.held, heldRequest{req: req, tx: tx, served: served})
			if len(l.held) == 1 {
				// Whatever it waits for is a few goroutine switches away;
				// if it does not come (a callee that broke the rules),
				// serve the request anyway.
				gen := l.holdGen
				l.holdTimer = time.AfterFunc(holdFor*l.s.cfg.T1, func() {
					l.post(func() {
						if l.holdGen == gen {
							l.releaseHeld()
						}
					})
				})
			}
			return
		}
		l.serve(req, tx)
		close(served)
	}) {
		l.s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	select {
	case <-served:
	case <-l.exited: // finish answered what was held (releaseHeld)
	}
}

// An in-dialog request is held (hold) at most holdFor·T1, and at most
// maxHeld at a time; more are served at once.
const (
	holdFor = 4
	maxHeld = 8
)

// releaseHeld serves the requests hold kept back, in order (loop); after
// the call's end they get 481.
func (l *leg) releaseHeld() {
	held := l.held
	l.held = nil
	// This hold is over: its timer must not cut a later hold short.
	l.holdGen++
	if l.holdTimer != nil {
		l.holdTimer.Stop()
		l.holdTimer = nil
	}
	for _, h := range held {
		if l.over {
			l.s.reply(h.tx, h.req, 481, "Call/Transaction Does Not Exist", nil)
		} else {
			l.serve(h.req, h.tx)
		}
		close(h.served)
	}
}

// handleAck takes an ACK that arrived as its own transaction.
func (l *leg) handleAck(req *sip.Request) {
	if l.s.beforeAckPost != nil {
		l.s.beforeAckPost()
	}
	l.post(func() { l.takeAck(req) })
}

// holdForAck keeps back a re-INVITE that arrives while our 2xx to the
// previous INVITE awaits its ACK (loop): the peer may well have sent the
// ACK first, and it is on its way to the loop by another goroutine (a
// handler of its own, or the INVITE's transaction). takeAck releases it;
// if the ACK does not come within holdFor·T1 it gets 500 (handleModify).
func (l *leg) holdForAck(req *sip.Request) bool {
	return req.Method == sip.INVITE && l.ackWait != nil
}

// shutdown ends the call when the server closes.
func (l *leg) shutdown() {
	l.post(func() {
		if !l.over {
			l.onShutdown()
		}
	})
}

// mediaChanged publishes the media after a negotiation (loop only).
func (l *leg) mediaChanged() {
	m := l.eng.media()
	for {
		select {
		case l.mediaCh <- m:
			return
		default:
		}
		select {
		case <-l.mediaCh: // the reader fell behind: drop the oldest
		default:
		}
	}
}

// ourContact is our Contact for responses in the dialog.
func (l *leg) ourContact() *sip.ContactHeader {
	if c := l.d.contact; c != nil {
		return c.Clone()
	}
	return l.s.contact(l.d.transport, l.contactUser)
}

// takeAnswer applies the peer's answer to our offer and reports a change
// of media; an answer repeating the one in force changes nothing
// (RFC 3264 §8).
func (l *leg) takeAnswer(answer []byte) error {
	err := l.eng.acceptAnswer(answer)
	if errors.Is(err, sdp.ErrRepeatedAnswer) {
		return nil
	}
	if err == nil {
		l.mediaChanged()
	}
	return err
}

// handleModify serves a re-INVITE or UPDATE: hold/resume, codec change,
// target refresh, session refresh (RFC 3261 §14.2, RFC 3311, RFC 4028).
func (l *leg) handleModify(req *sip.Request, tx sip.ServerTransaction) {
	isInvite := req.Method == sip.INVITE
	if isInvite && (!l.up || l.ackWait != nil) {
		// RFC 3261 §14.2: a second INVITE before the first is done gets
		// 500 with a Retry-After of 0-10 s. The first is not done while
		// our 2xx to it (initial INVITE or re-INVITE) awaits its ACK:
		// §14.1 allows one INVITE transaction per dialog in either
		// direction, RFC 6026 §7.1 keeps the server transaction of a 2xx
		// (Accepted) until the ACK, and with a late offer the ACK still
		// carries the answer, so a new offer cannot be taken yet
		// (RFC 3264 §4). 491 is for our own INVITE in progress (below).
		l.s.reply(tx, req, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", itoa(rand.IntN(11))))
		return
	}
	if l.modifying {
		// §14.2: our own re-INVITE or UPDATE is pending: glare.
		l.s.reply(tx, req, 491, "Request Pending", nil)
		return
	}
	timer, minSE, err := l.s.negotiateTimerUAS(req)
	if err != nil {
		if minSE > 0 {
			l.s.reply(tx, req, 422, "Session Interval Too Small", nil, sip.NewHeader("Min-SE", itoa(int(minSE/time.Second))))
		} else {
			l.s.reply(tx, req, 400, "Bad Session-Expires", nil)
		}
		return
	}
	var body []byte
	late := isInvite && len(req.Body()) == 0
	if late {
		// An INVITE without SDP asks us to offer; the answer comes in the
		// ACK (RFC 3261 §14.2).
		body = l.eng.offer(false)
	} else if len(req.Body()) > 0 {
		if body, err = l.eng.answer(req.Body()); err != nil {
			me := asMediaError(err)
			// The old session stays in force (RFC 3261 §14.2).
			l.s.reply(tx, req, me.Status, statusText(me.Status), nil, sip.NewHeader("Warning", me.Warning))
			return
		}
	}
	l.d.setTarget(req.Contact())
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Server", l.s.cfg.UserAgent))
	res.AppendHeader(l.ourContact())
	if isInvite {
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	l.applyTimer(timer, res)
	if err := tx.Respond(res); err != nil {
		l.log.Warn("2xx to session change not sent", "method", req.Method, "err", err)
		return
	}
	if len(req.Body()) > 0 {
		l.mediaChanged()
	}
	if isInvite {
		l.awaitAck(tx, res, req.CSeq().SeqNo, late, nil)
	}
}

// awaitAck starts waiting for the ACK of our 2xx res: the retransmitter
// resends it (RFC 3261 §13.3.1.4) and, after 64·T1 without an ACK, the
// dialog is torn down with a BYE. onAck runs on the loop after the ACK.
func (l *leg) awaitAck(tx sip.ServerTransaction, res *sip.Response, cseq uint32, wantAnswer bool, onAck func(*sip.Request)) {
	w := &ackWaiter{cseq: cseq, wantAnswer: wantAnswer, onAck: onAck}
	w.rt = l.retransmit(func() {
		if err := tx.Respond(res); err != nil {
			_ = l.s.srv.WriteResponse(res) // the tx is gone; a stateless copy is as good
		}
	}, func() {
		l.log.Warn("no ACK for 2xx, hanging up")
		l.bye(Reason{Protocol: "SIP", Cause: 408, Text: "ACK timeout"}, &CallError{Status: 408, Cause: CauseACKTimeout})
	})
	l.ackWait = w
	// An ACK that reused the INVITE's branch lands in the transaction.
	acks, txDone, done := tx.Acks(), tx.Done(), l.done
	l.s.goTracked(func() {
		select {
		case r := <-acks:
			l.post(func() { l.takeAck(r) })
		case <-txDone:
		case <-done:
		}
	})
}

// takeAck completes the 2xx awaiting this ACK (loop).
func (l *leg) takeAck(ack *sip.Request) {
	w := l.ackWait
	if w == nil || ack.CSeq() == nil || ack.CSeq().SeqNo != w.cseq || l.over {
		return
	}
	w.rt.stop()
	l.ackWait = nil
	if w.wantAnswer && len(ack.Body()) > 0 {
		if err := l.takeAnswer(ack.Body()); err != nil {
			l.log.Warn("bad SDP answer in ACK", "err", err)
			l.bye(Reason{Protocol: "SIP", Cause: 488, Text: "Bad answer"}, &CallError{Status: 488, Cause: CauseRejected, Err: err})
			return
		}
	}
	if w.onAck != nil {
		w.onAck(ack)
	}
	l.releaseHeld()
	l.changeOver()
}

// changeOver runs a session refresh that fell due while a session change
// was in progress, now that it is over (loop).
func (l *leg) changeOver() {
	if l.refreshDue && !l.over && !l.modifying && l.ackWait == nil {
		l.refreshSession()
	}
}

// handleInfo delivers SIP INFO DTMF; an empty INFO is a keep-alive.
func (l *leg) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	if len(req.Body()) == 0 {
		l.s.reply(tx, req, 200, "OK", nil)
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, err := parseDTMFInfo(ct, req.Body())
	if err != nil {
		l.s.reply(tx, req, 415, "Unsupported Media Type", nil, sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	l.s.reply(tx, req, 200, "OK", nil)
	select {
	case l.dtmf <- d:
	default:
		l.log.Warn("DTMF dropped, reader too slow", "digit", string(d.Digit))
	}
}

// byeReceived answers a BYE and ends the call.
func (l *leg) byeReceived(req *sip.Request, tx sip.ServerTransaction) {
	l.s.reply(tx, req, 200, "OK", nil)
	var r Reason
	if h := req.GetHeader("Reason"); h != nil {
		r, _ = parseReason(h.Value()) // a bad Reason does not stop the BYE
	}
	l.finish(&CallError{Status: 200, Cause: CauseNormal, Reason: r, Remote: true})
}

// bye ends the dialog from our side: the call ends now, the BYE goes out
// off the loop (after our last ACK, if one is still being written).
func (l *leg) bye(reason Reason, e *CallError) {
	if !l.finish(e) {
		return
	}
	req := l.d.newRequest(sip.BYE, l.d.nextCSeq())
	if !reason.IsZero() {
		req.AppendHeader(sip.NewHeader("Reason", reason.String()))
	}
	ackOut := l.ackOut
	l.s.goTracked(func() {
		if ackOut != nil {
			<-ackOut
		}
		ctx, cancel := context.WithTimeout(context.Background(), 64*l.s.cfg.T1)
		defer cancel()
		if res, err := l.s.do(ctx, req); err != nil {
			l.log.Debug("BYE failed", "err", err)
		} else if !res.IsSuccess() {
			l.log.Debug("BYE answered", "status", res.StatusCode)
		}
	})
}

// sendAck writes an ACK for a 2xx off the loop (a copy: ack is kept for
// copies of the 2xx); a BYE sent after it waits for it (ackOut), so the
// peer never sees our BYE first.
func (l *leg) sendAck(tmpl *sip.Request) {
	l.lastAck = tmpl
	ack := tmpl.Clone()
	out := make(chan struct{})
	l.ackOut = out
	if !l.s.goTracked(func() {
		defer close(out)
		if l.s.beforeAck != nil {
			l.s.beforeAck()
		}
		if err := l.s.writeStateless(ack); err != nil {
			l.log.Warn("ACK not sent", "err", err)
		}
	}) {
		close(out)
	}
}

// handleRetransmitted2xx posts a 2xx that came after our INVITE's
// transaction ended to the loop.
func (l *leg) handleRetransmitted2xx(res *sip.Response) {
	l.post(func() {
		if !l.reAck(res) {
			l.log.Debug("2xx copy matches no ACK of ours", "cseq", res.CSeq().SeqNo)
		}
	})
}

// reAck answers a copy of the 2xx to our last INVITE (initial or
// re-INVITE: the peer did not get our ACK) with that ACK again
// (RFC 3261 §13.2.2.4; without it the peer ends the call when its 2xx
// times out, §13.3.1.4). It reports whether res was such a copy (loop).
func (l *leg) reAck(res *sip.Response) bool {
	a := l.lastAck
	if a == nil || res.CSeq().SeqNo != a.CSeq().SeqNo || RemoteTag(toTag(res)) != l.d.remoteTag {
		return false
	}
	l.resendAck(a)
	return true
}

// resendAck writes a copy of the ACK template a off the loop.
func (l *leg) resendAck(a *sip.Request) {
	ack := a.Clone()
	l.s.goTracked(func() {
		if err := l.s.writeStateless(ack); err != nil {
			l.log.Debug("re-ACK failed", "err", err)
		}
		l.reAcks.Add(1)
	})
}

// applyTimer takes the timer a refresh request negotiated, adds it to our
// 2xx and restarts it.
func (l *leg) applyTimer(n *sessionTimer, res *sip.Response) {
	if n == nil {
		return // a change without Session-Expires leaves the timer alone
	}
	if l.timer == nil {
		l.timer = n
	} else {
		l.timer.update(n)
	}
	l.timer.addHeaders(res)
	l.armTimer()
}

// armTimer (re)starts the session timer, if the dialog has one.
func (l *leg) armTimer() {
	if l.timer != nil {
		l.timer.arm(l, l.refreshSession, l.sessionExpired)
	}
}

func (l *leg) sessionExpired() {
	l.log.Info("session expired without refresh")
	l.bye(Reason{Protocol: "SIP", Cause: 408, Text: "Session expired"}, &CallError{Status: 408, Cause: CauseSessionExpired})
}

// refreshSession sends our refresh as the refresher: UPDATE without SDP
// when the peer allows it (RFC 4028 §7.4 prefers it), else a re-INVITE
// with our current SDP.
func (l *leg) refreshSession() {
	if l.over {
		return
	}
	if l.modifying || l.ackWait != nil {
		// A change is in progress (ours, or the peer's re-INVITE awaiting
		// our 2xx's ACK, during which no INVITE of ours may start, RFC 3261
		// §14.1). Refresh as soon as it is over (changeOver), unless it
		// refreshed the session itself: re-arming for another half interval
		// instead would let the peer's session expire when the change
		// fails (RFC 4028 §10).
		l.refreshDue = true
		return
	}
	l.refreshDue = false
	l.modifying = true
	t := l.timer
	method := sip.UPDATE
	var body []byte
	if !strings.Contains(strings.ToUpper(l.peerAllow), "UPDATE") {
		method = sip.INVITE
		body = l.eng.offer(false)
	}
	l.sendRefresh(t, method, body, 0)
}

func (l *leg) sendRefresh(t *sessionTimer, method sip.RequestMethod, body []byte, try int) {
	// The refresher parameter is relative to this request: we are its UAC.
	se := sessionExpires{Interval: t.interval, Refresher: RefresherUAC}.String()
	hdrs := []sip.Header{sip.NewHeader("Session-Expires", se), sip.NewHeader("Supported", "timer")}
	if t.minSE > 0 {
		hdrs = append(hdrs, sip.NewHeader("Min-SE", itoa(int(t.minSE/time.Second))))
	}
	l.change(method, body, hdrs, func(res *sip.Response, err error) {
		if try == 0 && res != nil && res.StatusCode == 422 && t.raise(minSEHeader(res)) {
			// RFC 4028 §7.4: a 422 to a refresh is retried at once with
			// the interval raised to its Min-SE, which later refreshes
			// keep.
			l.log.Info("PBX wants a longer session interval, refreshing again", "min_se", minSEHeader(res))
			l.sendRefresh(t, method, body, try+1)
			return
		}
		l.modifying = false
		if err != nil {
			status := 408
			if res != nil {
				status = res.StatusCode
			}
			l.log.Warn("session refresh failed", "method", method, "status", status, "err", err)
			if status == 481 {
				// RFC 3261 §12.2.1.2: the peer has no such dialog; a BYE
				// into it would only be answered 481 again.
				l.finish(&CallError{Status: 481, Cause: CauseDialogGone, Remote: true, Err: err})
				return
			}
			if res == nil || status == 408 {
				l.bye(Reason{Protocol: "SIP", Cause: status, Text: "Session refresh failed"}, &CallError{Status: status, Cause: CauseSessionExpired, Err: err})
				return
			}
			l.armTimer()
			return
		}
		if v, ok, err := sessionExpiresHeader(res); ok && err == nil {
			t.update(&sessionTimer{interval: v.Interval, refresher: v.Refresher, weRefresh: v.Refresher != RefresherUAS, require: t.require})
		}
		l.refreshes++
		l.armTimer()
	})
}

// errRejected wraps a non-2xx answer to our in-dialog request.
var errRejected = errors.New("sip: request rejected")

// change sends a re-INVITE or UPDATE of ours off the loop; back in the
// loop it applies the answer (ACK for an INVITE's 2xx, the SDP answer to
// the media session, the new target) and calls done. A non-2xx response
// comes with an error wrapping errRejected. When the call ends first,
// done does not run (the ACK is still sent).
func (l *leg) change(method sip.RequestMethod, body []byte, hdrs []sip.Header, done func(*sip.Response, error)) {
	cseq := l.d.nextCSeq()
	req := l.d.newRequest(method, cseq)
	req.AppendHeader(l.s.contact(l.d.transport, l.contactUser))
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	var lateAck *sip.Request // the ACK if the loop has ended by the 2xx
	if method == sip.INVITE {
		lateAck = l.d.newRequest(sip.ACK, cseq)
	}
	ackOut := l.ackOut
	l.s.goTracked(func() {
		if ackOut != nil {
			// Our last ACK first: a re-INVITE or UPDATE that overtook it
			// would reach a peer whose INVITE transaction is not done
			// (RFC 3261 §14.1: 500 or 491).
			<-ackOut
		}
		ctx, cancel := context.WithTimeout(context.Background(), 64*l.s.cfg.T1)
		defer cancel()
		res, err := l.s.do(ctx, req)
		if !l.post(func() { l.changed(method, cseq, body, res, err, done) }) && lateAck != nil && err == nil && res.IsSuccess() {
			_ = l.s.writeStateless(lateAck) // best effort: the call has ended, its BYE follows
		}
	})
}

func (l *leg) changed(method sip.RequestMethod, cseq uint32, body []byte, res *sip.Response, err error, done func(*sip.Response, error)) {
	if err != nil {
		done(nil, err)
		return
	}
	if method == sip.INVITE && res.IsSuccess() {
		l.sendAck(l.d.newRequest(sip.ACK, cseq))
	}
	if !res.IsSuccess() {
		done(res, errors.Join(errRejected, errors.New(res.StartLine())))
		return
	}
	l.d.setTarget(res.Contact())
	if len(body) > 0 && len(res.Body()) > 0 {
		if err := l.takeAnswer(res.Body()); err != nil {
			done(res, err)
			return
		}
	}
	done(res, nil)
}

// Reoffer renegotiates the session with a re-INVITE of ours: hold puts
// the peer on hold (sendonly, RFC 3264 §8.4), false resumes. It returns
// ErrGlare on 491 (or while another change is in progress) and ends the
// call when the dialog is gone (481/408).
func (l *leg) Reoffer(hold bool) error {
	reply := make(chan error, 1)
	if !l.post(func() { l.reoffer(hold, reply) }) {
		return ErrNotConfirmed
	}
	return await(l, reply, ErrCallEnded)
}

func (l *leg) reoffer(hold bool, reply chan<- error) {
	if !l.up || l.over {
		reply <- ErrNotConfirmed
		return
	}
	if l.modifying || l.ackWait != nil {
		// Our own change is pending, or the peer's re-INVITE has our 2xx
		// and no ACK yet: its INVITE transaction is still in progress and
		// RFC 3261 §14.1 allows no INVITE of ours meanwhile.
		reply <- ErrGlare
		return
	}
	l.modifying = true
	l.change(sip.INVITE, l.eng.offer(hold), nil, func(res *sip.Response, err error) {
		l.modifying = false
		if err == nil {
			l.refreshDue = false
			l.armTimer() // a re-INVITE is a session refresh too
		}
		defer l.changeOver()
		if res != nil && res.StatusCode == 491 {
			reply <- ErrGlare
			return
		}
		switch {
		case err != nil && res != nil && res.StatusCode == 481:
			l.finish(&CallError{Status: 481, Cause: CauseDialogGone, Remote: true, Err: err})
		case err != nil && (res == nil || res.StatusCode == 408):
			l.bye(Reason{Protocol: "SIP", Cause: 408, Text: "Dialog gone"}, &CallError{Status: 408, Cause: CauseTransport, Err: err})
		}
		reply <- err
	})
}

// inspect runs f on the call's loop (tests read loop-owned state with it).
func (l *leg) inspect(f func()) { l.call(f) }
