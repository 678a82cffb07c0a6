package media

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testTimeout = 15 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("MEDIA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// loopbackTransport keeps every candidate on 127.0.0.1.
func loopbackTransport() *Transport {
	return &Transport{
		IncludeLoopback: true,
		IPFilter:        func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) },
		Logger:          testLogger(),
	}
}

func newSession(t testing.TB, cfg Config) *Session {
	t.Helper()
	if cfg.Transport == nil {
		cfg.Transport = loopbackTransport()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func remoteOf(p Parameters) RemoteParameters {
	return RemoteParameters{Ufrag: p.Ufrag, Pwd: p.Pwd, Fingerprints: []Fingerprint{{Hash: FingerprintHash, Setup: p.Setup, Value: p.Fingerprint}}}
}

// candidateLog records what a session announced.
type candidateLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *candidateLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *candidateLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// link trickles each side's candidates to the other, as the engine does
// through signaling, and records them.
func link(t testing.TB, a, b *Session) (*candidateLog, *candidateLog) {
	la, lb := &candidateLog{}, &candidateLog{}
	a.OnCandidate(func(c string) {
		la.add(c)
		if err := b.AddRemoteCandidate(c); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("AddRemoteCandidate(%q): %v", c, err)
		}
	})
	b.OnCandidate(func(c string) {
		lb.add(c)
		if err := a.AddRemoteCandidate(c); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("AddRemoteCandidate(%q): %v", c, err)
		}
	})
	return la, lb
}

// handshake runs the InitialSetup exchange: caller a, callee b.
func handshake(t testing.TB, a, b *Session) {
	t.Helper()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemote(remoteOf(a.LocalParameters())); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRemote(remoteOf(b.LocalParameters())); err != nil {
		t.Fatal(err)
	}
}

func waitConnected(t testing.TB, ss ...*Session) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for _, s := range ss {
		select {
		case <-s.Connected():
		case <-s.Done():
			t.Fatalf("session ended before connecting: %v", s.Err())
		case <-deadline.C:
			t.Fatal("timeout waiting for Connected")
		}
	}
}

// connectedPair builds and connects a caller/callee pair.
func connectedPair(t testing.TB, ca, cb Config) (*Session, *Session) {
	t.Helper()
	ca.Outgoing, cb.Outgoing = true, false
	a, b := newSession(t, ca), newSession(t, cb)
	link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	return a, b
}

// reader drains ReadRTP in a goroutine until the session ends.
type reader struct {
	pkts chan []byte
	done chan struct{}
}

func startReader(s *Session) *reader {
	r := &reader{pkts: make(chan []byte, 1024), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 1500)
		for {
			n, err := s.ReadRTP(buf)
			if err != nil {
				if errors.Is(err, ErrClosed) || s.Err() != nil {
					return
				}
				continue
			}
			select {
			case r.pkts <- append([]byte(nil), buf[:n]...):
			default: // tests look at a prefix; dropping the rest is fine
			}
		}
	}()
	return r
}

func (r *reader) wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(testTimeout):
		t.Fatal("reader did not stop")
	}
}

func rtpPacket(t testing.TB, ssrc uint32, seq uint16, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flow sends packets from a until r has received want packets whose payload
// starts with tag, resending on a ticker (early packets can be dropped while
// the peer's keys are still being derived).
func flow(t testing.TB, from *Session, r *reader, ssrc uint32, tag string, want int) []*rtp.Packet {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	var got []*rtp.Packet
	seq := uint16(1)
	for len(got) < want {
		select {
		case <-tick.C:
			payload := append([]byte(tag), byte(seq>>8), byte(seq))
			if err := from.WriteRTP(rtpPacket(t, ssrc, seq, payload)); err != nil {
				t.Fatalf("WriteRTP: %v", err)
			}
			seq++
		case b := <-r.pkts:
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				t.Fatalf("received a packet that is not RTP: %v", err)
			}
			if len(p.Payload) >= len(tag) && string(p.Payload[:len(tag)]) == tag {
				got = append(got, &p)
			}
		case <-deadline.C:
			t.Fatalf("only %d/%d packets arrived", len(got), want)
		}
	}
	return got
}

// testReflector forwards datagrams by their 16-byte tag, as a Telegram
// reflector does (tgcalls.md §5.2): a hello registers the sender's tag and is
// echoed; any other datagram goes to the address registered for its tag.
type testReflector struct {
	conn      *net.UDPConn
	addr      netip.AddrPort
	forwarded atomic.Uint64
	hellos    atomic.Uint64
	unknown   atomic.Uint64
	done      chan struct{}
}

func newTestReflector(t testing.TB) *testReflector {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &testReflector{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{})}
	go r.serve()
	t.Cleanup(func() {
		_ = c.Close()
		<-r.done
	})
	return r
}

func (r *testReflector) serve() {
	defer close(r.done)
	tags := map[[16]byte]netip.AddrPort{}
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n < 16 {
			continue
		}
		tag := [16]byte(buf[:16])
		hello := n >= 28
		for _, x := range buf[16:min(n, 28)] {
			if x != 0xff {
				hello = false
			}
		}
		if hello {
			r.hellos.Add(1)
			tags[tag] = from
			_, _ = r.conn.WriteToUDPAddrPort(buf[:n], from)
			continue
		}
		dst, ok := tags[tag]
		if !ok {
			r.unknown.Add(1)
			continue
		}
		r.forwarded.Add(1)
		_, _ = r.conn.WriteToUDPAddrPort(buf[:n], dst)
	}
}

func randomTag(t testing.TB) [16]byte {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return b
}
