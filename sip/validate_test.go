package sip

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawPeer speaks SIP to the server over a plain socket, so a test can send
// exactly the bytes it wants.
type rawPeer struct {
	t     testing.TB
	tp    Transport
	udp   *net.UDPConn
	dst   *net.UDPAddr
	tcp   net.Conn
	r     *bufio.Reader
	lport int
	host  string
	port  uint16
}

func newRawPeer(t testing.TB, s *Server, tp Transport) *rawPeer {
	t.Helper()
	ap, ok := s.Addr(tp)
	if !ok {
		t.Fatalf("no %s listener", tp)
	}
	p := &rawPeer{t: t, tp: tp, host: ap.Addr().String(), port: ap.Port()}
	if tp == UDP {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p.udp, p.dst, p.lport = c, net.UDPAddrFromAddrPort(ap), c.LocalAddr().(*net.UDPAddr).Port
		t.Cleanup(func() { c.Close() })
		return p
	}
	c, err := net.Dial("tcp", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	p.tcp, p.r, p.lport = c, bufio.NewReader(c), c.LocalAddr().(*net.TCPAddr).Port
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	var err error
	if p.udp != nil {
		_, err = p.udp.WriteToUDP(b, p.dst)
	} else {
		_, err = p.tcp.Write(b)
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next SIP message, or an error at the deadline.
func (p *rawPeer) read(deadline time.Time) (string, error) {
	if p.udp != nil {
		p.udp.SetReadDeadline(deadline)
		buf := make([]byte, 65536)
		n, err := p.udp.Read(buf)
		return string(buf[:n]), err
	}
	p.tcp.SetReadDeadline(deadline)
	var head strings.Builder
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keep-alive CRLF
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	n := 0
	for _, l := range strings.Split(head.String(), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.r, body); err != nil {
		return head.String(), err
	}
	return head.String() + string(body), nil
}

// final waits for the final response to the request with the branch
// z9hG4bK+callID that rawRequest gives it (provisional ones and other
// messages are skipped); it fails the test at the deadline.
func (p *rawPeer) final(callID string, within time.Duration) string {
	p.t.Helper()
	msg, ok := p.finalOrNone(callID, within)
	if !ok {
		p.t.Fatalf("%s: no final response for %s within %v", p.tp, callID, within)
	}
	return msg
}

// finalOrNone is final without failing: ok is false when nothing came.
func (p *rawPeer) finalOrNone(callID string, within time.Duration) (string, bool) {
	deadline := time.Now().Add(within)
	for {
		msg, err := p.read(deadline)
		if err != nil {
			return "", false
		}
		if !strings.HasPrefix(msg, "SIP/2.0 ") || !strings.Contains(headerOf(msg, "Via"), "branch=z9hG4bK"+callID+";") {
			continue
		}
		if code, _ := strconv.Atoi(msg[8:11]); code >= 200 {
			return msg, true
		}
	}
}

// headerOf returns the first value of a header in a raw message.
func headerOf(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// rawRequest builds a request from p: method, Request-URI, the headers
// every request needs (edit replaces or, with "", removes one by name),
// extra headers, and a body whose Content-Length is added unless extra
// has one.
func (p *rawPeer) rawRequest(method, ruri, id string, edit map[string]string, extra []string, body string) []byte {
	base := [][2]string{
		{"Via", fmt.Sprintf("SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK%s;rport", p.tp, p.lport, id)},
		{"From", "<sip:v@127.0.0.1>;tag=f" + id},
		{"To", "<sip:1000@127.0.0.1>"},
		{"Call-ID", id},
		{"CSeq", "1 " + method},
		{"Max-Forwards", "70"},
		{"Contact", fmt.Sprintf("<sip:v@127.0.0.1:%d>", p.lport)},
	}
	if ruri == "" {
		ruri = fmt.Sprintf("sip:1000@%s:%d", p.host, p.port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	for _, h := range base {
		v, ok := edit[h[0]]
		if !ok {
			v = h[1]
		} else if v == "" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], v)
	}
	hasCL := false
	for _, h := range extra {
		hasCL = hasCL || strings.HasPrefix(strings.ToLower(h), "content-length:")
		b.WriteString(h + "\r\n")
	}
	if !hasCL {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// wantStatus checks the status line: code and its standard reason phrase.
func wantStatus(t testing.TB, msg string, code int) {
	t.Helper()
	line, _, _ := strings.Cut(msg, "\r\n")
	if want := fmt.Sprintf("SIP/2.0 %d %s", code, reasonPhrase(code)); line != want {
		t.Fatalf("got %q, want %q", line, want)
	}
}

const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// TestMalformedNeverReachesHandler sends each malformed request over UDP
// and TCP and checks its answer and that OnCall never ran.
func TestMalformedNeverReachesHandler(t *testing.T) {
	s := newTestServer(t, nil)
	var seen atomic.Int32
	calls(s, func(c *InboundCall) {
		seen.Add(1)
		c.Reject(603, "test")
	})
	start(t, s)
	sdp := []string{"Content-Type: application/sdp"}
	cases := []struct {
		name   string
		method string
		ruri   string
		edit   map[string]string
		extra  []string
		body   string
		status int
		hdr    [2]string // a header the answer must carry
	}{
		{name: "two Call-IDs", extra: append([]string{"Call-ID: second"}, sdp...), body: testOffer, status: 400},
		{name: "two Content-Lengths", extra: append([]string{"Content-Length: " + itoa(len(testOffer)), "Content-Length: 3"}, sdp...), body: testOffer, status: 400},
		{name: "CSeq method differs", edit: map[string]string{"CSeq": "1 OPTIONS"}, extra: sdp, body: testOffer, status: 400},
		{name: "Max-Forwards 0", edit: map[string]string{"Max-Forwards": "0"}, extra: sdp, body: testOffer, status: 483},
		{name: "Max-Forwards 256", edit: map[string]string{"Max-Forwards": "256"}, extra: sdp, body: testOffer, status: 400},
		{name: "unknown Require on INVITE", extra: append([]string{"Require: nosuchext"}, sdp...), body: testOffer, status: 420, hdr: [2]string{"Unsupported", "nosuchext"}},
		{name: "unknown Require on OPTIONS", method: "OPTIONS", extra: []string{"Require: 100rel, nosuchext"}, status: 420, hdr: [2]string{"Unsupported", "nosuchext"}},
		{name: "body not SDP", extra: []string{"Content-Type: text/plain"}, body: "hello", status: 415, hdr: [2]string{"Accept", "application/sdp"}},
		{name: "body without Content-Type", body: testOffer, status: 400},
		{name: "Accept without SDP", extra: append([]string{"Accept: text/nobodyknows"}, sdp...), body: testOffer, status: 406},
		{name: "unknown Request-URI scheme", ruri: "nobodyKnowsThisScheme:totallyopaquecontent", extra: sdp, body: testOffer, status: 416},
		{name: "tel Request-URI", ruri: "tel:+15551234", extra: sdp, body: testOffer, status: 416},
		// 400 once went out as "400 Not Acceptable Here" (the phrase of 488).
		{name: "unparsable SDP", extra: sdp, body: "this is not sdp\r\n", status: 400},
	}
	for _, tp := range []Transport{UDP, TCP} {
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s", tp, tc.name), func(t *testing.T) {
				p := newRawPeer(t, s, tp)
				method := tc.method
				if method == "" {
					method = "INVITE"
				}
				id := fmt.Sprintf("val%d%s", i, tp)
				p.send(p.rawRequest(method, tc.ruri, id, tc.edit, tc.extra, tc.body))
				res := p.final(id, 5*time.Second)
				wantStatus(t, res, tc.status)
				if tc.hdr[0] != "" && !strings.Contains(headerOf(res, tc.hdr[0]), tc.hdr[1]) {
					t.Fatalf("%s: %q, want it to contain %q\n%s", tc.hdr[0], headerOf(res, tc.hdr[0]), tc.hdr[1], res)
				}
			})
		}
	}
	waitNoCalls(t, s)
	if n := seen.Load(); n != 0 {
		t.Fatalf("the call handler saw %d malformed calls", n)
	}
	if s.Wire().Malformed.Load() == 0 {
		t.Fatal("Malformed not counted")
	}
}

// TestTCPGarbageAfterRequest: garbage read in the same chunk as a valid
// request must not cost the request its answer, and a stream whose
// framing survives goes on serving.
func TestTCPGarbageAfterRequest(t *testing.T) {
	s := newTestServer(t, nil)
	start(t, s)
	for i, garbage := range []string{
		"\x00\x01\x02 binary that never ends a header section",
		"NOT SIP AT ALL\r\n\r\n",
		"INVITE sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n",
	} {
		p := newRawPeer(t, s, TCP)
		id := fmt.Sprintf("garbage%d", i)
		msg := append(p.rawRequest("OPTIONS", "", id, nil, nil, ""), garbage...)
		p.send(msg)
		wantStatus(t, p.final(id, 5*time.Second), 200)
	}
	// Framed garbage is dropped and the stream stays usable.
	p := newRawPeer(t, s, TCP)
	p.send([]byte("NOT SIP AT ALL\r\n\r\n"))
	p.send(p.rawRequest("OPTIONS", "", "after-garbage", nil, nil, ""))
	wantStatus(t, p.final("after-garbage", 5*time.Second), 200)
	if s.Wire().StreamDiscards.Load() == 0 {
		t.Fatal("discards not counted")
	}
}

func TestFitReason(t *testing.T) {
	for _, tc := range []struct {
		code     int
		in, want string
	}{
		{400, "Not Acceptable Here", "Bad Request"},
		{488, "Not Acceptable Here", "Not Acceptable Here"},
		{400, "Bad Session-Expires", "Bad Session-Expires"},
		{606, "Not Acceptable", "Not Acceptable"},
		{415, "", "Unsupported Media Type"},
	} {
		if got := fitReason(tc.code, tc.in); got != tc.want {
			t.Errorf("fitReason(%d, %q) = %q, want %q", tc.code, tc.in, got, tc.want)
		}
	}
}

// TestLargeUDPResponse: an INVITE that came through several proxies gets
// a 200 over 1,300 bytes, which sipgo used to drop silently.
func TestLargeUDPResponse(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	p := newRawPeer(t, s, UDP)
	id := "large-udp-response"
	pad := strings.Repeat("a", 40)
	extra := []string{"Content-Type: application/sdp"}
	for i := 0; i < 3; i++ {
		extra = append(extra, fmt.Sprintf("Via: SIP/2.0/UDP proxy%d-%s.example.net:5060;branch=z9hG4bKproxy%d%s;received=192.0.2.%d", i, pad, i, pad, i+1))
	}
	for i := 0; i < 3; i++ {
		// Loopback routes: the BYE follows them (nothing else may be contacted).
		extra = append(extra, fmt.Sprintf("Record-Route: <sip:127.0.0.1:%d;lr;hop%d=%s>", p.lport, i, pad))
	}
	extra = append(extra, "X-Padding: "+strings.Repeat("x", 400))
	inv := p.rawRequest("INVITE", "", id, nil, extra, testOffer)
	if len(inv) < 1600 {
		t.Fatalf("INVITE is %d bytes, want ≥ 1600", len(inv))
	}
	p.send(inv)
	c := waitFor(t, got, "the call")
	res := p.final(id, 5*time.Second)
	wantStatus(t, res, 200)
	if len(res) <= 1300 {
		t.Fatalf("the 200 is %d bytes; the test needs one over 1300", len(res))
	}
	toTag := headerOf(res, "To")
	ack := p.rawRequest("ACK", "", id, map[string]string{"CSeq": "1 ACK", "To": toTag,
		"Via": fmt.Sprintf("SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKack;rport", p.lport)}, nil, "")
	p.send(ack)
	waitFor(t, c.Confirmed(), "the ACK")
	c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
	// Answer the BYE so the call ends at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, err := p.read(deadline)
		if err != nil {
			t.Fatalf("no BYE: %v", err)
		}
		if strings.HasPrefix(msg, "BYE ") {
			p.send(okFor(msg))
			break
		}
	}
	waitFor(t, c.Done(), "the end of the call")
	waitNoCalls(t, s)
	if n := s.Wire().SendFailures.Load(); n != 0 {
		t.Fatalf("%d send failures", n)
	}
}

// okFor builds a 200 to a raw request.
func okFor(req string) []byte {
	var b bytes.Buffer
	b.WriteString("SIP/2.0 200 OK\r\n")
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		k, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "from", "to", "call-id", "cseq":
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}
