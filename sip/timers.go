package sip

import (
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sessionTimer is RFC 4028 state of one dialog, owned by its call's loop:
// negotiateTimerUAS (our answer to a request) and newUACTimer (the 2xx to
// our INVITE) make it, leg.armTimer runs it.
type sessionTimer struct {
	interval  time.Duration
	refresher Refresher // as written in Session-Expires (uac/uas of the INVITE)
	weRefresh bool
	require   bool          // the peer supports timer: put Require: timer in our 2xx
	minSE     time.Duration // raised by a 422 to our refresh (RFC 4028 §7.4)
	t         *time.Timer
	gen       int // which arm a firing belongs to
	stopped   bool
}

// newUACTimer is the timer the Session-Expires of the 2xx to our INVITE
// sets (RFC 4028 §7.2); nil when it has none.
func newUACTimer(res *sip.Response) *sessionTimer {
	se, ok, err := sessionExpiresHeader(res)
	if !ok || err != nil {
		return nil
	}
	return &sessionTimer{interval: se.Interval, refresher: se.Refresher, weRefresh: se.Refresher != RefresherUAS}
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
func (t *sessionTimer) addHeaders(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Session-Expires", sessionExpires{Interval: t.interval, Refresher: t.refresher}.String()))
	if t.require {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
}

// arm (re)starts the timer: half the interval when we refresh (§10),
// else the interval minus min(32 s, interval/3) before we give up (§10).
// The firing posts to the loop; a firing of an earlier arm is ignored.
func (t *sessionTimer) arm(l *leg, refresh, expire func()) {
	if t.stopped {
		return
	}
	if t.t != nil {
		t.t.Stop()
	}
	t.gen++
	gen := t.gen
	f, d := expire, t.interval-min(32*time.Second, t.interval/3)
	if t.weRefresh {
		f, d = refresh, t.interval/2
	}
	t.t = time.AfterFunc(d, func() {
		l.post(func() {
			if !t.stopped && t.gen == gen {
				f()
			}
		})
	})
}

func (t *sessionTimer) stop() {
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
}

// update takes the values renegotiated by a refresh request.
func (t *sessionTimer) update(n *sessionTimer) {
	t.interval, t.refresher, t.weRefresh, t.require = n.interval, n.refresher, n.weRefresh, n.require
}

// raise takes the Min-SE of a 422 to our refresh: the interval and our
// Min-SE become at least minSE. It reports whether that changed anything.
func (t *sessionTimer) raise(minSE time.Duration) bool {
	if minSE <= t.interval {
		return false
	}
	t.interval, t.minSE = minSE, minSE
	return true
}
