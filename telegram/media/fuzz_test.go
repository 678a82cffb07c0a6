package media

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"

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

// FuzzTURNIn feeds arbitrary datagrams from a TURN server to what the
// Session's own TURN client parses (turn.go): ChannelData framing must keep
// its data inside the datagram at the declared length; a STUN message's
// XOR address must read as pion/stun reads it; LIFETIME must not panic.
func FuzzTURNIn(f *testing.F) {
	f.Add([]byte{0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0})
	f.Add([]byte{0x40, 0x01, 0x00, 0x09, 'a'})
	ok := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse),
		&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 7), Port: 4242}, stun.Fingerprint)
	f.Add(ok.Raw)
	v6 := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse),
		&stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 1})
	f.Add(v6.Raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		if channel, data, isCD := channelData(b); isCD {
			if channel>>14 != 1 {
				t.Fatalf("channel %#x taken as ChannelData", channel)
			}
			if data != nil && (len(data) != int(b[2])<<8|int(b[3]) || len(data) > len(b)-4) {
				t.Fatalf("%d bytes of data from a %d-byte datagram declaring %d", len(data), len(b), int(b[2])<<8|int(b[3]))
			}
			return
		}
		if !stun.IsMessage(b) {
			return
		}
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if m.Decode() != nil {
			return
		}
		_ = lifetimeOf(m)
		ours, okOurs := xorAddr(m, stun.AttrXORMappedAddress)
		var theirs stun.XORMappedAddress
		if theirs.GetFrom(m) != nil || !okOurs {
			return
		}
		want, _ := netip.AddrFromSlice(theirs.IP)
		if ours.Addr() != want.Unmap() || int(ours.Port()) != theirs.Port {
			t.Fatalf("XOR address %v, pion/stun reads %v:%d", ours, theirs.IP, theirs.Port)
		}
	})
}

// FuzzRequestUfrag feeds arbitrary datagrams to the shared port's reading
// of a binding request's USERNAME (mux.go), which routes a datagram from a
// new address to its call: only binding requests yield a ufrag, it is the
// part of USERNAME before the first colon, and a request we build with
// "local:remote" gives back local.
func FuzzRequestUfrag(f *testing.F) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewUsername("abcd:efgh"), stun.Fingerprint)
	f.Add(req.Raw, "abcd")
	f.Add([]byte{0, 1, 0, 0}, "x")
	f.Fuzz(func(t *testing.T, b []byte, local string) {
		if ufrag, ok := requestUfrag(b); ok {
			if !isBindingRequest(b) {
				t.Fatal("a ufrag from a datagram that is not a binding request")
			}
			m := &stun.Message{Raw: append([]byte(nil), b...)}
			var user stun.Username
			if m.Decode() != nil || user.GetFrom(m) != nil || !bytes.HasPrefix([]byte(user), []byte(ufrag+":")) {
				t.Fatalf("ufrag %q is not USERNAME's part before its first colon", ufrag)
			}
			if bytes.IndexByte([]byte(ufrag), ':') >= 0 {
				t.Fatalf("ufrag %q holds a colon", ufrag)
			}
		}
		if bytes.IndexByte([]byte(local), ':') >= 0 {
			return
		}
		r, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(local+":remote"))
		if err != nil {
			return // too long for a STUN attribute
		}
		if got, ok := requestUfrag(r.Raw); !ok || got != local {
			t.Fatalf("request with USERNAME %q: ufrag %q, %v", local+":remote", got, ok)
		}
	})
}
