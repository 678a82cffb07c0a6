package sip

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sessionTimer is RFC 4028 state of one dialog.
type sessionTimer struct {
	mu        sync.Mutex
	interval  time.Duration
	refresher Refresher // as written in Session-Expires (uac/uas of the INVITE)
	weRefresh bool
	require   bool // the peer supports timer: put Require: timer in our 2xx
	t         *time.Timer
	stopped   bool
}

// sessionExpiresHeader reads Session-Expires (or its compact form x).
func sessionExpiresHeader(m sip.Message) (sessionExpires, bool, error) {
	h := m.GetHeaders("Session-Expires")
	if len(h) == 0 {
		h = m.GetHeaders("x")
	}
	if len(h) == 0 {
		return sessionExpires{}, false, nil
	}
	se, err := parseSessionExpires(h[0].Value())
	return se, true, err
}

func minSEHeader(m sip.Message) time.Duration {
	if h := m.GetHeaders("Min-SE"); len(h) > 0 {
		if d, err := parseDeltaSeconds(strings.Split(h[0].Value(), ";")[0]); err == nil {
			return d
		}
	}
	return 0
}

// errIntervalTooSmall is answered with 422 and our Min-SE.
var errIntervalTooSmall = errors.New("sip: session interval too small")

// negotiateTimerUAS applies RFC 4028 §9 to a request we answer as UAS
// (INVITE, re-INVITE, UPDATE). It returns nil when the dialog runs no
// timer, and our Min-SE with errIntervalTooSmall for a 422.
func (s *Server) negotiateTimerUAS(req *sip.Request) (*sessionTimer, time.Duration, error) {
	se, present, err := sessionExpiresHeader(req)
	if err != nil {
		return nil, 0, err
	}
	supported := hasOption(req, "Supported", "timer") || hasOption(req, "Require", "timer")
	cfg := s.cfg.SessionTimers
	if !present {
		if cfg.Expires <= 0 {
			return nil, 0, nil
		}
		// §9: the UAS may start a timer the UAC did not ask for; without
		// the UAC's support we must refresh ourselves.
		t := &sessionTimer{interval: cfg.Expires, refresher: RefresherUAS, weRefresh: true}
		if supported {
			t.refresher, t.weRefresh, t.require = RefresherUAC, false, true
		}
		return t, 0, nil
	}
	if se.Interval < cfg.MinSE {
		return nil, cfg.MinSE, errIntervalTooSmall
	}
	interval := se.Interval
	floor := max(minSEHeader(req), cfg.MinSE)
	if cfg.Expires > 0 && cfg.Expires < interval {
		interval = max(cfg.Expires, floor) // §9: may shorten, never below Min-SE
	}
	t := &sessionTimer{interval: interval, refresher: se.Refresher, require: supported}
	if t.refresher == RefresherNone {
		if supported {
			t.refresher = RefresherUAC
		} else {
			t.refresher = RefresherUAS
		}
	}
	t.weRefresh = t.refresher == RefresherUAS
	return t, 0, nil
}

// addHeaders puts Session-Expires (and Require: timer) in our 2xx.
func (t *sessionTimer) addHeaders(res *sip.Response, _ *sip.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Session-Expires", sessionExpires{Interval: t.interval, Refresher: t.refresher}.String()))
	if t.require {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
}

// arm (re)starts the timer: half the interval when we refresh (§10),
// else the interval minus min(32 s, interval/3) before we give up (§10).
func (t *sessionTimer) arm(refresh, expire func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.t != nil {
		t.t.Stop()
	}
	if t.weRefresh {
		t.t = time.AfterFunc(t.interval/2, refresh)
		return
	}
	t.t = time.AfterFunc(t.interval-min(32*time.Second, t.interval/3), expire)
}

func (t *sessionTimer) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
}

// update takes the values renegotiated by a refresh request.
func (t *sessionTimer) update(n *sessionTimer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.interval, t.refresher, t.weRefresh, t.require = n.interval, n.refresher, n.weRefresh, n.require
}

// startSessionTimer arms the inbound call's timer after the ACK.
func (c *InboundCall) startSessionTimer() {
	c.mu.Lock()
	t := c.timer
	c.mu.Unlock()
	if t == nil {
		return
	}
	t.arm(func() { c.s.goTracked(c.refreshSession) }, c.sessionExpired)
}

func (c *InboundCall) sessionExpired() {
	c.log.Info("session expired without refresh")
	c.bye(Reason{Protocol: "SIP", Cause: 408, Text: "Session expired"}, &CallError{Status: 408, Cause: CauseSessionExpired})
}

// refreshSession sends our refresh as the refresher: UPDATE without SDP
// when the peer allows it (RFC 4028 §7.4 recommends it), else a re-INVITE
// with our current SDP.
func (c *InboundCall) refreshSession() {
	if c.ended() {
		return
	}
	c.mu.Lock()
	t := c.timer
	if c.inviteBusy {
		c.mu.Unlock()
		t.arm(func() { c.s.goTracked(c.refreshSession) }, c.sessionExpired)
		return
	}
	c.inviteBusy = true
	useUpdate := strings.Contains(strings.ToUpper(c.peerAllow), "UPDATE")
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inviteBusy = false
		c.mu.Unlock()
	}()

	method := sip.UPDATE
	var body []byte
	if !useUpdate {
		method = sip.INVITE
		body = c.eng.offer(false)
	}
	cseq := c.d.nextCSeq()
	req := c.d.newRequest(method, cseq)
	// The refresher parameter is relative to this request: we are its UAC.
	t.mu.Lock()
	req.AppendHeader(sip.NewHeader("Session-Expires", sessionExpires{Interval: t.interval, Refresher: RefresherUAC}.String()))
	t.mu.Unlock()
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(c.s.contact(c.d.transport, c.ToUser))
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*c.s.cfg.T1)
	defer cancel()
	res, err := c.s.do(ctx, req)
	if err != nil || !res.IsSuccess() {
		status := 408
		if res != nil {
			status = res.StatusCode
		}
		c.log.Warn("session refresh failed", "method", method, "status", status, "err", err)
		if status == 481 || status == 408 || err != nil {
			c.bye(Reason{Protocol: "SIP", Cause: status, Text: "Session refresh failed"}, &CallError{Status: status, Cause: CauseSessionExpired, Err: err})
			return
		}
		t.arm(func() { c.s.goTracked(c.refreshSession) }, c.sessionExpired)
		return
	}
	if method == sip.INVITE {
		ack := c.d.newRequest(sip.ACK, cseq)
		if err := c.s.writeStateless(ack); err != nil {
			c.log.Warn("ACK for refresh not sent", "err", err)
		}
		if len(res.Body()) > 0 {
			if err := c.eng.acceptAnswer(res.Body()); err == nil {
				c.mediaChanged()
			}
		}
	}
	c.d.setTarget(res.Contact())
	if se, ok, err := sessionExpiresHeader(res); ok && err == nil {
		t.update(&sessionTimer{interval: se.Interval, refresher: se.Refresher, weRefresh: se.Refresher != RefresherUAS, require: t.require})
	}
	t.arm(func() { c.s.goTracked(c.refreshSession) }, c.sessionExpired)
}
