//go:build linux

package media

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// batch is what one read callback got.
type batch struct {
	data []string
	from []netip.AddrPort
}

// collectBatches runs a batchReader on rx and hands over each batch's
// datagrams and senders (copyOut), or an empty batch per read (nothing
// allocated).
func collectBatches(t *testing.T, rx *net.UDPConn, copyOut bool) (*batchReader, <-chan batch) {
	t.Helper()
	rc, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan batch, 1)
	var r *batchReader
	r = newBatchReader(rc, func(n int) {
		var bt batch
		if copyOut {
			for i := range n {
				b, from := r.packet(i)
				bt.data = append(bt.data, string(b))
				bt.from = append(bt.from, from)
			}
		}
		ch <- bt
	})
	go func() {
		defer close(ch)
		_ = r.run()
	}()
	return r, ch
}

// One recvmmsg returns every datagram already queued on the socket, each
// with its own length and sender, without allocating.
func TestBatchReader(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var txs [2]*net.UDPConn
	for i := range txs {
		if txs[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = txs[i].Close() }()
	}
	const n = 10
	for i := range n {
		if _, err := txs[i%2].WriteToUDP([]byte(fmt.Sprintf("datagram %d%s", i, make([]byte, i))), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	_, ch := collectBatches(t, rx, true)
	bt := <-ch
	if len(bt.data) != n {
		t.Fatalf("one read returned %d datagrams, want %d", len(bt.data), n)
	}
	for i := range bt.data {
		want := fmt.Sprintf("datagram %d%s", i, make([]byte, i))
		if bt.data[i] != want {
			t.Fatalf("datagram %d = %q, want %q", i, bt.data[i], want)
		}
		if bt.from[i] != txs[i%2].LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("datagram %d from %v, want %v", i, bt.from[i], txs[i%2].LocalAddr())
		}
	}
	_ = rx.Close()
	for range ch {
	}

	// Steady state allocates nothing.
	rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, ch = collectBatches(t, rx, false)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := txs[0].WriteToUDP([]byte("x"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		<-ch
	})
	if allocs > 1 { // the sender's WriteToUDP may allocate; the reader must not
		t.Fatalf("%.1f allocations per send+read", allocs)
	}
	_ = rx.Close()
	for range ch {
	}
}

// A short batch took everything queued: the reader then waits for the
// socket to become readable instead of making a recvmmsg call that would
// only return EAGAIN, so a reader woken for one datagram at a time makes
// one call per datagram, not two; and no datagram that arrives while a
// batch is handled is left waiting for the next one.
func TestBatchReaderWaitsAfterShortBatch(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Close() }()
	r, ch := collectBatches(t, rx, true)
	const n = 50
	for i := range n {
		want := fmt.Sprint("datagram ", i)
		if _, err := tx.WriteToUDP([]byte(want), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		select {
		case bt := <-ch:
			if len(bt.data) != 1 || bt.data[0] != want {
				t.Fatalf("got %q, want %q", bt.data, want)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%q not read", want)
		}
	}
	// One call per datagram, and a few more for wake-ups that found
	// nothing (a reader that reads again at once makes two each).
	if calls := r.calls.Load(); calls > n+n/5 {
		t.Fatalf("%d recvmmsg calls for %d datagrams read one at a time", calls, n)
	}
	_ = rx.Close()
	for range ch {
	}
}

// Datagrams of no call are dropped: non-STUN from an unknown address, and
// STUN whose USERNAME names no call on the port.
func TestSharedMuxUnrouted(t *testing.T) {
	mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer.Close() }()
	m := mux.(*sharedMux)
	c, err := m.GetConn("known", m.laddr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Close() }()
	from := tx.LocalAddr().(*net.UDPAddr).AddrPort()
	m.route([]byte{0x80, 111, 0, 1}, from)
	m.route(stunRequest(t, "other:peer"), from)
	if got := m.unrouted.Load(); got != 2 {
		t.Fatalf("unrouted = %d, want 2", got)
	}
	// A check naming the call maps the address; media from it follows.
	m.route(stunRequest(t, "known:peer"), from)
	m.route([]byte{0x80, 111, 0, 2}, from)
	mc := m.connFor("known")
	mc.qmu.Lock()
	queued := mc.n
	mc.qmu.Unlock()
	if queued != 2 || m.unrouted.Load() != 2 {
		t.Fatalf("queued %d, unrouted %d", queued, m.unrouted.Load())
	}
}

// A port bound to the unspecified address offers every local IPv4 address
// but loopback as a host candidate address, with the port's number.
func TestSharedMuxListenAddresses(t *testing.T) {
	mux, closer, err := NewSharedPort("0.0.0.0:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer.Close() }()
	port := mux.(*sharedMux).laddr.Port
	for _, a := range mux.GetListenAddresses() {
		ua := a.(*net.UDPAddr)
		if ua.IP.IsLoopback() || ua.IP.To4() == nil || ua.Port != port {
			t.Errorf("listen address %v", ua)
		}
	}
	mux2, closer2, err := NewSharedPort("127.0.0.1:0", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer2.Close() }()
	if got := mux2.GetListenAddresses(); len(got) != 1 || got[0].String() != mux2.(*sharedMux).laddr.String() {
		t.Errorf("bound port offers %v", got)
	}
}

// Writes to the shared port held by Transport.HoldWrites are queued, not
// sent, until the last ReleaseWrites, then arrive in order; the RTCP
// timer's batched writes (transport-cc feedback and reports, held per
// visit) reach the peer too.
func TestHoldWrites(t *testing.T) {
	tr, mux := sharedTransport(t, newMisrouted())
	a, b := connectedPair(t, Config{Transport: tr, P2PAllowed: true, RTCPInterval: 300 * time.Millisecond}, Config{P2PAllowed: true})
	a.SetRTPExtensions(2, 3)
	b.SetRTPExtensions(2, 3)
	rb, ra := startReader(b), startReader(a)
	// b's ReadRTP takes its socket from pion's reader on its first call;
	// what pion's reader already had then arrives later, through the pump
	// (direct.go). Media first, so that the held packets below are read
	// in the order they were sent, and only SSRC 7 is looked at.
	flow(t, a, rb, 9, "warm", 1)
	w := &mux.w

	tr.HoldWrites()
	tr.HoldWrites() // nested: only the last release sends
	const n = 3
	for i := range n {
		if err := a.WriteRTP(rtpPacket(t, 7, uint16(i), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	queued := w.out.Queued()
	w.mu.Unlock()
	if queued < n { // RTCP of the timer may join them
		t.Fatalf("%d datagrams queued while held, want at least %d", queued, n)
	}
	tr.ReleaseWrites()
	w.mu.Lock()
	queued = w.out.Queued()
	w.mu.Unlock()
	if queued < n {
		t.Fatalf("%d datagrams queued after the inner release, want at least %d", queued, n)
	}
	tr.ReleaseWrites()
	for i := 0; i < n; {
		select {
		case p := <-rb.pkts:
			var h rtp.Header
			if _, err := h.Unmarshal(p); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			if h.SSRC != 7 {
				continue // a late warm-up packet
			}
			if h.SequenceNumber != uint16(i) {
				t.Fatalf("packet %d: seq %d", i, h.SequenceNumber)
			}
			i++
		case <-time.After(testTimeout):
			t.Fatalf("packet %d not received after the release", i)
		}
	}
	if w.failed.Load() != 0 {
		t.Fatalf("%d held datagrams failed", w.failed.Load())
	}

	// RTCP from the shared port, sent in the timer's held batches.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for seq := uint16(n); ; seq++ {
		st := b.Stats()
		if st.SenderReportsReceived > 0 && st.TransportCCReceived > 0 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no RTCP from the shared port: %+v", st)
		}
		_ = a.WriteRTP(rtpPacket(t, 7, seq, []byte{1}))
		_ = b.WriteRTP(rtpPacket(t, 8, seq, []byte{1}))
	}
	_ = a.Close()
	_ = b.Close()
	ra.wait(t)
	rb.wait(t)
}
