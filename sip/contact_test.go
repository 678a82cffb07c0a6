package sip

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// streamPBX is an in-process sipgo PBX on TCP or TLS that answers one
// INVITE and, after its ACK, hangs up with a BYE sent where RFC 3261
// §12.2.1.1 says: to the Contact of the INVITE.
type streamPBX struct {
	addr    netip.AddrPort
	invites chan *sip.Request
	byeErr  chan error
}

func newStreamPBX(t *testing.T, tp Transport, certFile, keyFile string) *streamPBX {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-pbx"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &streamPBX{addr: ln.Addr().(*net.TCPAddr).AddrPort(), invites: make(chan *sip.Request, 1), byeErr: make(chan error, 1)}
	var l net.Listener = ln
	if tp == TLS {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		l = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	answer := "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	var inv *sip.Request
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		inv = req
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte(answer))
		res.To().Params.Add("tag", "pbxtag")
		contact := sip.Uri{Scheme: "sip", User: "pbx", Host: "127.0.0.1", Port: int(p.addr.Port()), UriParams: sip.NewParams()}
		contact.UriParams.Add("transport", tp.network())
		res.AppendHeader(&sip.ContactHeader{Address: contact})
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
		p.invites <- req
	})
	srv.OnAck(func(ack *sip.Request, _ sip.ServerTransaction) {
		// The BYE goes to the Contact of the INVITE (the remote target).
		bye := sip.NewRequest(sip.BYE, inv.Contact().Address)
		from := &sip.FromHeader{Address: inv.To().Address, Params: sip.NewParams()}
		from.Params.Add("tag", "pbxtag")
		to := &sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()}
		bye.AppendHeader(from)
		bye.AppendHeader(to)
		bye.AppendHeader(sip.HeaderClone(inv.CallID()))
		bye.AppendHeader(&sip.CSeqHeader{SeqNo: 2, MethodName: sip.BYE})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := cli.Do(ctx, bye)
			if err == nil && res.StatusCode != 200 {
				err = fmt.Errorf("BYE answered %d", res.StatusCode)
			}
			p.byeErr <- err
		}()
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		if tp == TLS {
			_ = srv.ServeTLS(l)
		} else {
			_ = srv.ServeTCP(l)
		}
	}()
	t.Cleanup(func() { l.Close(); ua.Close(); <-served })
	return p
}

// TestByeReachesCallPlacedOverStream: we place a call to the PBX over TCP
// and over TLS while listening on UDP only. Our Contact must still be
// reachable: it names the connection we opened (its port, RFC 5923
// ";alias" on the Via), so the PBX's BYE, sent to that Contact, reaches
// us over it and ends the call.
func TestByeReachesCallPlacedOverStream(t *testing.T) {
	for _, tp := range []Transport{TCP, TLS} {
		t.Run(string(tp), func(t *testing.T) {
			certFile, keyFile, _ := writeTestCert(t)
			pbx := newStreamPBX(t, tp, certFile, keyFile)
			s := newTestServer(t, func(c *Config) {
				c.Listen = c.Listen[:1] // UDP only
				c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d;transport=%s", pbx.addr.Port(), tp.network())
				c.Outbound.TLS.CAFile = certFile
			})
			start(t, s)
			c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
			if err != nil {
				t.Fatal(err)
			}
			inv := waitFor(t, pbx.invites, "INVITE at the PBX")
			ct := inv.Contact()
			if ct == nil || ct.Address.Port == 0 {
				t.Errorf("Contact without a port: %v", inv.GetHeader("Contact"))
			}
			if via := inv.Via(); !via.Params.Has("alias") || via.Port != ct.Address.Port {
				t.Errorf("Via %v does not offer its connection (Contact port %d)", via.Value(), ct.Address.Port)
			}
			waitFor(t, c.Answered(), "answer")
			if err := waitFor(t, pbx.byeErr, "the PBX's BYE"); err != nil {
				t.Errorf("BYE from the PBX: %v", err)
			}
			if ce := endOf(t, c); ce.Cause != CauseNormal || !ce.Remote {
				t.Errorf("end = %v", ce)
			}
			if !strings.Contains(ct.Address.String(), "transport="+tp.network()) {
				t.Errorf("Contact %v lacks the transport", ct.Address.String())
			}
			waitNoCalls(t, s)
		})
	}
}
