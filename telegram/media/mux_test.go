package media

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
)

// sharedTransport is a loopback Transport on a new shared port; its
// calls' logs go through mis.
func sharedTransport(t *testing.T, mis *misrouted) (*Transport, *sharedMux) {
	t.Helper()
	mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closer.Close() })
	tr := loopbackTransport()
	tr.UDPMux = mux
	tr.Logger = slog.New(mis)
	return tr, mux.(*sharedMux)
}

// misrouted counts pion's warnings about a connectivity check or answer
// that reached an agent it was not meant for: a request for another ufrag,
// a response under another call's password. The shared port handed it to
// the wrong call. Everything is passed on to testLogger.
type misrouted struct {
	n    *atomic.Int64
	next slog.Handler
}

func newMisrouted() *misrouted {
	return &misrouted{n: new(atomic.Int64), next: testLogger().Handler()}
}

func (h *misrouted) Enabled(context.Context, slog.Level) bool { return true }

func (h *misrouted) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "wrong username") || strings.Contains(r.Message, "broken integrity") {
		h.n.Add(1)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *misrouted) WithAttrs(as []slog.Attr) slog.Handler {
	return &misrouted{n: h.n, next: h.next.WithAttrs(as)}
}

func (h *misrouted) WithGroup(name string) slog.Handler {
	return &misrouted{n: h.n, next: h.next.WithGroup(name)}
}

// only drains r for a moment and fails on a packet of another SSRC than
// ssrc, or one that is not RTP.
func only(t *testing.T, r *reader, ssrc uint32) {
	t.Helper()
	deadline := time.After(50 * time.Millisecond)
	for {
		select {
		case b := <-r.pkts:
			var h rtp.Header
			if _, err := h.Unmarshal(b); err != nil || h.SSRC != ssrc {
				t.Fatalf("packet of SSRC %#x (err %v) where only %#x flows", h.SSRC, err, ssrc)
			}
		case <-deadline:
			return
		}
	}
}

// checkPair checks a connected pair a-b: media both ways carries only its
// own SSRCs, nothing failed SRTP authentication, and the pair is relayed
// when relayed is set.
func checkPair(t *testing.T, a, b *Session, ra, rb *reader, id int, relayed bool) {
	t.Helper()
	sa, sb := uint32(0x1000+id), uint32(0x2000+id)
	tag := "pair" + strconv.Itoa(id)
	for _, p := range flow(t, a, rb, sa, tag+"a", 10) {
		if p.SSRC != sa {
			t.Fatalf("pair %d: b got SSRC %#x with a's payload", id, p.SSRC)
		}
	}
	for _, p := range flow(t, b, ra, sb, tag+"b", 10) {
		if p.SSRC != sb {
			t.Fatalf("pair %d: a got SSRC %#x with b's payload", id, p.SSRC)
		}
	}
	only(t, rb, sa)
	only(t, ra, sb)
	for _, s := range []*Session{a, b} {
		st := s.Stats()
		if st.SRTPAuthFailures != 0 {
			t.Fatalf("pair %d: %d SRTP authentication failures (another call's media)", id, st.SRTPAuthFailures)
		}
		if relayed && !st.Relayed {
			t.Fatalf("pair %d: not relayed: %+v", id, st)
		}
	}
}

// A call between two accounts on the same shared port: each end's remote
// host candidate is the port itself, and a datagram from the port to the
// port cannot say which of the two calls it is for. The host pair is not
// used (writes to the port's own address are dropped); the call connects
// through the reflector and media flows both ways.
func TestSharedPortSelfCall(t *testing.T) {
	mis := newMisrouted()
	tr, m := sharedTransport(t, mis)
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	cfg := Config{Transport: tr, P2PAllowed: true, Reflectors: refl}
	a, b := connectedPair(t, cfg, cfg)
	ra, rb := startReader(a), startReader(b)
	checkPair(t, a, b, ra, rb, 1, true)
	if n := mis.n.Load(); n != 0 {
		t.Fatalf("%d checks or answers reached the other call", n)
	}
	if m.conflicts.Load() == 0 {
		t.Fatal("no write to the port's own address was refused")
	}
	if ref.forwarded.Load() == 0 {
		t.Fatal("nothing went through the reflector")
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
}

// Two concurrent calls between the same two shared ports (two trunks
// talking p2p): both calls' remote host address is the other port. At most
// one of them may use the host pair; the other goes through its relay
// (a reflector for one, TURN for the other), and each call carries only
// its own media.
func TestSharedPortsTwoCallsSameAddresses(t *testing.T) {
	mis := newMisrouted()
	trA, mA := sharedTransport(t, mis)
	trB, mB := sharedTransport(t, mis)
	ref := newTestReflector(t)
	turn := newTestTURN(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	relays := []func(*Config){
		func(c *Config) { c.Reflectors = refl },
		func(c *Config) { c.ICEServers = []ICEServer{turn} },
	}
	type pair struct{ a, b *Session }
	pairs := make([]pair, len(relays))
	for i, relay := range relays {
		ca := Config{Transport: trA, Outgoing: true, P2PAllowed: true}
		cb := Config{Transport: trB, P2PAllowed: true}
		relay(&ca)
		relay(&cb)
		pairs[i] = pair{newSession(t, ca), newSession(t, cb)}
		link(t, pairs[i].a, pairs[i].b)
	}
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handshake(t, p.a, p.b)
		}()
	}
	wg.Wait()
	hostPairs := 0
	for i, p := range pairs {
		waitConnected(t, p.a, p.b)
		ra, rb := startReader(p.a), startReader(p.b)
		checkPair(t, p.a, p.b, ra, rb, i, false)
		if !p.a.Stats().Relayed {
			hostPairs++
		}
		defer func() {
			_ = p.a.Close()
			_ = p.b.Close()
			ra.wait(t)
			rb.wait(t)
		}()
	}
	if hostPairs > 1 {
		t.Fatalf("%d calls on the host pair between the same two addresses", hostPairs)
	}
	if n := mis.n.Load(); n != 0 {
		t.Fatalf("%d checks or answers reached the other call", n)
	}
	if mA.conflicts.Load()+mB.conflicts.Load() == 0 {
		t.Fatal("no write to another call's address was refused")
	}
}

// The rule itself: a remote address belongs to the first call that writes
// to it (or learns it from a check) until that call leaves the port; the
// other calls' writes there, and every write to the port's own address,
// are dropped and counted; a check from an owned address naming another
// call does not move the address either.
func TestSharedMuxClaim(t *testing.T) {
	mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer.Close() }()
	m := mux.(*sharedMux)
	conn := func(ufrag string) *muxHandle {
		c, err := m.GetConn(ufrag, m.laddr)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*muxHandle)
	}
	one, two := conn("one"), conn("two")
	defer func() { _ = two.Close() }()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	self := m.laddr.AddrPort()
	for _, w := range []struct {
		h    *muxHandle
		to   netip.AddrPort
		data string
	}{{one, pa, "one"}, {two, pa, "two"}, {one, self, "self1"}, {two, self, "self2"}} {
		if n, err := w.h.WriteToAddrPort([]byte(w.data), w.to); err != nil || n != len(w.data) {
			t.Fatalf("write %q: %d, %v", w.data, n, err)
		}
	}
	// The peer got the first call's datagram only.
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var got []string
	for {
		n, err := peer.Read(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
	}
	if len(got) != 1 || got[0] != "one" {
		t.Fatalf("the peer got %q, want only the first call's datagram", got)
	}
	if c := m.conflicts.Load(); c != 3 {
		t.Fatalf("conflicts = %d, want 3", c)
	}
	// What the peer sends goes to the first call, a check naming it too;
	// a check naming the second call goes to neither (the address stays
	// the first's); nothing came from the port itself.
	m.route(stunRequest(t, "two:peer"), pa)
	m.route(stunRequest(t, "one:peer"), pa)
	m.route([]byte{0x80, 111, 0, 1}, pa)
	if u := m.unrouted.Load(); u != 1 {
		t.Fatalf("unrouted = %d, want 1 (the check naming the second call)", u)
	}
	for _, w := range []struct {
		c    *muxConn
		want int
	}{{one.muxConn, 2}, {two.muxConn, 0}} {
		w.c.qmu.Lock()
		n := w.c.n
		w.c.qmu.Unlock()
		if n != w.want {
			t.Fatalf("call %q has %d datagrams queued, want %d", w.c.ufrag, n, w.want)
		}
	}
	// Once the first call leaves the port the address is free again.
	_ = one.Close()
	if _, err := two.WriteToAddrPort([]byte("two"), pa); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(testTimeout))
	if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "two" {
		t.Fatalf("after the first call left: %q, %v", buf[:n], err)
	}
	if c := m.conflicts.Load(); c != 3 {
		t.Fatalf("conflicts = %d, want 3", c)
	}
}

func stunRequest(t *testing.T, username string) []byte {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// A port bound to the unspecified address is its port on loopback and on
// every address it announces; bound to one address, that address only.
func TestSharedMuxOwnAddress(t *testing.T) {
	for _, tc := range []struct {
		bind string
		own  func(port uint16, listen []net.Addr) []netip.AddrPort
	}{
		{"0.0.0.0:0", func(port uint16, listen []net.Addr) []netip.AddrPort {
			out := []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)}
			for _, a := range listen {
				out = append(out, a.(*net.UDPAddr).AddrPort())
			}
			return out
		}},
		{"127.0.0.1:0", func(port uint16, _ []net.Addr) []netip.AddrPort {
			return []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}
		}},
	} {
		mux, closer, err := NewSharedPort(tc.bind, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		m := mux.(*sharedMux)
		port := uint16(m.laddr.Port)
		for _, a := range tc.own(port, m.GetListenAddresses()) {
			if !m.isOwn(a) {
				t.Errorf("%s: %v is not the port's own", tc.bind, a)
			}
			if m.isOwn(netip.AddrPortFrom(a.Addr(), port+1)) {
				t.Errorf("%s: %v:%d is the port's own", tc.bind, a.Addr(), port+1)
			}
		}
		if tc.bind == "127.0.0.1:0" && m.isOwn(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)) {
			t.Errorf("%s: another loopback address is the port's own", tc.bind)
		}
		_ = closer.Close()
	}
}
