// Sending: our Via and Contact, client transactions, stateless ACKs and
// responses.

package sip

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// hostForURIs is the host we advertise in Contact and Via.
func (s *Server) hostForURIs() string {
	if s.cfg.ExternalSignalingAddr.IsValid() {
		return s.cfg.ExternalSignalingAddr.String()
	}
	for _, l := range s.cfg.Listen {
		if a := l.Addr.Addr(); a.IsValid() && !a.IsUnspecified() {
			return a.String()
		}
	}
	if s.cfg.Domain != "" {
		return s.cfg.Domain
	}
	return "127.0.0.1"
}

// contact is our Contact for a dialog on transport tp. Without a listener
// of tp its port is 0 until reuseConnection (or contactFor) sets it.
func (s *Server) contact(tp string, user string) *sip.ContactHeader {
	t := Transport(strings.ToUpper(tp))
	a, _ := s.Addr(t)
	u := sip.Uri{Scheme: "sip", User: user, Host: s.hostForURIs(), Port: int(a.Port())}
	if t != UDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.network())
	}
	if user == "" {
		u.User = "tgsip"
	}
	return &sip.ContactHeader{Address: u}
}

// prepareRequest adds our Via (advertised host, the listener's port for
// the request's transport, rport per RFC 3581) and, on UDP, makes the
// request leave from the listener socket.
func (s *Server) prepareRequest(req *sip.Request) {
	tp := Transport(strings.ToUpper(req.Transport()))
	a, ok := s.Addr(tp)
	via := &sip.ViaHeader{
		ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: string(tp),
		Host: s.hostForURIs(), Port: int(a.Port()), Params: sip.NewParams(),
	}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.RemoveHeader("Via")
	req.PrependHeader(via)
	if tp == UDP && ok && req.Laddr.IP == nil {
		req.Laddr = sip.Addr{IP: net.IP(a.Addr().AsSlice()), Port: int(a.Port())}
	}
	if req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	}
	if req.ContentLength() == nil {
		req.SetBody(req.Body())
	}
}

// request sends req in a client transaction.
func (s *Server) request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	// sipgo uses ctx only to get the connection (dial, TLS handshake).
	ctx, cancel := s.untilHalt(ctx)
	defer cancel()
	s.prepareRequest(req)
	if !s.sends.enter() {
		return nil, errServerClosed
	}
	defer s.sends.leave()
	if err := s.reuseConnection(ctx, req); err != nil {
		return nil, err
	}
	return s.cli.TransactionRequest(ctx, req, noBuild)
}

// do sends req and waits for its final response.
func (s *Server) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := s.request(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, tx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.halt:
			return nil, errHalted
		}
	}
}

// writeStateless sends a request outside any transaction (ACK for 2xx).
func (s *Server) writeStateless(req *sip.Request) error {
	s.prepareRequest(req)
	ctx, cancel := context.WithTimeout(context.Background(), 64*s.cfg.T1)
	defer cancel()
	if !s.sends.enter() {
		return errServerClosed
	}
	defer s.sends.leave()
	if err := s.reuseConnection(ctx, req); err != nil {
		return err
	}
	return s.cli.WriteRequest(req, noBuild)
}

// reply answers req in tx, adding our Server header.
func (s *Server) reply(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, fitReason(code, reason), body)
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.sendFailed(code, req, err)
	}
}

// itoa is strconv.Itoa for header building.
func itoa(n int) string { return strconv.Itoa(n) }

// timerBackoff yields T1, 2T1, 4T1 … capped at T2 (RFC 3261 §13.3.1.4).
func timerBackoff(t1 time.Duration, i int) time.Duration {
	d := t1 << i
	if d > defaultT2 || d <= 0 {
		return defaultT2
	}
	return d
}

// noBuild is a client request option that leaves the request as we built
// it (sipgo's default would add headers we already set).
func noBuild(*sipgo.Client, *sip.Request) error { return nil }
