package sip

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Connection reuse (RFC 5923). Without a listener of a stream transport
// (TCP, TLS) a Contact of ours could only name a port where nothing of
// ours listens: the PBX's BYE for a call we placed would go to 5060/5061
// of our host and the call would never end. So a request over such a
// transport leaves on a connection we opened, its Via carries that
// connection's local port and ";alias" (RFC 5923 §5: the peer may send
// its requests for us back over the connection), and our Contact the
// same port, so a PBX that looks up its connections by address (or
// rewrites the Contact to the source, like Asterisk's rewrite_contact)
// reaches us over it. This is also what lets a PBX reach a trunk behind
// NAT that only dials out.

// reusesConnection reports whether requests on tp go over a connection of
// ours rather than to a listener.
func (s *Server) reusesConnection(tp Transport) bool {
	if tp != TCP && tp != TLS {
		return false
	}
	_, ok := s.Addr(tp)
	return !ok
}

// reuseConnection opens (or finds) the connection req leaves on when
// there is no listener of its transport, and puts that connection's port
// and ";alias" in our Via and the port in our Contact.
func (s *Server) reuseConnection(ctx context.Context, req *sip.Request) error {
	if !s.reusesConnection(Transport(strings.ToUpper(req.Transport()))) {
		return nil
	}
	ctx, cancel := s.untilHalt(ctx)
	defer cancel()
	conn, err := s.ua.TransportLayer().ClientRequestConnection(ctx, req)
	if err != nil {
		return err
	}
	defer conn.TryClose() // the transaction takes its own reference
	la, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return err
	}
	port := int(la.Port())
	if via := req.Via(); via != nil {
		via.Port = port
		if via.Params == nil {
			via.Params = sip.NewParams()
		}
		via.Params.Add("alias", "")
	}
	if ct := req.Contact(); ct != nil && ct.Address.Host == s.hostForURIs() {
		ct.Address.Port = port
	}
	return nil
}

// contactFor is our Contact in a dialog created by req, a request that
// reached us: with no listener of its transport (it came over a
// connection we opened, such as the one of our REGISTER), the port is
// that connection's.
func (s *Server) contactFor(req *sip.Request, user string) *sip.ContactHeader {
	tp := Transport(strings.ToUpper(req.Transport()))
	ct := s.contact(string(tp), user)
	if !s.reusesConnection(tp) {
		return ct
	}
	conn, err := s.ua.TransportLayer().GetConnection(tp.network(), req.Source())
	if err != nil || conn == nil {
		return ct
	}
	defer conn.TryClose()
	if la, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
		ct.Address.Port = int(la.Port())
	}
	return ct
}
