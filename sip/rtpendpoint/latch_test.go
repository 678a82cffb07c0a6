package rtpendpoint

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/sip/sdp"
)

// TestLatching: the SDP names an address the phone does not send from (NAT).
// With Latch the first authenticated packet moves our sending to its
// source; afterwards a packet from a third address, even correctly
// protected, is dropped and counted. A forged (unauthenticated) packet
// before that does not latch.
func TestLatching(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(map[bool]string{true: "mux", false: "nomux"}[mux], func(t *testing.T) {
			decoy := listen(t) // the address in the SDP
			keys := newKeys(t, sdp.AESCM128HMACSHA180, false)
			pr := newPair(t, keys, mux, Options{Latch: true}, func(pr *pair) {
				pr.neg.Remote = addrOf(decoy)
				pr.neg.RemoteRTCP = pr.neg.Remote
				if !mux {
					pr.neg.RemoteRTCP = addrOf(listen(t))
				}
			})
			r := startReader(t, pr.ep)
			p := pr.peer

			// A forger without the keys sends first: no latch.
			forger := listen(t)
			raw := p.packet([]byte("forged"))
			forged := append(raw, make([]byte, 10)...) // a zero auth tag
			if _, err := forger.WriteToUDPAddrPort(forged, p.epRTP); err != nil {
				t.Fatal(err)
			}
			eventually(t, "forged packet refused", func() bool { return pr.ep.Stats().Received.AuthFailures == 1 })
			if pr.ep.RemoteAddr() != addrOf(decoy) {
				t.Fatalf("latched to a forged packet: %v", pr.ep.RemoteAddr())
			}

			p.send([]byte("hello"))
			if got, err := r.next(waitFor); err != nil || string(got.Payload) != "hello" {
				t.Fatalf("%v %q", err, got.Payload)
			}
			if got := pr.ep.RemoteAddr(); got != addrOf(p.conn) {
				t.Fatalf("remote %v, want the peer's %v", got, addrOf(p.conn))
			}
			if err := pr.ep.WriteRTP(rtpPacket(t, 1, 1, 1, []byte("to you"))); err != nil {
				t.Fatal(err)
			}
			if got, err := p.recvRTP(waitFor); err != nil || string(got.Payload) != "to you" {
				t.Fatalf("peer: %v %q", err, got.Payload)
			}

			// Another address with valid SRTP (same keys): dropped.
			intruder := listen(t)
			ictx, err := srtp.CreateContext(keys.RemoteKey, keys.RemoteSalt, keys.Profile)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ictx.EncryptRTP(nil, rtpPacket(t, 0x99, 7, 7, []byte("intruder")), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := intruder.WriteToUDPAddrPort(out, p.epRTP); err != nil {
				t.Fatal(err)
			}
			p.send([]byte("still me"))
			if got, err := r.next(waitFor); err != nil || string(got.Payload) != "still me" {
				t.Fatalf("%v %q", err, got.Payload)
			}
			if n := pr.ep.Stats().Received.WrongSource; n != 1 {
				t.Fatalf("WrongSource=%d", n)
			}

			// RTCP: reports reach the peer's RTCP socket once it sent RTCP
			// (latched separately without mux).
			p.sendRTCP(&rtcp.ReceiverReport{SSRC: p.ssrc})
			eventually(t, "peer RTCP read", func() bool { return pr.ep.Stats().RTCPReceived == 1 })
			pr.ep.sendReport(time.Now(), false)
			if _, err := p.recvRTCP(waitFor); err != nil {
				t.Fatalf("report to the latched RTCP address: %v", err)
			}
		})
	}
}

// TestNoLatchWrongSource: without latching only the negotiated address is
// accepted, even with valid SRTP.
func TestNoLatchWrongSource(t *testing.T) {
	decoy := listen(t)
	pr := newPair(t, newKeys(t, sdp.AEADAES128GCM, false), true, Options{}, func(pr *pair) {
		pr.neg.Remote = addrOf(decoy)
		pr.neg.RemoteRTCP = pr.neg.Remote
	})
	r := startReader(t, pr.ep)
	p := pr.peer
	p.send([]byte("from elsewhere"))
	// The same peer keys, now from the negotiated address.
	raw := p.packet([]byte("from the sdp address"))
	p.sendRaw(decoy, p.protect(raw))
	got, err := r.next(waitFor)
	if err != nil || string(got.Payload) != "from the sdp address" {
		t.Fatalf("%v %q", err, got.Payload)
	}
	if n := pr.ep.Stats().Received.WrongSource; n != 1 {
		t.Fatalf("WrongSource=%d", n)
	}
}

// TestLatchPlainNeedsNegotiatedPT: with plain RTP only a packet carrying a
// negotiated payload type latches.
func TestLatchPlainNeedsNegotiatedPT(t *testing.T) {
	decoy := listen(t)
	pr := newPair(t, nil, true, Options{Latch: true}, func(pr *pair) {
		pr.neg.Remote = addrOf(decoy)
		pr.neg.RemoteRTCP = pr.neg.Remote
	})
	r := startReader(t, pr.ep)
	stranger := listen(t)
	junk := rtpPacket(t, 5, 5, 5, []byte("pt 96"))
	junk[1] = 96
	if _, err := stranger.WriteToUDPAddrPort(junk, pr.peer.epRTP); err != nil {
		t.Fatal(err)
	}
	pr.peer.send([]byte("pcmu"))
	if got, err := r.next(waitFor); err != nil || string(got.Payload) != "pcmu" {
		t.Fatalf("%v %q", err, got.Payload)
	}
	if pr.ep.RemoteAddr() != addrOf(pr.peer.conn) {
		t.Fatalf("latched to %v", pr.ep.RemoteAddr())
	}
	if n := pr.ep.Stats().Received.WrongSource; n != 1 {
		t.Fatalf("WrongSource=%d", n)
	}
}

// TestAddressMove: a re-INVITE moves the peer to a new address (no
// latching): packets from the old address still in flight are accepted
// until the first one from the new address, then refused.
func TestAddressMove(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA132, false), true, Options{}, nil)
	r := startReader(t, pr.ep)
	p := pr.peer
	moved := listen(t)
	neg := pr.neg
	neg.Remote = addrOf(moved)
	neg.RemoteRTCP = neg.Remote
	if err := pr.ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	p.send([]byte("old address, in flight"))
	p.sendRaw(moved, p.protect(p.packet([]byte("new address"))))
	p.send([]byte("old address, late"))
	p.sendRaw(moved, p.protect(p.packet([]byte("new again"))))
	for _, want := range []string{"old address, in flight", "new address", "new again"} {
		got, err := r.next(waitFor)
		if err != nil || string(got.Payload) != want {
			t.Fatalf("want %q: %v %q", want, err, got.Payload)
		}
	}
	if n := pr.ep.Stats().Received.WrongSource; n != 1 {
		t.Fatalf("WrongSource=%d", n)
	}
	if err := pr.ep.WriteRTP(rtpPacket(t, 1, 1, 1, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = moved.SetReadDeadline(time.Now().Add(waitFor))
	if _, _, err := moved.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("nothing sent to the new address: %v", err)
	}
}

// TestMappedRemote: an SDP address written as IPv4-mapped IPv6 matches the
// IPv4 source the socket reports.
func TestMappedRemote(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{}, func(pr *pair) {
		a := pr.neg.Remote
		pr.neg.Remote = netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		pr.neg.RemoteRTCP = pr.neg.Remote
	})
	pr.peer.send([]byte("v4"))
	if _, err := pr.ep.ReadRTP(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	if err := pr.ep.WriteRTP(rtpPacket(t, 1, 1, 1, []byte("back"))); err != nil {
		t.Fatal(err)
	}
	if got, err := pr.peer.recvRTP(waitFor); err != nil || string(got.Payload) != "back" {
		t.Fatalf("%v %q", err, got.Payload)
	}
}

// TestIPv6 runs a call over ::1 when the host has IPv6.
func TestIPv6(t *testing.T) {
	lis := func() *net.UDPConn {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	epConn, peerConn := lis(), lis()
	keys := newKeys(t, sdp.AEADAES128GCM, false)
	p := &peer{t: t, conn: peerConn, epRTP: addrOf(epConn), ssrc: 3}
	p.setKeys(keys)
	neg := sdp.Negotiated{
		Codec:  sdp.Codec{Name: sdp.PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1},
		Remote: addrOf(peerConn), RemoteRTCP: addrOf(peerConn), RTCPMux: true, SRTP: keys,
	}
	ep, err := New(epConn, nil, neg, Options{RTCPInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	p.send([]byte("v6"))
	buf := make([]byte, 1500)
	n, err := ep.ReadRTP(buf)
	if err != nil || string(buf[12:n]) != "v6" {
		t.Fatalf("%v %q", err, buf[:n])
	}
	if err := ep.WriteRTP(rtpPacket(t, 1, 1, 1, []byte("back"))); err != nil {
		t.Fatal(err)
	}
	if got, err := p.recvRTP(waitFor); err != nil || string(got.Payload) != "back" {
		t.Fatalf("%v %q", err, got.Payload)
	}
}
