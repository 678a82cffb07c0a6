//go:build linux

package media

import (
	"fmt"
	"net"
	"testing"

	"github.com/pion/stun/v4"
)

// One recvmmsg returns every datagram already queued on the socket, each
// with its own length and sender, without allocating.
func TestBatchReader(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rx.Close() }()
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
	rc, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := newBatchReader(rc)
	got, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("one read returned %d datagrams, want %d", got, n)
	}
	for i := range got {
		b, from := r.packet(i)
		want := fmt.Sprintf("datagram %d%s", i, make([]byte, i))
		if string(b) != want {
			t.Fatalf("datagram %d = %q, want %q", i, b, want)
		}
		if from != txs[i%2].LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("datagram %d from %v, want %v", i, from, txs[i%2].LocalAddr())
		}
	}
	// Steady state allocates nothing.
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := txs[0].WriteToUDP([]byte("x"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		if k, err := r.read(); err != nil || k != 1 {
			t.Fatalf("read %d, %v", k, err)
		}
	})
	if allocs > 1 { // the sender's WriteToUDP may allocate; the reader must not
		t.Fatalf("%.1f allocations per send+read", allocs)
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

func stunRequest(t *testing.T, username string) []byte {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
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
