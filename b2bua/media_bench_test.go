package b2bua

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/tgcall"

	"github.com/tgsip/tgsip/internal/cputime"
)

// benchWindow is how many packets the benchmarks keep in flight: enough to
// keep the bridge busy, few enough that no loopback socket buffer
// overflows.
const benchWindow = 16

// BenchmarkMediaForward is one Opus packet forwarded through a passthrough
// bridge over loopback between the real legs: the SIP peer's SRTP
// (AES_CM_128_HMAC_SHA1_80) into sip/rtpendpoint, rtpbridge's rewrite, and
// tgcall.Conn's DTLS-SRTP toward the emulated Telegram user (and the
// reverse). A window of benchWindow packets is kept in flight.
//
// cpu-ns/pkt is the whole process's CPU time (getrusage) per packet: the
// trunk's two legs and the bridge, but also the far ends the benchmark plays
// (SRTP protect and send by the SIP peer, receive and DTLS-SRTP unprotect by
// the Telegram user, or the reverse) and the idle emulator. allocs/op
// counts the same whole process.
func BenchmarkMediaForward(b *testing.B) {
	b.Run("sip-to-telegram", func(b *testing.B) { benchForward(b, true) })
	b.Run("telegram-to-sip", func(b *testing.B) { benchForward(b, false) })
}

func benchForward(b *testing.B, fromSIP bool) {
	out, in := connectTG(b, mediaTrunk, mediaUser)
	peer, neg := newSIPPeer(b, sdp.Codec{Name: sdp.Opus, PayloadType: 107, ClockRate: 48000, Channels: 2}, sdp.AESCM128HMACSHA180)
	ep := newSIPEndpoint(b, peer, neg)
	startMedia(b, out, in, ep, neg, MediaOptions{Logger: testLogger()})
	userConn := in.Conn()

	credits := make(chan struct{}, benchWindow)
	for range benchWindow {
		credits <- struct{}{}
	}
	var stop atomic.Bool
	recvDone := make(chan error, 1)
	// The receiver hands a credit back per packet; once stop is set, the
	// next packet ends it.
	receive := func(read func() error) {
		for {
			if err := read(); err != nil {
				recvDone <- err
				return
			}
			if stop.Load() {
				recvDone <- nil
				return
			}
			select {
			case credits <- struct{}{}:
			default: // silence the bridge filled in, not ours
			}
		}
	}
	payload := make([]byte, 100) // a 20 ms Opus frame at 40 kbit/s
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var send func(seq uint16) error
	if fromSIP {
		plain, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: peer.pt, SSRC: 0x5151}, Payload: payload}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		wire := make([]byte, 0, 1500)
		var hdr rtp.Header
		send = func(seq uint16) error {
			setSeqTS(plain, seq, 960)
			enc, err := peer.tx.EncryptRTP(wire[:0], plain, &hdr)
			if err != nil {
				return err
			}
			_, err = peer.conn.WriteToUDPAddrPort(enc, peer.ep)
			return err
		}
		buf := make([]byte, 1500)
		go receive(func() error { _, err := userConn.ReadRTP(buf); return err })
	} else {
		au := userConn.Audio()
		plain, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: au.PayloadType, SSRC: au.SSRC}, Payload: payload}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		send = func(seq uint16) error {
			setSeqTS(plain, seq, 960)
			return userConn.WriteRTP(plain)
		}
		// The user's media must be read for its DTLS and RTCP; what the
		// bridge sends toward it here is only silence fill.
		go drainConn(userConn)
		buf, dec := make([]byte, 1500), make([]byte, 1500)
		var hdr rtp.Header
		go receive(func() error {
			for {
				n, _, err := peer.conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return err
				}
				if n >= 2 && (buf[1] < 192 || buf[1] > 223) { // not RTCP (RFC 5761 §4)
					_, err = peer.rx.DecryptRTP(dec, buf[:n], &hdr)
					return err
				}
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var seq uint16
	b.ReportAllocs()
	cpu0 := cputime.Process()
	n := 0
	for b.Loop() {
		select {
		case <-credits:
		case err := <-recvDone:
			b.Fatalf("receiver ended: %v", err)
		case <-ctx.Done():
			b.Fatalf("no packet back after %d: lost on loopback?", n)
		}
		seq++
		if err := send(seq); err != nil {
			b.Fatal(err)
		}
		n++
	}
	// Every packet of the window has arrived.
	for range benchWindow {
		select {
		case <-credits:
		case <-ctx.Done():
			b.Fatal("window not returned")
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(n), "cpu-ns/pkt")
	stop.Store(true)
	seq++
	if err := send(seq); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-recvDone:
		if err != nil {
			b.Fatal(err)
		}
	case <-ctx.Done():
		b.Fatal("receiver did not end")
	}
}

// setSeqTS writes sequence number seq and timestamp seq*ticks into a plain
// RTP packet's fixed header (RFC 3550 §5.1).
func setSeqTS(p []byte, seq uint16, ticks uint32) {
	p[2], p[3] = byte(seq>>8), byte(seq)
	ts := uint32(seq) * ticks
	p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
}

// drainConn reads a Conn until its call ends.
func drainConn(c *tgcall.Conn) {
	buf := make([]byte, 1500)
	for {
		if _, err := c.ReadRTP(buf); err != nil {
			return
		}
	}
}
