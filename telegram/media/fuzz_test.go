package media

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tgsip/tgsip/telegram/wire"
)

func TestParseCandidate(t *testing.T) {
	tests := []struct {
		in   string
		want candidateLine
		err  bool
	}{
		{in: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EsAw network-id 1 network-cost 10",
			want: candidateLine{Foundation: "842163049", Component: 1, Protocol: "udp", Priority: 1677729535, Address: "203.0.113.7", Port: 46154, Type: "srflx", RelAddr: "10.0.0.2", RelPort: 46154, Ufrag: "EsAw"}},
		{in: "1 1 UDP 2130706431 127.0.0.1 5000 typ host",
			want: candidateLine{Foundation: "1", Component: 1, Protocol: "udp", Priority: 2130706431, Address: "127.0.0.1", Port: 5000, Type: "host"}},
		{in: "a=candidate:3 1 udp 33562367 reflector-2-1234567.reflector 596 typ relay generation 0",
			want: candidateLine{Foundation: "3", Component: 1, Protocol: "udp", Priority: 33562367, Address: "reflector-2-1234567.reflector", Port: 596, Type: "relay"}},
		{in: "candidate:1 1 udp 1 1.2.3.4 70000 typ host", err: true},
		{in: "candidate:1 1 udp 1 1.2.3.4 7 type host", err: true},
		{in: "candidate:1 1 udp 1 1.2.3.4 7 typ bogus", err: true},
		{in: "candidate:1 0 udp 1 1.2.3.4 7 typ host", err: true},
		{in: "candidate:1 1 udp 1 1.2.3.4 7 typ host generation", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := parseCandidate(tt.in)
		if (err != nil) != tt.err {
			t.Fatalf("%q: err = %v", tt.in, err)
		}
		if !tt.err && got != tt.want {
			t.Fatalf("%q:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseCandidate(f *testing.F) {
	for _, s := range []string{
		"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EsAw network-id 1",
		"candidate:3 1 udp 33562367 reflector-2-1234567.reflector 596 typ relay generation 0",
		"1 1 tcp 1 ::1 9 typ host tcptype passive",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCandidate(s)
		if err != nil {
			return
		}
		if c.Foundation == "" || c.Component == 0 || c.Address == "" {
			t.Fatalf("accepted incomplete candidate %+v", c)
		}
		switch c.Type {
		case "host", "srflx", "prflx", "relay":
		default:
			t.Fatalf("type %q", c.Type)
		}
		if id, tag, err := wire.ParseReflectorHostname(c.Address); err == nil && wire.ReflectorHostname(id, tag) != c.Address {
			t.Fatalf("reflector host %q does not round-trip", c.Address)
		}
	})
}

// FuzzReflectorUnwrap feeds arbitrary datagrams to the reflector port's
// unwrap step: it must never panic, never accept another call's tag, keep
// the payload inside the datagram, and round-trip what a peer wrapped.
func FuzzReflectorUnwrap(f *testing.F) {
	var own wire.Tag
	copy(own[:], []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(wire.AppendReflectorData(nil, own, 7, 9, []byte("hello")))
	f.Add(wire.AppendHello(nil, own))
	f.Add(own[:])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, _, data := unwrapReflector(b, own)
		if kind != reflectorInvalid && !bytes.Equal(b[:12], own[:12]) {
			t.Fatal("accepted a foreign call tag")
		}
		if kind == reflectorData && len(data) > len(b)-24 {
			t.Fatalf("payload of %d bytes in a %d-byte datagram", len(data), len(b))
		}
		if len(b) == 0 {
			return // nothing to wrap: a 24-byte datagram is a keepalive, as in tgcalls
		}
		w := wire.AppendReflectorData(nil, own, 5, 6, b)
		k, sender, got := unwrapReflector(w, own)
		if k != reflectorData || sender != 6 || !bytes.Equal(got, b) {
			t.Fatalf("round trip: kind=%d sender=%d payload=%x want %x", k, sender, got, b)
		}
	})
}

func TestReflectorPortRefusesOtherAddresses(t *testing.T) {
	ref := newTestReflector(t)
	conn, err := listenUDP(&Transport{}, ref.addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newReflectorPort(Reflector{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}, conn)
	defer func() { _ = p.Close() }()
	other := netip.AddrPortFrom(ref.addr.Addr(), ref.addr.Port()+1)
	if _, err := p.WriteToAddrPort([]byte("x"), other); err != errNotReflector {
		t.Fatalf("write to a non-reflector address: %v", err)
	}
	if _, err := p.WriteToAddrPort([]byte("x"), ref.addr); err != errNoRemoteTag {
		t.Fatalf("write without a remote tag: %v", err)
	}
	p.remoteTag.Store(42)
	if _, err := p.WriteToAddrPort([]byte("x"), ref.addr); err != nil {
		t.Fatal(err)
	}
}
