package media

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// (a) p2p on loopback: connects, RTP flows both ways, payload intact.
func TestP2PLoopback(t *testing.T) {
	a, b := connectedPair(t, Config{P2PAllowed: true}, Config{P2PAllowed: true})
	ra, rb := startReader(a), startReader(b)

	got := flow(t, a, rb, 0x1111, "a->b", 20)
	for _, p := range got {
		if p.SSRC != 0x1111 || p.PayloadType != 111 {
			t.Fatalf("header changed: %+v", p.Header)
		}
		seq := uint16(p.Payload[4])<<8 | uint16(p.Payload[5])
		if seq != p.SequenceNumber {
			t.Fatalf("payload %x does not belong to seq %d", p.Payload, p.SequenceNumber)
		}
	}
	flow(t, b, ra, 0x2222, "b->a", 20)

	sa := a.Stats()
	if sa.LocalCandidateType != "host" || sa.RemoteCandidateType != "host" || sa.Relayed {
		t.Fatalf("unexpected pair: %+v", sa)
	}
	if sa.SRTPProfile == "" || sa.PacketsSent == 0 || sa.PacketsReceived == 0 {
		t.Fatalf("stats: %+v", sa)
	}
	if sb := b.Stats(); sb.SRTPAuthFailures != 0 {
		t.Fatalf("auth failures: %+v", sb)
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
	if !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("Err after Close = %v", a.Err())
	}
	if err := a.WriteRTP(rtpPacket(t, 1, 1, []byte("x"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRTP after Close = %v", err)
	}
}

// (b) relay only, through a test reflector: connects, media flows, and only
// reflector candidates exist.
func TestReflectorRelayOnly(t *testing.T) {
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	ca := Config{Outgoing: true, Reflectors: refl}
	cb := Config{Reflectors: refl}
	a, b := newSession(t, ca), newSession(t, cb)
	la, lb := link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	ra, rb := startReader(a), startReader(b)
	flow(t, a, rb, 0xaaaa, "via-reflector", 10)
	flow(t, b, ra, 0xbbbb, "back", 10)

	for _, l := range append(la.all(), lb.all()...) {
		c, err := parseCandidate(l)
		if err != nil {
			t.Fatal(err)
		}
		if c.Type != "relay" || !strings.HasSuffix(c.Address, ".reflector") || c.Port != ref.addr.Port() {
			t.Fatalf("non-reflector candidate announced without P2P: %q", l)
		}
	}
	for _, s := range []*Session{a, b} {
		st := s.Stats()
		if !st.Relayed || st.LocalCandidateType != "relay" || st.RemoteCandidateType != "relay" {
			t.Fatalf("pair not relayed: %+v", st)
		}
		if !strings.HasSuffix(st.LocalAddress, ".reflector") {
			t.Fatalf("local address %q", st.LocalAddress)
		}
	}
	if ref.forwarded.Load() < 20 {
		t.Fatalf("reflector forwarded only %d packets", ref.forwarded.Load())
	}
	// The only sockets are the reflector sockets; everything either side
	// sent went to the reflector.
	for _, s := range []*Session{a, b} {
		if len(s.ports) != 1 || s.ports[0].packetsOut.Load() == 0 {
			t.Fatalf("reflector port unused")
		}
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
}

// (c) one side on a shared UDP port (the trunk), the other with per-call
// sockets (the Telegram users); several pairs at once.
func TestSharedPortConcurrentPairs(t *testing.T) {
	mux, closer, err := NewSharedPort("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := loopbackTransport()
	shared.UDPMux = mux
	const pairs = 4
	var wg sync.WaitGroup
	type result struct{ a, b *Session }
	results := make([]result, pairs)
	for i := range pairs {
		a, b := newSession(t, Config{Transport: shared, Outgoing: true, P2PAllowed: true}), newSession(t, Config{P2PAllowed: true})
		link(t, a, b)
		results[i] = result{a: a, b: b}
	}
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handshake(t, results[i].a, results[i].b)
		}()
	}
	wg.Wait()
	ports := map[string]bool{}
	for i := range pairs {
		r := results[i]
		waitConnected(t, r.a, r.b)
		rb := startReader(r.b)
		flow(t, r.a, rb, uint32(100+i), "pair"+strconv.Itoa(i), 5)
		st := r.a.Stats()
		_, port, _ := net.SplitHostPort(st.LocalAddress)
		ports[port] = true
		_ = r.a.Close()
		_ = r.b.Close()
		rb.wait(t)
	}
	if len(ports) != 1 {
		t.Fatalf("muxed side used %d local ports, want 1: %v", len(ports), ports)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
}

// freePortRange finds a base port with n consecutive ports free right now.
func freePortRange(t *testing.T, n int) (uint16, uint16) {
	for range 50 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		base := c.LocalAddr().(*net.UDPAddr).Port
		_ = c.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: p})
			if err != nil {
				ok = false
				break
			}
			_ = c.Close()
		}
		if ok {
			return uint16(base), uint16(base + n - 1)
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

// (d) host candidates and reflector sockets stay inside the port range.
func TestPortRange(t *testing.T) {
	lo, hi := freePortRange(t, 8)
	tr := loopbackTransport()
	tr.PortMin, tr.PortMax = lo, hi
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	a, b := newSession(t, Config{Transport: tr, Outgoing: true, P2PAllowed: true, Reflectors: refl}), newSession(t, Config{P2PAllowed: true})
	la, _ := link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	inRange := func(port int) bool { return port >= int(lo) && port <= int(hi) }
	for _, l := range la.all() {
		c, err := parseCandidate(l)
		if err != nil {
			t.Fatal(err)
		}
		if c.Type == "host" && !inRange(int(c.Port)) {
			t.Fatalf("host candidate outside %d-%d: %q", lo, hi, l)
		}
	}
	for _, p := range a.ports {
		if port := p.conn.LocalAddr().(*net.UDPAddr).Port; !inRange(port) {
			t.Fatalf("reflector socket on port %d outside %d-%d", port, lo, hi)
		}
	}
	if _, port, _ := net.SplitHostPort(a.Stats().LocalAddress); port != "" {
		if n, _ := strconv.Atoi(port); !inRange(n) {
			t.Fatalf("selected local port %d outside range", n)
		}
	}
}

// (e) a wrong fingerprint fails DTLS, reported through Err, and nothing
// leaks (goleak in TestMain).
func TestWrongFingerprint(t *testing.T) {
	a, b := newSession(t, Config{Outgoing: true, P2PAllowed: true}), newSession(t, Config{P2PAllowed: true})
	link(t, a, b)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	bad := remoteOf(a.LocalParameters())
	fp := []byte(bad.Fingerprints[0].Value)
	if fp[0] == 'A' {
		fp[0] = 'B'
	} else {
		fp[0] = 'A'
	}
	bad.Fingerprints[0].Value = string(fp)
	if err := b.SetRemote(bad); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRemote(remoteOf(b.LocalParameters())); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-b.Connected():
		t.Fatal("connected despite a wrong fingerprint")
	case <-time.After(testTimeout):
		t.Fatal("no failure reported")
	}
	if !errors.Is(b.Err(), ErrDTLS) {
		t.Fatalf("Err = %v, want ErrDTLS", b.Err())
	}
	select {
	case <-a.Connected():
		// The client may finish before the server rejects it; it must not
		// matter: the server never derives keys.
	default:
	}
}

// (f) an unreachable peer ends in ErrConnectTimeout.
func TestConnectTimeout(t *testing.T) {
	a := newSession(t, Config{Outgoing: true, P2PAllowed: true, ConnectTimeout: 300 * time.Millisecond})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRemote(RemoteParameters{Ufrag: "abcd", Pwd: "0123456789abcdefghijkl", Fingerprints: []Fingerprint{{Hash: "sha-256", Setup: "passive", Value: "00:11"}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddRemoteCandidate("candidate:1 1 udp 2130706431 127.0.0.1 9 typ host generation 0"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(testTimeout):
		t.Fatal("no timeout")
	}
	if !errors.Is(a.Err(), ErrConnectTimeout) {
		t.Fatalf("Err = %v", a.Err())
	}
	if _, err := a.ReadRTP(make([]byte, 1500)); !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("ReadRTP after failure = %v", err)
	}
}

// (g) the receiver sends receiver reports and transport-cc feedback that the
// sender parses; the sender's packets carry the transport-cc sequence.
func TestRTCPFeedback(t *testing.T) {
	cfg := Config{P2PAllowed: true, RTCPInterval: 200 * time.Millisecond}
	a, b := connectedPair(t, cfg, cfg)
	a.SetRTPExtensions(2, 3)
	b.SetRTPExtensions(2, 3)
	ra, rb := startReader(a), startReader(b)

	got := flow(t, a, rb, 0x5151, "cc", 10)
	var last uint16
	for i, p := range got {
		ext := p.GetExtension(3)
		if len(ext) != 2 {
			t.Fatalf("no transport-cc extension: %+v", p.Header)
		}
		if len(p.GetExtension(2)) != 3 {
			t.Fatalf("no abs-send-time extension: %+v", p.Header)
		}
		seq := uint16(ext[0])<<8 | uint16(ext[1])
		if i > 0 && seq <= last {
			t.Fatalf("transport-cc sequence not increasing: %d after %d", seq, last)
		}
		last = seq
	}
	// Keep media flowing until a has parsed b's reports and feedback.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	seq := uint16(1000)
	for {
		st := a.Stats()
		if st.ReceiverReportsReceived > 0 && st.TransportCCReceived > 0 {
			break
		}
		select {
		case <-tick.C:
			seq++
			if err := a.WriteRTP(rtpPacket(t, 0x5151, seq, []byte("more"))); err != nil {
				t.Fatal(err)
			}
		case <-rb.pkts:
		case <-deadline:
			t.Fatalf("no RR/TWCC parsed: %+v", st)
		}
	}
	sb := b.Stats()
	if sb.TransportCCSent == 0 || sb.RTCPSent == 0 {
		t.Fatalf("receiver stats: %+v", sb)
	}
	// a sends media, so its reports are sender reports that b parses.
	deadline = time.After(testTimeout)
	for b.Stats().SenderReportsReceived == 0 {
		select {
		case <-tick.C:
			seq++
			if err := a.WriteRTP(rtpPacket(t, 0x5151, seq, []byte("more"))); err != nil {
				t.Fatal(err)
			}
		case <-rb.pkts:
		case <-deadline:
			t.Fatalf("no SR parsed: %+v", b.Stats())
		}
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
}

// (h) Close while ICE/DTLS are still connecting leaks nothing and unblocks
// readers.
func TestCloseDuringConnect(t *testing.T) {
	for i := range 5 {
		a, b := newSession(t, Config{Outgoing: true, P2PAllowed: true}), newSession(t, Config{P2PAllowed: true})
		link(t, a, b)
		handshake(t, a, b)
		ra := startReader(a)
		if i%2 == 1 {
			select {
			case <-a.Connected():
			case <-time.After(testTimeout):
			}
		}
		var wg sync.WaitGroup
		for _, s := range []*Session{a, b, a} {
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.Close() }()
		}
		wg.Wait()
		ra.wait(t)
		if !errors.Is(a.Err(), ErrClosed) {
			t.Fatalf("Err = %v", a.Err())
		}
	}
}

// Close before Start and Start after Close.
func TestCloseBeforeStart(t *testing.T) {
	ref := newTestReflector(t)
	s := newSession(t, Config{Reflectors: []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
}

func TestWriteBeforeConnected(t *testing.T) {
	s := newSession(t, Config{P2PAllowed: true})
	if err := s.WriteRTP(rtpPacket(t, 1, 1, []byte("x"))); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("WriteRTP = %v", err)
	}
}

func TestRewriteExtensionsKeepsPayload(t *testing.T) {
	s := &Session{txPlain: make([]byte, 1500)}
	s.SetRTPExtensions(2, 3)
	in := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7, SSRC: 9, CSRC: []uint32{5}}, Payload: []byte("payload")}
	if err := in.Header.SetExtension(1, []byte{0xaa}); err != nil {
		t.Fatal(err)
	}
	raw, _ := in.Marshal()
	hl, err := s.txHdr.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := s.rewriteExtensions(raw, hl, time.Now())
	if !ok {
		t.Fatal("rewrite failed")
	}
	var p rtp.Packet
	if err := p.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Payload, in.Payload) || len(p.CSRC) != 1 || p.GetExtension(1) != nil || len(p.GetExtension(3)) != 2 || len(p.GetExtension(2)) != 3 {
		t.Fatalf("rewritten packet: %+v", p)
	}
	s.SetRTPExtensions(0, 0)
	hl, _ = s.txHdr.Unmarshal(raw)
	out, _ = s.rewriteExtensions(raw, hl, time.Now())
	if err := p.Unmarshal(out); err != nil || p.Extension || !bytes.Equal(p.Payload, in.Payload) {
		t.Fatalf("stripped packet: %+v %v", p, err)
	}
}

// A P2P-allowed trunk calling a relay-only peer (the usual non-contact
// case) connects through the reflector.
func TestMixedP2PAndRelayOnly(t *testing.T) {
	ref := newTestReflector(t)
	refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
	a, b := connectedPair(t, Config{P2PAllowed: true, Reflectors: refl}, Config{Reflectors: refl})
	rb := startReader(b)
	flow(t, a, rb, 0x77, "mixed", 5)
	if st := b.Stats(); !st.Relayed || st.LocalCandidateType != "relay" {
		t.Fatalf("relay-only side not relayed: %+v", st)
	}
	_ = b.Close()
	rb.wait(t)
}

// NAT 1:1: host candidates carry the configured public address.
func TestPublicIPRewrite(t *testing.T) {
	tr := loopbackTransport()
	tr.PublicIPs = []string{"203.0.113.9"}
	s := newSession(t, Config{Transport: tr, P2PAllowed: true})
	got := make(chan string, 16)
	s.OnCandidate(func(c string) { got <- c })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		p, err := parseCandidate(c)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type != "host" || p.Address != "203.0.113.9" {
			t.Fatalf("candidate %q", c)
		}
	case <-time.After(testTimeout):
		t.Fatal("no candidate")
	}
}
