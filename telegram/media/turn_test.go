package media

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// onlyTURN returns the session's one TURN allocation once it is allocated.
func onlyTURN(t *testing.T, s *Session) *turnPort {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.turns) != 1 {
		t.Fatalf("%d TURN allocations, want 1", len(s.turns))
	}
	return s.turns[0]
}

// waitFor polls cond (under nothing) until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTURNOwnClient: a relay-only call through the Session's own TURN
// client against pion's TURN server: media flows, every peer the agent
// sent to got a channel that the server confirmed (so data goes as
// ChannelData), and nothing runs per allocation beside the agent's reader
// of the candidate: no allocation goroutine, no pion/turn timers.
// Refreshes of the allocation and of the channels, forced due, are
// answered and rescheduled a full interval ahead, and media still flows.
func TestTURNOwnClient(t *testing.T) {
	srv := newTestTURN(t)
	cfg := Config{ICEServers: []ICEServer{srv}}
	a, b := connectedPair(t, cfg, cfg)
	rb := startReader(b)
	flow(t, a, rb, 0x1234, "turn", 20)
	for _, s := range []*Session{a, b} {
		p := onlyTURN(t, s)
		waitFor(t, "a bound channel", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, peer := range p.peers {
				if peer.bound {
					return true
				}
			}
			return false
		})
	}
	for _, fn := range []string{"media.(*Session).runTURN", "turn/v5/internal/client.", "turn/v5.(*Client)"} {
		if n := goroutinesIn(fn); n != 0 {
			t.Errorf("%d goroutines in %s", n, fn)
		}
	}

	p := onlyTURN(t, a)
	p.mu.Lock()
	now := time.Now()
	p.refresh.due = now
	for _, peer := range p.peers {
		peer.due = now
	}
	p.armLocked(now)
	p.mu.Unlock()
	waitFor(t, "answered refreshes", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.refresh.tries != 0 || time.Until(p.refresh.due) < refreshDelay(p.lifetime)-time.Minute {
			return false
		}
		for _, peer := range p.peers {
			if peer.bound && (peer.tries != 0 || time.Until(peer.due) < turnBindRefresh-time.Minute) {
				return false
			}
		}
		return true
	})
	flow(t, a, rb, 0x1234, "after refresh", 20)
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
}

// TestTURNStaleNonce: a 438 (Stale Nonce) answer to a Refresh takes the
// server's new nonce and sends the Refresh again at once with it (RFC 8489
// §9.2.4).
func TestTURNStaleNonce(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &turnPort{
		url:    &stun.URI{Username: "user", Password: "pass"},
		conn:   conn,
		server: server.LocalAddr().(*net.UDPAddr).AddrPort(),
		log:    testLogger(),
		peers:  map[netip.AddrPort]*turnPeer{},
		realm:  stun.NewRealm("test"),
		nonce:  stun.NewNonce("old"),
	}
	p.integrity = stun.NewLongTermIntegrity("user", "test", "pass")
	p.relayed = netip.MustParseAddrPort("127.0.0.1:5000")
	p.lifetime = 600 * time.Second
	defer p.close()

	p.mu.Lock()
	p.refresh.tries = 1
	p.refresh.tx = [stun.TransactionIDSize]byte{1, 2, 3}
	p.refresh.due = time.Now().Add(time.Hour)
	p.mu.Unlock()
	resp, err := stun.Build(stun.NewType(stun.MethodRefresh, stun.ClassErrorResponse),
		stun.NewTransactionIDSetter([stun.TransactionIDSize]byte{1, 2, 3}),
		stun.ErrorCodeAttribute{Code: stun.CodeStaleNonce, Reason: []byte("Stale Nonce")},
		stun.NewNonce("new"), stun.NewRealm("test"))
	if err != nil {
		t.Fatal(err)
	}
	decoded := &stun.Message{Raw: resp.Raw}
	if err := decoded.Decode(); err != nil {
		t.Fatal(err)
	}
	p.handleResponse(decoded)

	buf := make([]byte, 1500)
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	n, _, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no Refresh resent: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(m); err != nil || nonce.String() != "new" {
		t.Errorf("resent %v with nonce %q (%v), want \"new\"", m.Type, nonce, err)
	}
	if m.Type != turnRefresh {
		t.Errorf("resent %v, want a Refresh", m.Type)
	}
	if err := stun.NewLongTermIntegrity("user", "test", "pass").Check(m); err != nil {
		t.Errorf("resent Refresh fails its integrity: %v", err)
	}
}

// TestTURNXORAddress: our XOR address coding agrees with pion/stun's for
// IPv4 and IPv6 (the XOR key of IPv6 includes the transaction id).
func TestTURNXORAddress(t *testing.T) {
	for _, s := range []string{"192.0.2.7:3478", "[2001:db8::1]:50000"} {
		want := netip.MustParseAddrPort(s)
		m, err := newRequest(turnBind)
		if err != nil {
			t.Fatal(err)
		}
		addXORAddr(m, stun.AttrXORPeerAddress, want)
		var theirs stun.XORMappedAddress
		if err := theirs.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
			t.Fatal(err)
		}
		if got := theirs.String(); got != want.String() {
			t.Errorf("pion decodes ours as %s, want %s", got, want)
		}
		m2, err := newRequest(turnBind)
		if err != nil {
			t.Fatal(err)
		}
		pion := stun.XORMappedAddress{IP: want.Addr().AsSlice(), Port: int(want.Port())}
		if err := pion.AddToAs(m2, stun.AttrXORRelayedAddress); err != nil {
			t.Fatal(err)
		}
		if got, ok := xorAddr(m2, stun.AttrXORRelayedAddress); !ok || got != want {
			t.Errorf("we decode pion's as %s %v, want %s", got, ok, want)
		}
	}
}
