package sip

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// identityUser is the user part we are known by at the PBX: the From user
// of our calls when the b2bua gives no caller id, and of our pings.
func (s *Server) identityUser() string {
	switch o := s.cfg.Outbound; {
	case o.FromUser != "":
		return o.FromUser
	case o.Username != "":
		return o.Username
	}
	return "tgsip"
}

// pingLoop sends OPTIONS to the PBX. A response means it is up, unless it
// is 401, 403 or 404 after any challenge was answered: then the PBX does
// not know who we are, which is a configuration problem and not a healthy
// PBX (Asterisk answers an OPTIONS from an unknown endpoint 401 and logs
// "No matching endpoint found", the line fail2ban bans for). No response
// within the interval (or 64*T1) means down.
func (s *Server) pingLoop() {
	interval := s.cfg.Outbound.OptionsPing
	warned := false
	for {
		status := s.ping(min(interval, 64*s.cfg.T1))
		rejected := status == 401 || status == 403 || status == 404
		if rejected && !warned {
			s.log.Warn("PBX refuses our OPTIONS ping: check outbound.from_user, username and password against the PBX's trunk endpoint",
				"status", status, "from_user", s.identityUser())
		}
		warned = rejected
		s.setPBX(func(p *PBXStatus) {
			p.Up = status != 0 && !rejected
			if rejected {
				p.PingRejected++
			}
		})
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return
		}
	}
}

// ping sends one OPTIONS to the PBX from the identity of our calls and
// REGISTER (answering one digest challenge when credentials are set) and
// returns the final status, 0 when none came.
func (s *Server) ping(timeout time.Duration) int {
	target, tp, err := s.outboundTarget()
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cfg := s.cfg.Outbound
	domain := cfg.FromDomain
	if domain == "" {
		domain = target.Host // as the AOR of our REGISTER
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.identityUser(), Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	callID := sip.CallIDHeader(sip.GenerateTagN(24))
	var auth sip.Header
	for cseq := uint32(1); ; cseq++ {
		req := sip.NewRequest(sip.OPTIONS, target)
		req.AppendHeader(sip.HeaderClone(from))
		req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
		req.AppendHeader(sip.HeaderClone(&callID))
		req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.OPTIONS})
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
		req.AppendHeader(s.contact(tp, s.identityUser()))
		req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		if auth != nil {
			req.AppendHeader(auth)
		}
		req.SetTransport(tp)
		res, err := s.do(ctx, req)
		if err != nil || res == nil {
			return 0
		}
		if (res.StatusCode == 401 || res.StatusCode == 407) && auth == nil && cfg.Username != "" {
			if auth, err = s.digestAnswer(res, "OPTIONS", target.Addr()); err == nil {
				continue
			}
		}
		return res.StatusCode
	}
}
