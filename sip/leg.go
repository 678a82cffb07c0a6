package sip

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tgsip/tgsip/sip/sdp"
)

// ErrGlare is returned by Reoffer when the peer answered 491 Request
// Pending: both sides changed the session at once (RFC 3261 §14.1). The
// caller may retry after a random 2.1-4 s (we own the Call-ID) or 0-2 s.
var ErrGlare = errors.New("sip: re-INVITE glare (491)")

// leg is what both call directions share once a dialog exists: the
// dialog, the media session, in-dialog requests either way (re-INVITE,
// UPDATE, INFO, BYE) and RFC 4028 session timers.
type leg struct {
	ending

	s           *Server
	d           *dialog
	key         dialogKey
	log         *slog.Logger
	port        *RTPPort
	eng         mediaEngine
	transport   Transport
	contactUser string
	// endCall ends the call for the owner (unregister, free the port);
	// it reports whether this call ended it.
	endCall func(*CallError) bool

	mu        sync.Mutex
	up        bool // the dialog is confirmed: re-INVITEs are served
	timer     *sessionTimer
	modifying bool       // a re-INVITE or UPDATE is in progress either way
	ackWait   *ackWaiter // our 2xx to an INVITE awaiting its ACK
	onOffer   func([]byte) ([]byte, error)
	onMedia   func(Media)
	peerAllow string
	refreshes int // session refreshes we sent and had accepted
	dtmf      chan DTMF
}

// ackWaiter is a 2xx to an INVITE (initial or re-INVITE) that waits for
// its ACK.
type ackWaiter struct {
	cseq  uint32
	acked chan *sip.Request
	once  sync.Once
	// wantAnswer: our 2xx carried an offer (the INVITE had none), so the
	// ACK carries the answer.
	wantAnswer bool
}

func (w *ackWaiter) ack(r *sip.Request) {
	w.once.Do(func() { w.acked <- r; close(w.acked) })
}

// Logger is the call's logger (call id, SIP Call-ID).
func (l *leg) Logger() *slog.Logger { return l.log }

// Media is the call's RTP endpoint and what the last offer/answer agreed.
func (l *leg) Media() Media { return l.eng.media() }

// DTMF delivers key presses received in SIP INFO requests.
func (l *leg) DTMF() <-chan DTMF { return l.dtmf }

// OnOffer installs the function that answers new offers in re-INVITE or
// UPDATE (hold, resume, codec change). Without it the call's SDP session
// answers (a sendonly offer gets recvonly back, RFC 3264 §6.1).
//
// Escape hatch: an answer made here bypasses the call's SDP session, so
// Media (its Endpoint and Negotiated) stays on the previous negotiation.
func (l *leg) OnOffer(f func(offer []byte) (answer []byte, err error)) {
	l.mu.Lock()
	l.onOffer = f
	l.mu.Unlock()
}

// OnMedia installs a function called after each successful renegotiation.
func (l *leg) OnMedia(f func(Media)) {
	l.mu.Lock()
	l.onMedia = f
	l.mu.Unlock()
}

func (l *leg) mediaChanged() {
	l.mu.Lock()
	f := l.onMedia
	l.mu.Unlock()
	if f != nil {
		f(l.eng.media())
	}
}

// ourContact is our Contact for responses in the dialog.
func (l *leg) ourContact() *sip.ContactHeader {
	l.d.mu.Lock()
	c := l.d.contact
	l.d.mu.Unlock()
	if c != nil {
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

func (l *leg) answerOffer(offer []byte) ([]byte, error) {
	l.mu.Lock()
	f := l.onOffer
	l.mu.Unlock()
	if f != nil {
		return f(offer)
	}
	return l.eng.answer(offer)
}

// beginModify marks a session change in progress; false means glare.
func (l *leg) beginModify() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.modifying {
		return false
	}
	l.modifying = true
	return true
}

func (l *leg) endModify() {
	l.mu.Lock()
	l.modifying = false
	l.mu.Unlock()
}

// handleModify serves a re-INVITE or UPDATE: hold/resume, codec change,
// target refresh, session refresh (RFC 3261 §14.2, RFC 3311, RFC 4028).
func (l *leg) handleModify(req *sip.Request, tx sip.ServerTransaction) {
	isInvite := req.Method == sip.INVITE
	l.mu.Lock()
	up := l.up
	l.mu.Unlock()
	if isInvite && !up {
		// §14.2: a second INVITE before the first is done: 500 with a
		// Retry-After of 0-10 s.
		l.s.reply(tx, req, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", itoa(rand.IntN(11))))
		return
	}
	if !l.beginModify() {
		// §14.2: our own re-INVITE or UPDATE is pending: glare.
		l.s.reply(tx, req, 491, "Request Pending", nil)
		return
	}
	defer l.endModify()
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
		if body, err = l.answerOffer(req.Body()); err != nil {
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
	var w *ackWaiter
	if isInvite {
		w = &ackWaiter{cseq: req.CSeq().SeqNo, acked: make(chan *sip.Request, 1), wantAnswer: late}
		l.mu.Lock()
		l.ackWait = w
		l.mu.Unlock()
	}
	if err := tx.Respond(res); err != nil {
		l.log.Warn("2xx to session change not sent", "method", req.Method, "err", err)
		return
	}
	if len(req.Body()) > 0 {
		l.mediaChanged()
	}
	if isInvite {
		l.s.goTracked(func() { l.awaitAck(tx, res, w, nil) })
	}
}

// awaitAck retransmits a 2xx at T1, 2T1 … T2 until its ACK arrives
// (RFC 3261 §13.3.1.4); after 64*T1 without one the dialog is torn down
// with a BYE. onAck runs after a successful ACK.
func (l *leg) awaitAck(tx sip.ServerTransaction, res *sip.Response, w *ackWaiter, onAck func(*sip.Request)) {
	t1 := l.s.cfg.T1
	giveUp := time.NewTimer(64 * t1)
	defer giveUp.Stop()
	retrans := time.NewTimer(t1)
	defer retrans.Stop()
	if l.transport != UDP {
		retrans.Stop() // reliable transports carry the 2xx once
	}
	txAcks, txDone := tx.Acks(), tx.Done()
	var ack *sip.Request
wait:
	for i := 1; ; i++ {
		select {
		case ack = <-w.acked:
			break wait
		case ack = <-txAcks:
			// An ACK that reused the INVITE's branch lands in the tx.
			break wait
		case <-txDone:
			txAcks, txDone = nil, nil
		case <-retrans.C:
			if err := tx.Respond(res); err != nil {
				_ = l.s.srv.WriteResponse(res) // the tx is gone; a stateless copy is as good
			}
			retrans.Reset(timerBackoff(t1, i))
		case <-giveUp.C:
			l.log.Warn("no ACK for 2xx, hanging up")
			l.bye(Reason{Protocol: "SIP", Cause: 408, Text: "ACK timeout"}, &CallError{Status: 408, Cause: CauseACKTimeout})
			return
		case <-l.s.closing:
			// Shutting down does not wait 64*T1 for the ACK: RFC 3261
			// §15's "no BYE before the ACK" gives way to ending the call
			// now, and the retransmissions stop.
			l.bye(shutdownReason, &CallError{Status: 503, Cause: CauseShutdown, Reason: shutdownReason})
			return
		case <-l.done:
			return
		}
	}
	l.mu.Lock()
	if l.ackWait == w {
		l.ackWait = nil
	}
	l.mu.Unlock()
	if w.wantAnswer && len(ack.Body()) > 0 {
		if err := l.takeAnswer(ack.Body()); err != nil {
			l.log.Warn("bad SDP answer in ACK", "err", err)
			l.bye(Reason{Protocol: "SIP", Cause: 488, Text: "Bad answer"}, &CallError{Status: 488, Cause: CauseRejected, Err: err})
			return
		}
	}
	if onAck != nil {
		onAck(ack)
	}
}

// handleAck takes an ACK that arrived as its own transaction.
func (l *leg) handleAck(req *sip.Request) {
	l.mu.Lock()
	w := l.ackWait
	l.mu.Unlock()
	if w != nil && req.CSeq().SeqNo == w.cseq {
		w.ack(req)
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
	l.endCall(&CallError{Status: 200, Cause: CauseNormal, Reason: r, Remote: true})
}

// bye ends the dialog from our side.
func (l *leg) bye(reason Reason, e *CallError) {
	if !l.endCall(e) {
		return
	}
	req := l.d.newRequest(sip.BYE, l.d.nextCSeq())
	if !reason.IsZero() {
		req.AppendHeader(sip.NewHeader("Reason", reason.String()))
	}
	l.s.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*l.s.cfg.T1)
		defer cancel()
		if res, err := l.s.do(ctx, req); err != nil {
			l.log.Debug("BYE failed", "err", err)
		} else if !res.IsSuccess() {
			l.log.Debug("BYE answered", "status", res.StatusCode)
		}
	})
}

// applyTimer takes the timer a refresh request negotiated, adds it to our
// 2xx and restarts it.
func (l *leg) applyTimer(n *sessionTimer, res *sip.Response) {
	if n == nil {
		return // a change without Session-Expires leaves the timer alone
	}
	l.mu.Lock()
	t := l.timer
	if t == nil {
		l.timer, t = n, n
	} else {
		t.update(n)
	}
	l.mu.Unlock()
	t.addHeaders(res, nil)
	l.armTimer()
}

// armTimer (re)starts the session timer, if the dialog has one.
func (l *leg) armTimer() {
	l.mu.Lock()
	t := l.timer
	l.mu.Unlock()
	if t != nil {
		t.arm(func() { l.s.goTracked(l.refreshSession) }, l.sessionExpired)
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
	if l.ended() {
		return
	}
	if !l.beginModify() {
		l.armTimer() // a change is in progress; it refreshes the session too
		return
	}
	l.mu.Lock()
	t := l.timer
	useUpdate := strings.Contains(strings.ToUpper(l.peerAllow), "UPDATE")
	l.mu.Unlock()
	method := sip.UPDATE
	var body []byte
	if !useUpdate {
		method = sip.INVITE
		body = l.eng.offer(false)
	}
	var res *sip.Response
	var err error
	for try := 0; ; try++ {
		t.mu.Lock()
		// The refresher parameter is relative to this request: we are its UAC.
		se := sessionExpires{Interval: t.interval, Refresher: RefresherUAC}.String()
		hdrs := []sip.Header{sip.NewHeader("Session-Expires", se), sip.NewHeader("Supported", "timer")}
		if t.minSE > 0 {
			hdrs = append(hdrs, sip.NewHeader("Min-SE", itoa(int(t.minSE/time.Second))))
		}
		t.mu.Unlock()
		res, err = l.change(method, body, hdrs...)
		if try > 0 || res == nil || res.StatusCode != 422 || !t.raise(minSEHeader(res)) {
			break
		}
		// RFC 4028 §7.4: a 422 to a refresh is retried at once with the
		// interval raised to its Min-SE, which later refreshes keep.
		l.log.Info("PBX wants a longer session interval, refreshing again", "min_se", minSEHeader(res))
	}
	l.endModify()
	if err != nil {
		status := 408
		if res != nil {
			status = res.StatusCode
		}
		l.log.Warn("session refresh failed", "method", method, "status", status, "err", err)
		if res == nil || status == 481 || status == 408 {
			l.bye(Reason{Protocol: "SIP", Cause: status, Text: "Session refresh failed"}, &CallError{Status: status, Cause: CauseSessionExpired, Err: err})
			return
		}
		l.armTimer()
		return
	}
	if v, ok, err := sessionExpiresHeader(res); ok && err == nil {
		t.update(&sessionTimer{interval: v.Interval, refresher: v.Refresher, weRefresh: v.Refresher != RefresherUAS, require: t.require})
	}
	l.mu.Lock()
	l.refreshes++
	l.mu.Unlock()
	l.armTimer()
}

// errRejected wraps a non-2xx answer to our in-dialog request.
var errRejected = errors.New("sip: request rejected")

// change sends a re-INVITE or UPDATE of ours and applies the answer: ACK
// for an INVITE, the SDP answer to the media session, the new target.
// A non-2xx response is returned with an error wrapping errRejected.
func (l *leg) change(method sip.RequestMethod, body []byte, hdrs ...sip.Header) (*sip.Response, error) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 64*l.s.cfg.T1)
	defer cancel()
	res, err := l.s.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if method == sip.INVITE && res.IsSuccess() {
		ack := l.d.newRequest(sip.ACK, cseq)
		if err := l.s.writeStateless(ack); err != nil {
			l.log.Warn("ACK not sent", "err", err)
		}
	}
	if !res.IsSuccess() {
		return res, errors.Join(errRejected, errors.New(res.StartLine()))
	}
	l.d.setTarget(res.Contact())
	if len(body) > 0 && len(res.Body()) > 0 {
		if err := l.takeAnswer(res.Body()); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Reoffer renegotiates the session with a re-INVITE of ours: hold puts
// the peer on hold (sendonly, RFC 3264 §8.4), false resumes. It returns
// ErrGlare on 491 and ends the call when the dialog is gone (481/408).
func (l *leg) Reoffer(hold bool) error {
	l.mu.Lock()
	up := l.up
	l.mu.Unlock()
	if !up || l.ended() {
		return ErrNotConfirmed
	}
	if !l.beginModify() {
		return ErrGlare
	}
	defer l.endModify()
	res, err := l.change(sip.INVITE, l.eng.offer(hold))
	if res != nil && res.StatusCode == 491 {
		return ErrGlare
	}
	if err != nil && (res == nil || res.StatusCode == 481 || res.StatusCode == 408) {
		l.bye(Reason{Protocol: "SIP", Cause: 408, Text: "Dialog gone"}, &CallError{Status: 408, Cause: CauseTransport, Err: err})
	}
	if err == nil {
		l.armTimer() // a re-INVITE is a session refresh too
	}
	return err
}
