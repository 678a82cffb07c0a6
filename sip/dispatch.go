// Dispatch: the sipgo handlers every request passes (guard) and the
// routing of in-dialog requests, ACKs and stray responses to their call.

package sip

import (
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// guard keeps a bug triggered by one hostile message from taking the
// process (and every other call) down: the panic is logged, counted and
// answered 500.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.panics.Add(1)
				s.log.Error("panic in SIP handler", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
				if !req.IsAck() {
					s.reply(tx, req, 500, "Server Internal Error", nil)
				}
			}
		}()
		if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil {
			// RFC 3261 §8.1.1: mandatory headers; sipgo lets some through.
			if !req.IsAck() {
				s.reply(tx, req, 400, "Bad Request", nil)
			}
			return
		}
		if !s.admit(req, tx) {
			return
		}
		h(req, tx)
	}
}

// sourceAddr parses where a request came from.
func sourceAddr(req *sip.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// onOptions answers OPTIONS in and out of dialogs: a load balancer's probe
// only marks us up on 200 (Kamailio dispatcher), and gets 503 while we
// take no calls (refuseProbe).
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.refuseProbe(req, tx) {
		return
	}
	s.reply(tx, req, 200, "OK", nil,
		sip.NewHeader("Allow", allowMethods),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
		sip.NewHeader("Supported", "100rel, timer, replaces"),
	)
}

// inDialog routes a request with a To tag to the dialog it belongs to.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	k, ok := keyForIncoming(req)
	var o dialogOwner
	if ok {
		o = s.dialogs.get(k)
	}
	if o == nil {
		// RFC 3261 §12.2.2: a request for a dialog we do not know.
		s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	o.handleInDialog(req, tx)
}

// onAck delivers ACKs for 2xx (new transactions) to their dialog; an ACK
// for an unknown dialog is dropped silently (RFC 3261 §17.2.3 has no
// response for ACK).
func (s *Server) onAck(req *sip.Request, _ sip.ServerTransaction) {
	k, ok := keyForIncoming(req)
	if !ok {
		return
	}
	if o := s.dialogs.get(k); o != nil {
		o.handleAck(req)
	}
}

// onStrayCancel handles a CANCEL that matched no INVITE transaction.
func (s *Server) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.reply(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}

// onStrayResponse sees responses no client transaction claims: 2xx
// retransmissions to our INVITEs and re-INVITEs after the transaction
// ended. RFC 3261
// §13.2.2.4 makes the UAC core ACK each of them (sipgo#120).
func (s *Server) onStrayResponse(res *sip.Response) {
	cseq := res.CSeq()
	if cseq == nil || cseq.MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	cid := res.CallID()
	if cid == nil {
		return
	}
	k := dialogKey{callID: cid.Value(), localTag: LocalTag(fromTag(res))}
	if o, ok := s.dialogs.get(k).(interface{ handleRetransmitted2xx(*sip.Response) }); ok {
		o.handleRetransmitted2xx(res)
		return
	}
	if v, ok := s.endedAcks.Load(k); ok {
		_ = s.writeStateless(v.(*sip.Request).Clone()) // best effort, like the first ACK
	}
}

// rememberAck keeps the ACK of an ended outbound dialog for 64*T1 so late
// 2xx copies are still acknowledged.
func (s *Server) rememberAck(k dialogKey, ack *sip.Request) {
	s.endedAcks.Store(k, ack)
	time.AfterFunc(64*s.cfg.T1, func() { s.endedAcks.Delete(k) })
}
