package media

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/tgsip/tgsip/internal/stacks"
)

// TestOversizeDatagramDropped: a datagram larger than maxDatagram on the
// selected path, whole or truncated by the kernel to the read buffer, is
// dropped and counted before decryption, and packets after it still flow.
func TestOversizeDatagramDropped(t *testing.T) {
	a, b := connectedPair(t, Config{P2PAllowed: true}, Config{P2PAllowed: true})
	// A reader with room for more than maxDatagram, so that its buffer
	// is not what refuses the datagram.
	rb := &reader{pkts: make(chan []byte, 1024), done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		buf := make([]byte, 4*maxDatagram)
		for {
			n, err := b.ReadRTP(buf)
			if err != nil {
				if b.Err() != nil {
					return
				}
				continue
			}
			select {
			case rb.pkts <- append([]byte(nil), buf[:n]...):
			default:
			}
		}
	}()
	flow(t, a, rb, 0x1234, "warm", 5) // b's reader owns its socket now
	r := a.route.Load()
	if r == nil || r.conn == nil {
		t.Fatalf("no direct route: %+v", r)
	}
	dropped, authFailures := b.st.dropped.Load(), b.st.authFailures.Load()
	for _, size := range []int{maxDatagram + 1, datagramBuf + 100} {
		big := make([]byte, size)
		big[0], big[1] = 0x80, 111 // looks like RTP (RFC 7983)
		if err := r.conn.writeDirect(big, r.remote); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for b.st.dropped.Load()-dropped < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d of 2 oversize datagrams", b.st.dropped.Load()-dropped)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.st.authFailures.Load() - authFailures; n != 0 {
		t.Errorf("%d oversize datagrams reached decryption", n)
	}
	flow(t, a, rb, 0x1234, "after", 5)

	// WriteRTP refuses what would not fit a datagram once protected.
	if err := a.WriteRTP(rtpPacket(t, 0x1234, 1, make([]byte, maxWriteRTP))); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("WriteRTP of %d bytes: %v, want io.ErrShortBuffer", maxWriteRTP+12, err)
	}
	if err := a.WriteRTP(rtpPacket(t, 0x1234, 2, make([]byte, maxWriteRTP-12))); err != nil {
		t.Errorf("WriteRTP of %d bytes: %v", maxWriteRTP, err)
	}
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
}

// TestTransportSharesInterfaces: the calls of one Transport gather from one
// interface list, not a netlink dump each.
func TestTransportSharesInterfaces(t *testing.T) {
	tr := loopbackTransport()
	a, b := newSession(t, Config{Transport: tr}), newSession(t, Config{Transport: tr})
	if a.net.Net != b.net.Net {
		t.Error("two calls of one Transport read the interfaces twice")
	}
	if c := newSession(t, Config{Transport: loopbackTransport()}); c.net.Net == a.net.Net {
		t.Error("two Transports share an interface list")
	}
}

// newTestTURN runs a TURN server (pion/turn) on 127.0.0.1 that relays on
// 127.0.0.1, and returns it as a configured ICE server.
func newTestTURN(t testing.TB) ICEServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const user, pass, realm = "user", "pass", "test"
	key := turn.GenerateAuthKey(user, realm, pass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return user, key, ra.Username == user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return ICEServer{URL: "turn:" + pc.LocalAddr().String() + "?transport=udp", Username: user, Password: pass}
}

// goroutinesIn counts goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	return bytes.Count(stacks.All(), []byte(fn))
}

// TestTURNRelayOnly: with P2P not allowed and no reflectors the call
// connects through a TURN allocation the Session made itself (turn.go),
// read into a datagram-sized buffer, not by pion/turn's Client.Listen and
// its 64 KiB buffer.
func TestTURNRelayOnly(t *testing.T) {
	srv := newTestTURN(t)
	cfg := Config{ICEServers: []ICEServer{srv}}
	a, b := connectedPair(t, cfg, cfg)
	rb := startReader(b)
	flow(t, a, rb, 0x1234, "turn", 20)
	for _, s := range []*Session{a, b} {
		st := s.Stats()
		if st.LocalCandidateType != "relay" || !st.Relayed {
			t.Errorf("not relayed through TURN: %+v", st)
		}
		s.mu.Lock()
		n := len(s.turns)
		s.mu.Unlock()
		if n != 1 {
			t.Errorf("%d TURN allocations made by the session, want 1", n)
		}
	}
	if n := goroutinesIn("turn/v5.(*Client).Listen"); n != 0 {
		t.Errorf("%d pion/turn Listen readers (64 KiB buffer each)", n)
	}
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
}

// relaysOf reports whether s released its relays, and how many of its
// reflector ports and TURN allocations are closed.
func relaysOf(s *Session) (released bool, closedPorts, closedTURN int) {
	s.mu.Lock()
	released = s.relaysReleased
	turns := s.turns
	s.mu.Unlock()
	for _, p := range s.ports {
		if p.d.gone.Load() {
			closedPorts++
		}
	}
	for _, p := range turns {
		p.mu.Lock()
		if p.closed {
			closedTURN++
		}
		p.mu.Unlock()
	}
	return released, closedPorts, closedTURN
}

// TestReleaseUnusedRelays: with Transport.ReleaseUnusedRelays a call on a
// direct pair closes its reflector ports and TURN allocation (their
// goroutines end) and media keeps flowing; a call that uses a relay keeps
// them all; without the option nothing is released (tgcalls keeps its
// ports, relays.go).
func TestReleaseUnusedRelays(t *testing.T) {
	old := relayReleaseDelay
	relayReleaseDelay = 100 * time.Millisecond
	t.Cleanup(func() { relayReleaseDelay = old })
	for _, tc := range []struct {
		name           string
		p2p, release   bool
		wantReleased   bool
		wantLocalRelay bool
	}{
		{"direct", true, true, true, false},
		{"relayed", false, true, false, true},
		{"default", true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := newTestReflector(t)
			tr := loopbackTransport()
			tr.ReleaseUnusedRelays = tc.release
			cfg := Config{
				Transport:  tr,
				P2PAllowed: tc.p2p,
				Reflectors: []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}},
				ICEServers: []ICEServer{newTestTURN(t)},
			}
			a, b := connectedPair(t, cfg, cfg)
			rb := startReader(b)
			flow(t, a, rb, 0x1234, "before", 5)
			// Wait for the TURN allocations and reflectors to be up, then
			// well past the release delay.
			deadline := time.Now().Add(testTimeout)
			for {
				ra, pa, ta := relaysOf(a)
				rbl, pb, tb := relaysOf(b)
				done := ra && rbl && pa == 1 && pb == 1 && ta == 1 && tb == 1
				if done || time.Now().After(deadline) {
					break
				}
				if !tc.wantReleased && time.Since(deadline.Add(-testTimeout)) > 20*relayReleaseDelay {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, s := range []*Session{a, b} {
				released, ports, turns := relaysOf(s)
				if released != tc.wantReleased {
					t.Errorf("released %v, want %v", released, tc.wantReleased)
				}
				wantClosed := 0
				if tc.wantReleased {
					wantClosed = 1
				}
				if ports != wantClosed || turns != wantClosed {
					t.Errorf("%d reflector ports and %d TURN allocations closed, want %d", ports, turns, wantClosed)
				}
				if st := s.Stats(); (st.LocalCandidateType == "relay") != tc.wantLocalRelay {
					t.Errorf("local candidate %s", st.LocalCandidateType)
				}
			}
			if tc.wantReleased {
				for _, fn := range []string{"media.(*Session).runReflector", "media.(*Session).readTURN", "turn/v5/internal/client.(*PeriodicTimer)"} {
					if n := goroutinesIn(fn); n != 0 {
						t.Errorf("%d goroutines in %s after the release", n, fn)
					}
				}
			}
			flow(t, a, rb, 0x1234, "after", 20)
			_ = a.Close()
			_ = b.Close()
			rb.wait(t)
		})
	}
}

// TestReflectorHellosWithoutGoroutine: once its reflector answered, a port
// keeps its binding alive with hellos from a timer, with no goroutine of
// its own for the call's life, and the hellos stop when it closes.
func TestReflectorHellosWithoutGoroutine(t *testing.T) {
	ref := newTestReflector(t)
	cfg := Config{Reflectors: []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}}
	a, b := connectedPair(t, cfg, cfg)
	rb := startReader(b)
	flow(t, a, rb, 0x1234, "relayed", 5)
	if st := a.Stats(); st.LocalCandidateType != "relay" {
		t.Fatalf("not through the reflector: %+v", st)
	}
	if n := goroutinesIn("media.(*Session).runReflector"); n != 0 {
		t.Errorf("%d reflector goroutines while connected, want 0", n)
	}
	p := a.ports[0]
	p.helloMu.Lock()
	armed := p.helloTimer != nil && !p.helloStopped
	p.helloMu.Unlock()
	if !armed {
		t.Fatal("no keepalive timer on a ready reflector port")
	}
	before, hellos := p.helloSent.Load(), ref.hellos.Load()
	p.helloTick() // what the timer runs every 10 s
	if p.helloSent.Load() != before+1 {
		t.Error("the keepalive sent no hello")
	}
	deadline := time.Now().Add(testTimeout)
	for ref.hellos.Load() == hellos && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ref.hellos.Load() == hellos {
		t.Error("the reflector saw no keepalive hello")
	}
	_ = a.Close()
	p.helloMu.Lock()
	stopped := p.helloStopped
	p.helloMu.Unlock()
	if !stopped {
		t.Error("hellos not stopped when the port closed")
	}
	_ = b.Close()
	rb.wait(t)
}

// TestOversizeDatagramDroppedByPump: a datagram larger than maxDatagram
// that reaches the agent's buffer (here: no ReadRTP owns the socket yet)
// is dropped and counted by the pump, which keeps running.
func TestOversizeDatagramDroppedByPump(t *testing.T) {
	a, b := connectedPair(t, Config{P2PAllowed: true}, Config{P2PAllowed: true})
	r := a.route.Load()
	if r == nil || r.conn == nil {
		t.Fatalf("no direct route: %+v", r)
	}
	dropped := b.st.dropped.Load()
	big := make([]byte, 3*maxDatagram)
	big[0], big[1] = 0x80, 111 // looks like RTP (RFC 7983)
	if err := r.conn.writeDirect(big, r.remote); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for b.st.dropped.Load() == dropped {
		if time.Now().After(deadline) {
			t.Fatal("the oversize datagram was not dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.side.n.Load(); n != 0 {
		t.Errorf("%d datagrams queued for ReadRTP", n)
	}
	rb := startReader(b)
	flow(t, a, rb, 0x1234, "after", 5)
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
}
