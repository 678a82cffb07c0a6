package sip

import (
	"github.com/emiago/sipgo/sip"
)

// retryAfter is the Retry-After (seconds) of our 503s: when an instance
// at its call limit or closing may be probed again.
const retryAfter = "5"

// Drain stops the server taking new calls while the calls it has go on
// (a graceful shutdown: tgsip serve on SIGTERM): from now on a new INVITE
// gets 503 with Retry-After and an OPTIONS probe 503, as at max_calls, so
// a load balancer sends calls elsewhere; Close ends the calls later.
func (s *Server) Drain() { s.draining.Store(true) }

// unavailable reports why the server takes no new calls now: it is at
// max_calls, draining or closing; "" when it takes calls.
func (s *Server) unavailable() string {
	select {
	case <-s.closing:
		return "closing"
	default:
	}
	if s.draining.Load() {
		return "draining"
	}
	if s.cfg.MaxCalls > 0 && s.dialogs.len() >= s.cfg.MaxCalls {
		return "call limit reached"
	}
	if s.shedRecently() {
		return "overloaded"
	}
	return ""
}

// refuseProbe answers an OPTIONS outside a dialog with 503 and
// Retry-After while the server takes no calls (RFC 3261 §21.5.4). A load
// balancer such as Kamailio's dispatcher marks a destination up only on
// 200, so the 503 keeps it out of rotation instead of it being brought
// back by each probe only to refuse the next INVITE. In-dialog OPTIONS
// (a liveness check of a call) are not refused.
func (s *Server) refuseProbe(req *sip.Request, tx sip.ServerTransaction) bool {
	if toTag(req) != "" {
		return false
	}
	why := s.unavailable()
	if why == "" {
		return false
	}
	s.log.Debug("OPTIONS answered 503", "why", why)
	s.reply(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", retryAfter))
	return true
}
