package sip

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// benchInvite is a plain INVITE with an SDP offer, as a PBX sends it.
func benchInvite() []byte {
	return []byte("INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbench;rport\r\n" +
		"From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: bench\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n" +
		"Contact: <sip:b@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: " + itoa(len(benchOffer)) + "\r\n\r\n" + benchOffer)
}

// filterProps are the read properties of a message of transport tp.
func filterProps(tp string) sip.TransportReadProps {
	if tp == "UDP" {
		return sip.TransportReadProps{Transport: tp, LocalAddr: &net.UDPAddr{Port: 1}, RemoteAddr: &net.UDPAddr{Port: 2}}
	}
	return sip.TransportReadProps{Transport: tp, LocalAddr: &net.TCPAddr{Port: 1}, RemoteAddr: &net.TCPAddr{Port: 2}}
}

// newBenchFilter is the server's read filter with its UDP watch.
func newBenchFilter(onBad func(sip.TransportReadProps, []byte)) *streamFilter {
	var st WireStats
	f := newStreamFilter(&st)
	f.onBad = onBad
	f.udp = newUDPWatch(onBad)
	return f
}

// BenchmarkReadFilter is the cost the read filter adds to each message
// read: a datagram is copied aside (sipgo's own parse failure is answered
// from that copy, udpwatch.go), a stream read is framed and each message
// parsed once more.
func BenchmarkReadFilter(b *testing.B) {
	inv := benchInvite()
	for _, tp := range []string{"UDP", "TCP"} {
		b.Run(tp, func(b *testing.B) {
			f := newBenchFilter(func(sip.TransportReadProps, []byte) { b.Fatal("valid INVITE refused") })
			p := filterProps(tp)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if out, _ := f.filter(p, inv); len(out) != len(inv) {
					b.Fatal("message lost")
				}
			}
		})
	}
}

// TestUDPFilterDoesNotParse: the UDP read filter leaves parsing to sipgo
// (once per datagram) and allocates nothing.
func TestUDPFilterDoesNotParse(t *testing.T) {
	inv := benchInvite()
	f := newBenchFilter(func(sip.TransportReadProps, []byte) { t.Fatal("valid INVITE refused") })
	p := filterProps("UDP")
	if n := testing.AllocsPerRun(100, func() { f.filter(p, inv) }); n != 0 {
		t.Fatalf("%v allocations per datagram, want 0", n)
	}
}

// TestUDPWatchAnswersParseFailure: a parse failure reported on sipgo's
// transport logger is matched with the datagram the filter remembered,
// on the right socket, and handed to onBad once.
func TestUDPWatchAnswersParseFailure(t *testing.T) {
	type bad struct {
		p    sip.TransportReadProps
		data string
	}
	var got []bad
	f := newBenchFilter(func(p sip.TransportReadProps, data []byte) { got = append(got, bad{p, string(data)}) })
	var logged strings.Builder
	next := slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo})
	log := slog.New(parseFailHook{next: next, watch: f.udp}).With("caller", "Transport<UDP>")
	a, b := filterProps("UDP"), filterProps("UDP") // two sockets
	good, broken := benchInvite(), []byte("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: garbage\r\n\r\n")
	f.filter(a, good)
	// sipgo parses (and logs) what the filter returned: an INVITE with its
	// read time (overload.go).
	out, _ := f.filter(b, broken)
	broken = append([]byte(nil), out...)
	log.Error(sipgoParseFailed, "data", string(broken), "error", "x")
	log.Error(sipgoParseFailed, "data", string(broken), "error", "x") // no second answer
	log.Error("something else", "data", string(good))
	if len(got) != 1 || got[0].data != string(broken) || got[0].p.LocalAddr != b.LocalAddr {
		t.Fatalf("onBad got %+v, want the broken datagram of the second socket once", got)
	}
	// The answered failure is not logged at error level (anyone can send
	// garbage); the unmatched one and other records still are.
	if n := strings.Count(logged.String(), "level=ERROR"); n != 2 {
		t.Fatalf("%d error lines, want 2 (the unmatched repeat, the other record):\n%s", n, logged.String())
	}
}

// BenchmarkValidateRequest is the cost of the RFC 3261 §8.2 checks on a
// plain INVITE as sipgo parsed it.
func BenchmarkValidateRequest(b *testing.B) {
	m, err := sip.ParseMessage(benchInvite())
	if err != nil {
		b.Fatal(err)
	}
	req := m.(*sip.Request)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if r := validateRequest(req); r.status != 0 {
			b.Fatal(r.why)
		}
	}
}
