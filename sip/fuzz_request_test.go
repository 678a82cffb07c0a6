package sip

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// FuzzRequestPath sends each input as a datagram to a real server (sipgo's
// parser, our validation, trust and dispatch, the call handler) and then
// a ping on another socket: the ping's answer proves the server is alive
// and read the input. No handler may panic, and when the run ends no
// dialog or RTP port may be left. Seeds: testdata/fuzz/FuzzRequestPath.
func FuzzRequestPath(f *testing.F) {
	s := newTestServer(f, nil)
	calls(s, func(c *InboundCall) { c.Reject(603, "fuzz") })
	start(f, s)
	f.Cleanup(func() {
		waitNoCalls(f, s)
		if n := s.panics.Load(); n != 0 {
			f.Errorf("%d handler panics", n)
		}
	})
	ap, _ := s.Addr(UDP)
	dst := net.UDPAddrFromAddrPort(ap)
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { src.Close() })
	ping := newRawPeer(f, s, UDP)
	n := 0
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: f\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 65000 {
			return
		}
		if _, err := src.WriteToUDP(data, dst); err != nil {
			t.Skip(err)
		}
		n++
		ping.t = t // the peer was made with f, which a fuzz target must not use
		id := fmt.Sprintf("fuzzping%d", n)
		ping.send(ping.rawRequest("OPTIONS", "", id, nil, nil, ""))
		if _, ok := ping.finalOrNone(id, 5*time.Second); !ok {
			t.Fatal("the server stopped answering")
		}
		if p := s.panics.Load(); p != 0 {
			t.Fatalf("%d handler panics", p)
		}
	})
}

// FuzzStreamFilter feeds the TCP framing filter arbitrary bytes in
// arbitrary chunks: it must never panic, and what it passes on must be
// whole messages sipgo parses.
func FuzzStreamFilter(f *testing.F) {
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\ngarbage"), uint8(7))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nl: 3\r\nContent-Length: 1\r\n\r\nabc"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var st WireStats
		fl := newStreamFilter(&st)
		props := sip.TransportReadProps{Transport: "TCP", LocalAddr: &net.TCPAddr{Port: 1}, RemoteAddr: &net.TCPAddr{Port: 2}}
		step := int(chunk%64) + 1
		var out []byte
		for len(data) > 0 {
			k := min(step, len(data))
			b, err := fl.filter(props, append([]byte(nil), data[:k]...))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 4 || len(bytes.Trim(b, "\r\n")) != 0 {
				out = append(out, b...) // sipgo answers short CRLF keep-alives itself
			}
			data = data[k:]
		}
		par := sip.NewParser().NewSIPStream()
		if len(bytes.Trim(out, "\r\n")) == 0 {
			return
		}
		if err := par.ParseSIPStream(out, func(sip.Message) {}); err != nil && err != sip.ErrParseSipPartial {
			t.Fatalf("filter passed bytes sipgo cannot parse: %v\n%q", err, out)
		}
	})
}
