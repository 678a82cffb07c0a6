package sip

import (
	"net"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// BenchmarkReadFilter is the cost the read filter adds to each message
// read: a datagram is parsed once more (to answer it if sipgo cannot), a
// stream read is framed and each message parsed once more.
func BenchmarkReadFilter(b *testing.B) {
	inv := []byte("INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbench;rport\r\n" +
		"From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: bench\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n" +
		"Contact: <sip:b@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: " + itoa(len(benchOffer)) + "\r\n\r\n" + benchOffer)
	for _, tp := range []string{"UDP", "TCP"} {
		b.Run(tp, func(b *testing.B) {
			var st WireStats
			f := newStreamFilter(&st)
			f.onBad = func(sip.TransportReadProps, []byte) { b.Fatal("valid INVITE refused") }
			p := sip.TransportReadProps{Transport: tp, LocalAddr: &net.TCPAddr{Port: 1}, RemoteAddr: &net.TCPAddr{Port: 2}}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if out, _ := f.filter(p, inv); len(out) != len(inv) {
					b.Fatal("message lost")
				}
			}
		})
	}
}
