package sip

import (
	"github.com/emiago/sipgo/sip"
)

// retryAfter is the Retry-After (seconds) of our 503s: when an instance
// at its call limit or closing may be probed again.
const retryAfter = "5"

// unavailable reports why the server takes no new calls now: it is at
// max_calls or closing; "" when it takes calls.
func (s *Server) unavailable() string {
	select {
	case <-s.closing:
		return "closing"
	default:
	}
	if s.cfg.MaxCalls > 0 && s.dialogs.len() >= s.cfg.MaxCalls {
		return "call limit reached"
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
