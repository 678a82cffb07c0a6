package rtpendpoint

import (
	"net/netip"

	"github.com/pion/srtp/v3"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip/sdp"
)

// TestDropsCounted: malformed, short, unauthenticated, replayed and
// wrong-MKI packets from the peer's own address are dropped and counted by
// reason, and the stream goes on (each bad packet is followed by a good
// one, which must be the next thing ReadRTP returns).
func TestDropsCounted(t *testing.T) {
	keys := newKeys(t, sdp.AESCM128HMACSHA180, true)
	pr := newPair(t, keys, true, Options{}, nil)
	r := startReader(t, pr.ep)
	p := pr.peer

	good := func(what string) {
		t.Helper()
		want := p.send([]byte(what))
		got, err := r.next(waitFor)
		if err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
		if got.SequenceNumber != uint16(want[2])<<8|uint16(want[3]) {
			t.Fatalf("after %s: got seq %d", what, got.SequenceNumber)
		}
	}
	bad := func(b []byte) { p.sendRaw(p.conn, b) }

	good("start")
	valid := p.protect(p.packet([]byte("valid")))
	bad(valid[:0])                            // empty
	bad([]byte{0x80})                         // 1 byte
	bad(valid[:11])                           // shorter than a header
	bad(append([]byte{0x40}, valid[1:]...))   // version 1
	bad(append([]byte{0x8f}, valid[1:20]...)) // 15 CSRCs announced, 20 bytes
	bad(append([]byte{0x90}, valid[1:14]...)) // extension header cut
	good("after malformed")
	tampered := append([]byte(nil), valid...)
	tampered[14] ^= 1
	bad(tampered)             // payload changed
	bad(valid[:len(valid)-1]) // tag cut by one byte
	bad(valid[:14])           // header + 2 bytes: shorter than tag+MKI
	wrongMKI := append([]byte(nil), valid...)
	wrongMKI[len(wrongMKI)-10-1] ^= 0xff // last MKI byte
	bad(wrongMKI)
	good("after unauthenticated")
	bad(valid)      // valid once ...
	r.next(waitFor) //nolint:errcheck // ... delivered
	bad(valid)      // ... then a replay
	good("after replay")
	bad([]byte{0x80, 200, 0, 1, 0, 0, 0, 0}) // SRTCP without tag
	longRR, err := p.txc.EncryptRTCP(nil, []byte{0x80, 201, 0xff, 0xff, 1, 2, 3, 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad(longRR) // authentic SRTCP, RTCP length beyond the packet
	good("after bad RTCP")

	s := pr.ep.Stats()
	rs := s.Received
	if rs.Malformed != 7 || rs.AuthFailures != 3 || rs.Replayed != 1 || rs.WrongSource != 0 {
		t.Fatalf("drops: malformed=%d auth=%d replayed=%d wrong=%d", rs.Malformed, rs.AuthFailures, rs.Replayed, rs.WrongSource)
	}
	if s.RTCPErrors != 2 || s.RTCPReceived != 0 {
		t.Fatalf("RTCP errors=%d received=%d", s.RTCPErrors, s.RTCPReceived)
	}
}

// TestWriteRejectsNonRTP: WriteRTP refuses what is not RTP, with an error.
func TestWriteRejectsNonRTP(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AEADAES256GCM, false), true, Options{}, nil)
	for _, b := range [][]byte{nil, {0x80, 0}, make([]byte, 12), {0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if err := pr.ep.WriteRTP(b); err == nil {
			t.Fatalf("WriteRTP(%x) accepted", b)
		}
	}
	if n := pr.ep.Stats().Sent.Errors; n != 4 {
		t.Fatalf("Errors=%d", n)
	}
}

// FuzzReceive feeds arbitrary datagrams to the receive path (RTP and RTCP,
// from the peer's address and from elsewhere) of an SRTP, a plain and a
// latching endpoint: nothing may panic, and whatever ReadRTP would return
// must fit the caller's buffer.
func FuzzReceive(f *testing.F) {
	keys := &sdp.SRTPKeys{
		Profile:  srtp.ProtectionProfileAes128CmHmacSha1_80,
		LocalKey: make([]byte, 16), LocalSalt: make([]byte, 14),
		RemoteKey: make([]byte, 16), RemoteSalt: make([]byte, 14),
	}
	pr := newPair(f, keys, true, Options{}, nil)
	plain := newPair(f, nil, false, Options{}, nil)
	latch := newPair(f, keys, false, Options{Latch: true}, nil)
	p := pr.peer
	f.Add(p.protect(p.packet([]byte("seed"))), true)
	f.Add(p.packet([]byte("plain")), true)
	f.Add([]byte{0x80, 0xc8, 0, 1, 0, 0, 0, 1}, true)
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}, false)
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff}, true)
	sr := []byte{0x81, 200, 0, 12, 0, 0, 0, 1}
	sr = append(sr, make([]byte, 20+24)...)
	f.Add(sr, true)
	if srtcp, err := p.txc.EncryptRTCP(nil, sr, nil); err == nil {
		f.Add(srtcp, true)
	}
	stranger := netip.MustParseAddrPort("127.0.0.9:4000")
	buf := make([]byte, 1500)
	f.Fuzz(func(t *testing.T, pkt []byte, fromPeer bool) {
		for _, x := range []*pair{pr, plain, latch} {
			src := stranger
			if fromPeer {
				src = addrOf(x.peer.conn)
			}
			n, err := x.ep.receive(pkt, src, buf, time.Now())
			if err == nil && n > len(buf) {
				t.Fatalf("n=%d", n)
			}
			x.ep.receiveRTCP(pkt, src, false, time.Now())
		}
	})
}
