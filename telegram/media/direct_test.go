package media

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
)

// Once a host pair is selected, ReadRTP reads the selected socket itself:
// the media of a p2p call does not come through pion's reader and the pump.
func TestDirectPathInline(t *testing.T) {
	for _, tc := range []struct {
		name          string
		relay, shared bool
	}{{"host", false, false}, {"reflector", true, false}, {"shared-port", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := Config{P2PAllowed: true}, Config{P2PAllowed: true}
			if tc.shared {
				// The receiver's host candidate is on the shared port.
				mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = closer.Close() })
				cb.Transport = loopbackTransport()
				cb.Transport.UDPMux = mux
			}
			if tc.relay {
				ref := newTestReflector(t)
				refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
				ca, cb = Config{Reflectors: refl}, Config{Reflectors: refl}
			}
			a, b := connectedPair(t, ca, cb)
			rb := startReader(b)
			flow(t, a, rb, 0x1234, "warm", 5) // the reader has taken the socket
			before := b.viaPump.Load()
			got := flow(t, a, rb, 0x1234, "inline", 200)
			if len(got) != 200 {
				t.Fatalf("%d packets", len(got))
			}
			r := b.route.Load()
			if r == nil || r.conn == nil {
				t.Fatalf("no direct route: %+v", r)
			}
			if _, ok := r.conn.(*muxConn); ok != tc.shared {
				t.Fatalf("route through %T", r.conn)
			}
			if n := b.viaPump.Load() - before; n > 2 {
				t.Fatalf("%d of 200 packets came through pion's reader and the pump", n)
			}
			_ = a.Close()
			_ = b.Close()
			rb.wait(t)
		})
	}
}

// candidatesOf finds s's local and remote candidate of the host pair and of
// the reflector pair.
func candidatesOf(t *testing.T, s *Session) (hostL, hostR, relL, relR ice.Candidate) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		hostL, hostR, relL, relR = nil, nil, nil, nil
		locals, err := s.agent.GetLocalCandidates()
		if err != nil {
			t.Fatal(err)
		}
		remotes, err := s.agent.GetRemoteCandidates()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range locals {
			switch c.Type() {
			case ice.CandidateTypeHost:
				hostL = c
			case ice.CandidateTypeRelay:
				relL = c
			}
		}
		for _, c := range remotes {
			switch c.Type() {
			case ice.CandidateTypeHost:
				hostR = c
			case ice.CandidateTypeRelay:
				relR = c
			}
		}
		if hostL != nil && hostR != nil && relL != nil && relR != nil && s.ports[0].remoteTag.Load() != 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("host and reflector candidates not all known")
	return
}

// fakeLocal is a local candidate that is none of the session's sockets
// (what a TURN allocation or the shared-port mux looks like to the route).
func fakeLocal(t *testing.T) ice.Candidate {
	c, err := ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{
		Network: "udp4", Address: "127.0.0.1", Port: 9, Component: ice.ComponentRTP, RelAddr: "127.0.0.1", RelPort: 9,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeRemote is a remote candidate nobody sends from (the discard port).
func fakeRemote(t *testing.T) ice.Candidate {
	c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp4", Address: "127.0.0.1", Port: 9, Component: ice.ComponentRTP})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Selected-pair changes while media flows lose nothing: the receiver moves
// from its host socket to its reflector port, to pion's path (as for TURN)
// and back to the host socket, and the sender moves its writes to the
// reflector and back, while packets keep coming at 1 ms intervals. A
// socket given back to pion keeps its unread datagrams and pion's reader
// delivers them through the agent's buffer and the pump; what arrives on a
// socket that is not the selected one takes pion's path. Every sequence
// number must arrive, in order per path (loopback does not reorder).
func TestSelectedPairHandover(t *testing.T) {
	t.Run("sockets", func(t *testing.T) { testSelectedPairHandover(t, false, false) })
	// The receiver's host candidate on the shared port: its call queue is
	// taken and given back like a socket.
	t.Run("shared-port", func(t *testing.T) { testSelectedPairHandover(t, true, false) })
	// The same with the receiver pushing (PushRTP): the push loop follows
	// the route, and on the shared port the port's reader delivers inline
	// while the pair is on it.
	t.Run("sockets-push", func(t *testing.T) { testSelectedPairHandover(t, false, true) })
	t.Run("shared-port-push", func(t *testing.T) { testSelectedPairHandover(t, true, true) })
}

func testSelectedPairHandover(t *testing.T, shared, push bool) {
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	cb := Config{P2PAllowed: true, Reflectors: refl}
	if shared {
		mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = closer.Close() })
		cb.Transport = loopbackTransport()
		cb.Transport.UDPMux = mux
	}
	a, b := connectedPair(t, Config{P2PAllowed: true, Reflectors: refl}, cb)
	aHostL, aHostR, aRelL, aRelR := candidatesOf(t, a)
	bHostL, bHostR, bRelL, bRelR := candidatesOf(t, b)
	if r := b.route.Load(); r == nil || r.conn == nil {
		t.Fatal("receiver not on a direct route")
	} else if _, ok := r.conn.(*muxConn); ok != shared {
		t.Fatalf("receiver reads %T", r.conn)
	}

	const total = 3000
	var mu sync.Mutex
	seen := make(map[uint16]int)
	readerDone := make(chan struct{})
	var p rtp.Packet
	count := func(b []byte) {
		if p.Unmarshal(b) != nil || string(p.Payload) != "handover" {
			t.Errorf("bad packet")
			return
		}
		mu.Lock()
		seen[p.SequenceNumber]++
		mu.Unlock()
	}
	if push {
		defer b.PushRTP(count)()
	}
	go func() {
		defer close(readerDone)
		buf := make([]byte, 1500)
		for {
			n, err := b.ReadRTP(buf)
			if err != nil {
				if b.Err() != nil {
					return
				}
				if push {
					t.Errorf("ReadRTP while pushing: %v", err)
				}
				continue
			}
			if push {
				t.Errorf("ReadRTP returned a packet while pushing")
			}
			count(buf[:n])
		}
	}()
	// Prime: the receiver must be reading before the first change.
	for i := 0; ; i++ {
		if err := a.WriteRTP(rtpPacket(t, 0x5555, 0, []byte("handover"))); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		ok := seen[0] > 0
		mu.Unlock()
		if ok {
			break
		}
		if i > 5000 {
			t.Fatal("no packet before the handover")
		}
		time.Sleep(time.Millisecond)
	}
	type change struct {
		at          int
		s           *Session
		local, remo ice.Candidate
	}
	changes := []change{
		{500, b, bRelL, bRelR},           // receiver reads its reflector port; host datagrams take pion's path
		{900, a, aRelL, aRelR},           // sender writes through the reflector: inline again
		{1300, b, fakeLocal(t), bHostR},  // receiver on pion's path (TURN-like): everything via the pump
		{1700, b, bHostL, bHostR},        // receiver back on its host pair; reflector datagrams via pion
		{2100, a, aHostL, aHostR},        // sender back on host: inline again
		{2300, b, bHostL, fakeRemote(t)}, // host socket still read inline, but the peer is not the selected remote: via pion
		{2600, b, bRelL, bRelR},          // and to the reflector while the sender is on host
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for seq := 1; seq <= total; seq++ {
		for _, c := range changes {
			if c.at == seq {
				c.s.handleSelectedPair(c.local, c.remo)
			}
		}
		<-tick.C
		if err := a.WriteRTP(rtpPacket(t, 0x5555, uint16(seq), []byte("handover"))); err != nil {
			t.Fatalf("WriteRTP %d: %v", seq, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := 0
		for seq := 1; seq <= total; seq++ {
			if seen[uint16(seq)] > 0 {
				n++
			}
		}
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			var missing []int
			for seq := 1; seq <= total && len(missing) < 20; seq++ {
				if seen[uint16(seq)] == 0 {
					missing = append(missing, seq)
				}
			}
			mu.Unlock()
			t.Fatalf("%d of %d packets arrived; first missing: %v (stats %+v)", n, total, missing, b.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for seq, k := range seen {
		if k > 1 {
			t.Errorf("seq %d delivered %d times", seq, k)
		}
	}
	mu.Unlock()
	// Both paths were used: inline and through the pump.
	if p := b.viaPump.Load(); p < 100 || p > total-1000 {
		t.Errorf("%d packets via the pump: the handover paths were not exercised", p)
	}
	if ref.forwarded.Load() < 500 {
		t.Errorf("reflector forwarded %d packets", ref.forwarded.Load())
	}
	_ = a.Close()
	_ = b.Close()
	<-readerDone
}

// STUN on a socket ReadRTP owns reaches pion: its consent checks (RFC 7675;
// pion pings the selected pair every 2 s and counts the answers as
// received) keep a call alive well past the disconnected and failed
// timeouts (1 s each here). Dropping STUN in ReadRTP fails the session
// with ErrICEFailed.
func TestConsentThroughDirectRead(t *testing.T) {
	cfg := Config{P2PAllowed: true, ConnectTimeout: 2 * time.Second}
	a, b := connectedPair(t, cfg, cfg)
	ra, rb := startReader(a), startReader(b)
	stop := time.After(6 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(1); ; seq++ {
		select {
		case <-stop:
		case <-tick.C:
			for _, s := range []*Session{a, b} {
				if err := s.WriteRTP(rtpPacket(t, 0x77, seq, []byte("consent"))); err != nil {
					t.Fatalf("WriteRTP after %d packets: %v", seq, err)
				}
			}
			continue
		}
		break
	}
	for _, s := range []*Session{a, b} {
		if err := s.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
		if r := s.route.Load(); r == nil || r.conn == nil || !r.conn.demuxer().taken.Load() {
			t.Fatal("the selected socket is not read directly")
		}
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
}

// The route finds the socket of the selected local candidate: a host
// candidate by its address, a server-reflexive one by its base (related
// address), which is the socket pion gathered it on.
func TestSessionNetByLocal(t *testing.T) {
	n, err := newSessionNet()
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*hostConn
	for i := range conns {
		c, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*hostConn)
		defer func() { _ = c.Close() }()
	}
	port := func(i int) int { return conns[i].LocalAddr().(*net.UDPAddr).Port }
	host, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp4", Address: "127.0.0.1", Port: port(1), Component: ice.ComponentRTP})
	if err != nil {
		t.Fatal(err)
	}
	srflx, err := ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{
		Network: "udp4", Address: "192.0.2.7", Port: 40000, Component: ice.ComponentRTP, RelAddr: "0.0.0.0", RelPort: port(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.byLocal(host); got != conns[1] {
		t.Errorf("host candidate: %v", got)
	}
	if got := n.byLocal(srflx); got != conns[0] {
		t.Errorf("srflx candidate: %v", got)
	}
	if got := n.byLocal(fakeLocal(t)); got != nil {
		t.Errorf("unknown srflx candidate: %v", got)
	}
	other, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp4", Address: "127.0.0.2", Port: port(1), Component: ice.ComponentRTP})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.byLocal(other); got != nil {
		t.Errorf("host candidate on another address: %v", got)
	}
}

// A renomination from the network moves the call while media flows, and
// nothing is lost either way. The caller nominates as libwebrtc's
// controlling agent does when it renominates
// (draft-thatcher-ice-renomination-01: USE-CANDIDATE with a NOMINATION
// attribute whose value grows): the binding request goes out through the
// reflector (wrapped for it by the caller's reflector port), later through
// the host pair again. The callee's agent follows it (last nomination
// wins), pion reports the new selected pair and the callee's ReadRTP and
// writes follow; the caller moves its writes when it sends the nomination.
// (pion's own RenominateCandidate is not safe outside its agent loop, so
// the request is built here.)
func TestRenominationHandover(t *testing.T) {
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	a, b := connectedPair(t, Config{P2PAllowed: true, Reflectors: refl}, Config{P2PAllowed: true, Reflectors: refl})
	aHostL, aHostR, aRelL, aRelR := candidatesOf(t, a)
	candidatesOf(t, b) // the callee knows the reflector pair too

	const total = 2400
	type counts struct {
		mu   sync.Mutex
		seen map[uint16]int
	}
	var got [2]counts
	var readers sync.WaitGroup
	for i, s := range []*Session{a, b} {
		got[i].seen = make(map[uint16]int)
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 1500)
			var p rtp.Packet
			for {
				n, err := s.ReadRTP(buf)
				if err != nil {
					if s.Err() != nil {
						return
					}
					continue
				}
				if p.Unmarshal(buf[:n]) != nil {
					continue
				}
				got[i].mu.Lock()
				got[i].seen[p.SequenceNumber]++
				got[i].mu.Unlock()
			}
		}()
	}
	arrived := func(i, seq int) bool {
		got[i].mu.Lock()
		defer got[i].mu.Unlock()
		return got[i].seen[uint16(seq)] > 0
	}
	// Prime both directions with seq 0 until it arrives.
	for k := 0; !arrived(0, 0) || !arrived(1, 0); k++ {
		if k > 5000 {
			t.Fatal("no packet before the renomination")
		}
		_ = a.WriteRTP(rtpPacket(t, 0xa, 0, []byte("renominate")))
		_ = b.WriteRTP(rtpPacket(t, 0xb, 0, []byte("renominate")))
		time.Sleep(time.Millisecond)
	}
	nomination := uint32(100)
	nominate := func(local, remote ice.Candidate) {
		nomination++
		req, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(b.ufrag+":"+a.ufrag),
			ice.UseCandidate(), ice.AttrControlling(1), ice.PriorityAttr(local.Priority()),
			ice.NominationSetter{Value: nomination, AttrType: ice.DefaultNominationAttribute},
			stun.NewShortTermIntegrity(b.pwd), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		a.handleSelectedPair(local, remote) // the caller switches as it nominates
		var conn directConn
		if p := a.ports[0]; p.cand.Load() == local {
			conn = p
		} else {
			conn = a.net.byLocal(local)
		}
		ip, err := netip.ParseAddr(remote.Address())
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.writeDirect(req.Raw, netip.AddrPortFrom(ip, uint16(remote.Port()))); err != nil {
			t.Fatal(err)
		}
	}
	isRelay := func(s *Session) bool {
		_, ok := s.route.Load().conn.(*reflectorPort)
		return ok
	}
	var sawRelay bool
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for seq := 1; seq <= total; seq++ {
		// Nominations are resent with a higher value until followed, as
		// libwebrtc retransmits its checks.
		switch {
		case seq == 600, (seq == 900 || seq == 1200) && !sawRelay:
			nominate(aRelL, aRelR)
		case seq == 1500, (seq == 1800 || seq == 2100) && isRelay(b):
			nominate(aHostL, aHostR)
		}
		if seq > 600 && seq < 1500 && isRelay(b) {
			sawRelay = true
		}
		<-tick.C
		if err := a.WriteRTP(rtpPacket(t, 0xa, uint16(seq), []byte("renominate"))); err != nil {
			t.Fatalf("caller WriteRTP %d: %v", seq, err)
		}
		if err := b.WriteRTP(rtpPacket(t, 0xb, uint16(seq), []byte("renominate"))); err != nil {
			t.Fatalf("callee WriteRTP %d: %v", seq, err)
		}
	}
	if !sawRelay {
		t.Fatal("the callee did not follow the nomination of the reflector pair")
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, name := range []string{"callee→caller", "caller→callee"} {
		for {
			var missing []int
			for seq := 1; seq <= total && len(missing) < 10; seq++ {
				if !arrived(i, seq) {
					missing = append(missing, seq)
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: packets lost, first: %v", name, missing)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if isRelay(b) {
		t.Fatal("the callee did not follow the nomination back to the host pair")
	}
	if ref.forwarded.Load() < 500 {
		t.Errorf("reflector forwarded %d packets", ref.forwarded.Load())
	}
	_ = a.Close()
	_ = b.Close()
	readers.Wait()
}
