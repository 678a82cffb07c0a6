package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// uac is an in-process sipgo client on its own UDP socket.
type uac struct {
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	addr *net.UDPAddr
	byes chan *sip.Request
	acks chan *sip.Request // ACKs sent to the UAC (for our re-INVITEs)
	// ackSent is set by a test before it ACKs; byesBeforeAck counts BYEs
	// that arrived while it was unset.
	ackSent       atomic.Bool
	byesBeforeAck atomic.Int32
	// onInvite, when set, serves in-dialog INVITEs sent to the UAC (405
	// otherwise).
	onInvite atomic.Pointer[func(*sip.Request, sip.ServerTransaction)]
}

func newUAC(t testing.TB) *uac { return newUACOn(t, net.IPv4(127, 0, 0, 1)) }

// newUACOn is a sipgo UAC on ip.
func newUACOn(t testing.TB, ip net.IP) *uac {
	t.Helper()
	// The UAC closes as Server.Close does (sweep.go), or a request of ours
	// read just before its close (an ACK to its re-INVITE's 200, a BYE)
	// makes its sipgo open a socket for the response that nobody closes
	// (goleak: TestRefreshDueDuringReoffer's ACK).
	heard := newSenders()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-uac"), sipgo.WithUserAgentTransportLayerOptions(
		sip.WithTransportLayerReadFilter(func(p sip.TransportReadProps, data []byte) ([]byte, error) {
			if !heard.pass(p.RemoteAddr, true) {
				return nil, nil
			}
			return data, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{ua: ua, srv: srv, addr: conn.LocalAddr().(*net.UDPAddr), byes: make(chan *sip.Request, 4), acks: make(chan *sip.Request, 8)}
	srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) {
		select {
		case u.acks <- req:
		default:
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if !u.ackSent.Load() {
			u.byesBeforeAck.Add(1)
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		u.byes <- req
	})
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if h := u.onInvite.Load(); h != nil {
			(*h)(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
	})
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { closeUAC(t, ua, conn, heard); <-served })
	// sipgo registers the listener asynchronously; requests bound to its
	// address fail until it has.
	waitUntil(t, func() bool {
		c, err := ua.TransportLayer().GetConnection("udp", u.addr.String())
		if err == nil && c != nil {
			c.TryClose()
			return true
		}
		return false
	}, "UAC listener")
	if u.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname(uriHost(ip)), sipgo.WithClientConnectionAddr(u.addr.String())); err != nil {
		t.Fatal(err)
	}
	return u
}

// closeUAC closes a test UAC's sipgo as Server.Close does (sweep.go):
// deaf first, then its reader flushed with a datagram of its own, then a
// dead connection under every recent sender in the UDP pool, which is not
// cleared. A sipgo handler still running then finds the dead connection,
// not an empty slot that makes it open a socket.
func closeUAC(t testing.TB, ua *sipgo.UserAgent, conn *net.UDPConn, heard *senders) {
	recent := heard.close()
	if _, err := conn.WriteToUDP([]byte("\r\n\r\n"), conn.LocalAddr().(*net.UDPAddr)); err == nil {
		select {
		case <-heard.heard:
		case <-time.After(5 * time.Second):
			t.Error("the UAC's reader did not read its own datagram")
		}
	}
	udp := ua.TransportLayer().Pool("udp")
	for _, a := range recent {
		udp.Add(a, newDeadConn())
	}
	ua.TransactionLayer().Close()
	conn.Close()
}

func (u *uac) invite(s *Server, callID string) *sip.Request {
	ap, _ := s.Addr(UDP)
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1000", Host: ap.Addr().String(), Port: int(ap.Port())})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "race", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1000", Host: ap.Addr().String()}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "race", Host: "127.0.0.1", Port: u.addr.Port}})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(benchOffer))
	return req
}

// answered sends the UAC's INVITE for callID to s and returns it with the
// 200 it must get (a server that answers at once).
func (u *uac) answered(ctx context.Context, t *testing.T, s *Server, callID string) (*sip.Request, *sip.Response) {
	t.Helper()
	inv := u.invite(s, callID)
	res, err := u.cli.Do(ctx, inv)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE: %v %v", res, err)
	}
	return inv, res
}

// inDialog builds the UAC's request m within the dialog that inv opened
// and res, our 2xx to it, confirmed: sent to our Contact, with our To tag;
// an INVITE carries the UAC's Contact, and a body goes as SDP.
func inDialog(inv *sip.Request, res *sip.Response, m sip.RequestMethod, cseq uint32, body []byte) *sip.Request {
	r := sip.NewRequest(m, res.Contact().Address)
	r.AppendHeader(sip.HeaderClone(inv.From()))
	r.AppendHeader(sip.HeaderClone(res.To()))
	r.AppendHeader(sip.HeaderClone(inv.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: m})
	if m == sip.INVITE {
		r.AppendHeader(sip.HeaderClone(inv.Contact()))
	}
	if len(body) > 0 {
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		r.SetBody(body)
	}
	return r
}

// TestInboundCancelAnswerRace races our Answer against the caller's
// CANCEL. Whichever wins, both sides must agree: 487 and a cancelled call,
// or 200 (ACKed and BYEd by the caller) and a normally ended call.
func TestInboundCancelAnswerRace(t *testing.T) {
	s := newTestServer(t, nil)
	answerNow := make(chan struct{})
	answered := make(chan error, 1)
	got := calls(s, func(c *InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Error(err)
		}
		<-answerNow
		answered <- c.Answer(nil)
	})
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	outcomes := map[int]int{}
	for i := 0; i < 20; i++ {
		inv := u.invite(s, fmt.Sprintf("race-%d", i))
		tx, err := u.cli.TransactionRequest(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		for res := range tx.Responses() {
			if res.StatusCode == 180 {
				break
			}
		}
		c := waitFor(t, got, "call")
		cancelReq := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
		cancelReq.AppendHeader(inv.Via().Clone())
		for _, h := range []sip.Header{inv.From(), inv.To(), inv.CallID()} {
			cancelReq.AppendHeader(sip.HeaderClone(h))
		}
		cancelReq.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.CANCEL})
		mf := sip.MaxForwardsHeader(70)
		cancelReq.AppendHeader(&mf)
		cancelReq.SetBody(nil)
		answerNow <- struct{}{}
		ctx2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
		_, _ = u.cli.Do(ctx2, cancelReq, sipgo.ClientRequestBuild) // its answer does not matter here
		cancel2()
		var final *sip.Response
		for final == nil {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					final = res
				}
			case <-tx.Done():
				t.Fatal("INVITE transaction ended without a final response")
			}
		}
		tx.Terminate()
		aerr := waitFor(t, answered, "Answer result")
		outcomes[final.StatusCode]++
		switch final.StatusCode {
		case 487:
			if !errors.Is(aerr, ErrCancelled) && !errors.Is(aerr, ErrCallEnded) {
				t.Fatalf("call %d: 487 on the wire but Answer returned %v", i, aerr)
			}
			if ce := endOf(t, c); ce.Cause != CauseCancelled {
				t.Fatalf("call %d: 487 on the wire but end %v", i, ce)
			}
		case 200:
			if aerr != nil {
				t.Fatalf("call %d: 200 on the wire but Answer returned %v", i, aerr)
			}
			// RFC 3261 §9.1: the caller ACKs and hangs up.
			to := final.To()
			ack := sip.NewRequest(sip.ACK, final.Contact().Address)
			bye := sip.NewRequest(sip.BYE, final.Contact().Address)
			for j, r := range []*sip.Request{ack, bye} {
				r.AppendHeader(sip.HeaderClone(inv.From()))
				r.AppendHeader(sip.HeaderClone(to))
				r.AppendHeader(sip.HeaderClone(inv.CallID()))
				m := sip.ACK
				if j == 1 {
					m = sip.BYE
				}
				r.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(1 + j), MethodName: m})
			}
			if err := u.cli.WriteRequest(ack); err != nil {
				t.Fatal(err)
			}
			if res, err := u.cli.Do(ctx, bye); err != nil || res.StatusCode != 200 {
				t.Fatalf("BYE after racing 200: %v %v", res, err)
			}
			if ce := endOf(t, c); ce.Cause != CauseNormal {
				t.Fatalf("call %d: 200 on the wire but end %v", i, ce)
			}
		default:
			t.Fatalf("call %d: final %d", i, final.StatusCode)
		}
	}
	t.Logf("outcomes: %v", outcomes)
	waitNoCalls(t, s)
}

// TestAdvertisedAddresses: behind 1:1 NAT the Contact and Via we send
// carry the external signalling address and the SDP the external media
// address, while everything stays bound to 127.0.0.1.
func TestAdvertisedAddresses(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.ExternalSignalingAddr = netip.MustParseAddr("203.0.113.5")
		c.ExternalMediaAddr = netip.MustParseAddr("198.51.100.7")
	})
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "nat-1")
	ap, _ := s.Addr(UDP)
	if c := res.Contact(); c == nil || c.Address.Host != "203.0.113.5" || c.Address.Port != int(ap.Port()) {
		t.Errorf("Contact = %v", res.Contact())
	}
	if !strings.Contains(string(res.Body()), "c=IN IP4 198.51.100.7") {
		t.Errorf("SDP does not advertise the media address:\n%s", res.Body())
	}
	// The Contact is not routable from here; send the ACK to the socket.
	ack := inDialog(inv, res, sip.ACK, 1, nil)
	ack.SetDestination(ap.String())
	if err := u.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, got, "call")
	waitFor(t, c.Confirmed(), "ACK")
	// The caller hangs up: our response to a BYE of ours would go to the
	// advertised address, which does not exist here.
	bye := inDialog(inv, res, sip.BYE, 2, nil)
	bye.SetDestination(ap.String())
	if res, err := u.cli.Do(ctx, bye); err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE: %v %v", res, err)
	}
	endOf(t, c)
	waitNoCalls(t, s)
}

// TestHangupBeforeAckWaitsForAck: the b2bua hangs up right after Answer;
// RFC 3261 §15 holds the BYE until the ACK for our 200 has arrived.
func TestHangupBeforeAckWaitsForAck(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
		c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
	})
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "early-hangup")
	c := waitFor(t, got, "call")
	ack := inDialog(inv, res, sip.ACK, 1, nil)
	u.ackSent.Store(true)
	if err := u.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	bye := waitFor(t, u.byes, "BYE after ACK")
	if n := u.byesBeforeAck.Load(); n != 0 {
		t.Fatalf("%d BYE before our ACK", n)
	}
	if h := bye.GetHeader("Reason"); h == nil || !strings.Contains(h.Value(), "cause=16") {
		t.Errorf("BYE Reason = %v", h)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// TestMaxCalls: beyond max_calls an INVITE gets 503 with Retry-After (the
// status a load balancer fails over on), and the call slot frees again.
func TestMaxCalls(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MaxCalls = 1 })
	got := calls(s, answerAtOnce(t))
	start(t, s)
	ap, _ := s.Addr(UDP)
	u := newUAC(t)
	dua := sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "uac", Host: "127.0.0.1", Port: u.addr.Port}}}
	target := sip.Uri{Scheme: "sip", User: "1000", Host: ap.Addr().String(), Port: int(ap.Port())}
	ct := sip.NewHeader("Content-Type", "application/sdp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	invite := func() (*sipgo.DialogClientSession, error) {
		sess, err := dua.Invite(ctx, target, []byte(benchOffer), ct)
		if err != nil {
			t.Fatal(err)
		}
		return sess, sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	}
	first, err := invite()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, got, "first call")
	second, err := invite()
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 || de.Res.GetHeader("Retry-After") == nil {
		t.Fatalf("second INVITE: %v, want 503 with Retry-After", err)
	}
	second.Close()
	if s.Overloaded() != 1 {
		t.Errorf("overloaded counter %d, want 1", s.Overloaded())
	}
	if err := first.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	waitNoCalls(t, s)
	// The slot is free again.
	third, err := invite()
	if err != nil {
		t.Fatalf("INVITE after the first call ended: %v", err)
	}
	if err := third.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, got, "third call")
	if err := third.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	third.Close()
	waitNoCalls(t, s)
}

// TestIPv6Call: a call over IPv6 loopback, signalling and SDP (c=IN IP6).
func TestIPv6Call(t *testing.T) {
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	probe.Close()
	lo6 := netip.IPv6Loopback()
	s := newTestServer(t, func(c *Config) {
		c.Listen = []ListenConfig{{Transport: UDP, Addr: netip.AddrPortFrom(lo6, 0)}}
		c.MediaAddr = lo6
		c.Trunks = []TrunkConfig{{Name: "v6", Allow: []netip.Prefix{netip.PrefixFrom(lo6, 128)}}}
	})
	got := calls(s, answerAtOnce(t))
	start(t, s)
	ap, _ := s.Addr(UDP)
	u := newUACOn(t, net.IPv6loopback)
	dua := sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "uac", Host: "[::1]", Port: u.addr.Port}}}
	target := sip.Uri{Scheme: "sip", User: "1000", Host: "[" + ap.Addr().String() + "]", Port: int(ap.Port())}
	offer := "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := dua.Invite(ctx, target, []byte(offer), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if body := string(sess.InviteResponse.Body()); !strings.Contains(body, "c=IN IP6 ::1") {
		t.Errorf("answer is not IPv6:\n%s", body)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, got, "call")
	if m := c.Media(); m.Remote != netip.AddrPortFrom(lo6, 40000) {
		t.Errorf("remote media %v", m.Remote)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// uriHost is ip as the host part of a SIP URI (RFC 3261 §25.1: IPv6 in brackets).
func uriHost(ip net.IP) string {
	if ip.To4() == nil {
		return "[" + ip.String() + "]"
	}
	return ip.String()
}
