package sip

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// RFC 3261 §8.2 and RFC 4475 §3.1.2 want a 400 for a request that cannot
// be parsed, but sipgo drops it (UDP) or closes the connection (TCP)
// before our handlers run. The read filter hands such requests here; when
// enough of the header section is readable to address an answer (Via,
// From, To, Call-ID, CSeq: RFC 3261 §8.2.6.2 copies them), it is
// answered statelessly, 400, or 416 when the Request-URI scheme is the
// trouble, or 505 for a foreign SIP version.

// compactNames maps RFC 3261 §7.3.3 compact forms to the headers a
// response copies.
var compactNames = map[string]string{"v": "via", "f": "from", "t": "to", "i": "call-id"}

// unparsableAnswer builds the stateless answer to an unparsable request,
// or nil when it cannot be addressed (a response, an ACK, a missing
// header). via is the top Via value, for routing the answer over UDP.
func unparsableAnswer(msg []byte, userAgent string) (res []byte, via string) {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	start := strings.Fields(lines[0])
	if len(start) < 3 || strings.HasPrefix(start[0], "SIP/") || start[0] == "ACK" || !strings.HasPrefix(start[len(start)-1], "SIP/") {
		return nil, ""
	}
	status := 400
	if !strings.EqualFold(start[len(start)-1], "SIP/2.0") {
		status = 505
	} else if scheme, _, ok := strings.Cut(start[1], ":"); ok && !supportedScheme(scheme) && !strings.ContainsAny(scheme, "<>\"") {
		status = 416
	}
	// Unfold continuation lines (RFC 3261 §7.3.1).
	var hdrs []string
	for _, l := range lines[1:] {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(hdrs) > 0 {
			hdrs[len(hdrs)-1] += " " + strings.TrimSpace(l)
			continue
		}
		hdrs = append(hdrs, l)
	}
	var vias []string
	var from, to, callID, cseq string
	for _, h := range hdrs {
		name, val, ok := strings.Cut(h, ":")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if c, ok := compactNames[name]; ok {
			name = c
		}
		val = sanitizeLine(strings.TrimSpace(val))
		switch name {
		case "via":
			vias = append(vias, val)
		case "from":
			from = val
		case "to":
			to = val
		case "call-id":
			callID = val
		case "cseq":
			cseq = val
		}
	}
	if len(vias) == 0 || from == "" || to == "" || callID == "" || cseq == "" {
		return nil, ""
	}
	if m := strings.Fields(cseq); len(m) == 2 && m[1] == "ACK" {
		return nil, ""
	}
	if !strings.Contains(strings.ToLower(to), "tag=") {
		to += ";tag=" + sip.GenerateTagN(16)
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(status) + " " + reasonPhrase(status) + "\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	b.WriteString("From: " + from + "\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\n")
	b.WriteString("Server: " + userAgent + "\r\nContent-Length: 0\r\n\r\n")
	return []byte(b.String()), vias[0]
}

// sanitizeLine keeps a copied header value on one line and bounded.
func sanitizeLine(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, s)
}

// viaTarget is where a UDP answer goes (RFC 3261 §18.2.2, RFC 3581): the
// source address, and the Via port (5060 when it has none) unless rport
// asks for the source port.
func viaTarget(src netip.AddrPort, via string) netip.AddrPort {
	port, rport := rawViaPort(via)
	switch {
	case rport:
		return src
	case port != 0:
		return netip.AddrPortFrom(src.Addr(), port)
	}
	return netip.AddrPortFrom(src.Addr(), 5060)
}

// rawViaPort reads the sent-by port and the rport flag of a raw Via
// value ("SIP/2.0/UDP host:port;params").
func rawViaPort(v string) (port uint16, rport bool) {
	sentBy, params, _ := strings.Cut(v, ";")
	for _, p := range strings.Split(params, ";") {
		if k, _, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "rport") {
			rport = true
		}
	}
	f := strings.Fields(sentBy)
	if len(f) == 0 {
		return 0, rport
	}
	host := f[len(f)-1]
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		if n, err := strconv.ParseUint(host[i+1:], 10, 16); err == nil {
			port = uint16(n)
		}
	}
	return port, rport
}

// udpListener finds our UDP listener bound to a.
func (s *Server) udpListener(a netip.AddrPort) *net.UDPConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closers {
		if u, ok := c.(*net.UDPConn); ok {
			if la, ok := u.LocalAddr().(*net.UDPAddr); ok && la.AddrPort() == a {
				return u
			}
		}
	}
	return nil
}

// answerUnparsable sends the stateless answer to an unparsable request
// read on a listener.
func (s *Server) answerUnparsable(p sip.TransportReadProps, msg []byte) {
	res, via := unparsableAnswer(msg, s.cfg.UserAgent)
	if res == nil {
		return
	}
	s.wire.Malformed.Add(1)
	var err error
	switch strings.ToUpper(p.Transport) {
	case "UDP":
		ra, ok := p.RemoteAddr.(*net.UDPAddr)
		la, ok2 := p.LocalAddr.(*net.UDPAddr)
		if !ok || !ok2 {
			return
		}
		c := s.udpListener(la.AddrPort())
		if c == nil {
			return
		}
		src := ra.AddrPort()
		dst := viaTarget(netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), via)
		_, err = c.WriteToUDPAddrPort(res, dst)
	default:
		c, gerr := s.ua.TransportLayer().GetConnection(strings.ToLower(p.Transport), p.RemoteAddr.String())
		if gerr != nil || c == nil {
			return
		}
		defer c.TryClose()
		w, ok := c.(interface{ Write([]byte) (int, error) })
		if !ok {
			return
		}
		_, err = w.Write(res)
	}
	if err != nil {
		s.wire.SendFailures.Add(1)
		s.log.Warn("answer to an unparsable request not sent", "transport", p.Transport, "err", err)
	}
}
