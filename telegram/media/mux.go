package media

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// sharedMux is the shared UDP port (NewSharedPort, docs/media-performance.md
// option B): one socket carries the host candidates of every call. One
// reader goroutine reads it in batches (recvmmsg on Linux, mux_linux.go) and
// hands each datagram to the call it belongs to: by the remote address once
// known, else — a STUN binding request from a new address — by the local
// ufrag in its USERNAME (RFC 8445 §7.2.2), as pion's UDPMuxDefault does.
// Each call's muxConn is what pion's agent sees as the candidate's socket
// and what the Session reads directly once the pair is selected (a
// directConn, direct.go): the datagram then goes from the shared reader to
// ReadRTP with no other goroutine in between.
//
// A remote address belongs to one call at a time, the first that writes to
// it or that it learns for, until that call leaves the port: a datagram
// from an address carries nothing else that says which call it is for
// (DTLS 1.2 has no connection id; pion's UDPMuxDefault has the same
// limit). So a call's write to an address that belongs to another live
// call on the port, or to the port itself, is dropped, not re-pointed
// (claim): that happens when the two ends of two calls are the same two
// addresses — a call between two accounts on this port (each end's host
// candidate is the port), or two concurrent calls between two trunks'
// shared ports. A binding request from an owned address that names
// another call's ufrag is dropped too (route): the owner would only discard
// it. The checks of that candidate pair then get no answer and the pair is
// Failed (RFC 8445 §6.1.2.6: a check that never produced a response); the
// other pairs go on and ICE selects one of them: a reflector or TURN
// candidate, on a socket of its own. A call left without one does not
// connect. Dropped writes are counted (conflicts) and logged once per call
// at debug; dropped checks are counted with the other datagrams of no
// call (unrouted).
type sharedMux struct {
	conn  *net.UDPConn
	laddr *net.UDPAddr
	log   *slog.Logger

	mu      sync.RWMutex
	byUfrag map[string]*muxConn
	byAddr  map[netip.AddrPort]*muxConn
	closed  bool

	done chan struct{}

	// w batches writes (sendmmsg) while they are held: during a batch of
	// the reader, a visit of the RTCP timer, or Transport.HoldWrites.
	w muxWriter

	unrouted atomic.Uint64
	// conflicts counts writes dropped because their address belongs to
	// another call or is the port's own (claim).
	conflicts atomic.Uint64
	// listen is what GetListenAddresses last returned (the host candidate
	// addresses of a port bound to the unspecified address).
	listen atomic.Pointer[[]netip.Addr]
}

var _ ice.UDPMux = (*sharedMux)(nil)

func newSharedMux(conn *net.UDPConn, log *slog.Logger) *sharedMux {
	m := &sharedMux{
		conn:    conn,
		laddr:   conn.LocalAddr().(*net.UDPAddr),
		log:     log,
		byUfrag: make(map[string]*muxConn),
		byAddr:  make(map[netip.AddrPort]*muxConn),
		done:    make(chan struct{}),
	}
	m.w.init(conn)
	go m.readLoop()
	return m
}

// GetListenAddresses implements ice.UDPMux: the socket's address, or every
// local address of its family but loopback and link-local when it is bound
// to the unspecified address (pion skips loopback for its own mux too).
func (m *sharedMux) GetListenAddresses() []net.Addr {
	if !m.laddr.IP.IsUnspecified() {
		return []net.Addr{m.laddr}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return []net.Addr{m.laddr}
	}
	var out []net.Addr
	var ips []netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLoopback() {
			continue
		}
		if m.laddr.IP.To4() != nil && ipn.IP.To4() == nil {
			continue // an IPv4 socket has no IPv6 candidates
		}
		out = append(out, &net.UDPAddr{IP: ipn.IP, Port: m.laddr.Port})
		if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
			ips = append(ips, ip.Unmap())
		}
	}
	m.listen.Store(&ips)
	return out
}

// isOwn reports whether a is this port's own address: what it is bound
// to, or, bound to the unspecified address, its port on a loopback or
// announced local address.
func (m *sharedMux) isOwn(a netip.AddrPort) bool {
	if int(a.Port()) != m.laddr.Port {
		return false
	}
	ip := a.Addr().Unmap()
	if !m.laddr.IP.IsUnspecified() {
		own, ok := netip.AddrFromSlice(m.laddr.IP)
		return ok && own.Unmap() == ip
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	if l := m.listen.Load(); l != nil {
		for _, x := range *l {
			if x == ip {
				return true
			}
		}
	}
	return false
}

// GetConn implements ice.UDPMux: the call's connection for ufrag, shared by
// all its host candidates on this port (one handle each).
func (m *sharedMux) GetConn(ufrag string, _ net.Addr) (net.PacketConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, io.ErrClosedPipe
	}
	c := m.byUfrag[ufrag]
	if c == nil {
		c = newMuxConn(m, ufrag)
		m.byUfrag[ufrag] = c
	}
	c.refs++
	return &muxHandle{muxConn: c, abortCh: make(chan struct{})}, nil
}

// RemoveConnByUfrag implements ice.UDPMux (the agent is closing).
func (m *sharedMux) RemoveConnByUfrag(ufrag string) {
	m.mu.Lock()
	c := m.byUfrag[ufrag]
	if c != nil {
		m.removeLocked(c)
	}
	m.mu.Unlock()
	if c != nil {
		c.shut()
	}
}

func (m *sharedMux) removeLocked(c *muxConn) {
	if m.byUfrag[c.ufrag] == c {
		delete(m.byUfrag, c.ufrag)
	}
	for a, x := range m.byAddr {
		if x == c {
			delete(m.byAddr, a)
		}
	}
}

// connFor is the call's connection for the Session's route.
func (m *sharedMux) connFor(ufrag string) *muxConn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byUfrag[ufrag]
}

// Close implements io.Closer: closes the socket and every call's connection
// and waits for the reader.
func (m *sharedMux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.done
		return nil
	}
	m.closed = true
	conns := make([]*muxConn, 0, len(m.byUfrag))
	for _, c := range m.byUfrag {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	err := m.conn.Close()
	<-m.done
	for _, c := range conns {
		c.shut()
	}
	return err
}

// route hands one datagram to its call (the shared reader only).
func (m *sharedMux) route(b []byte, from netip.AddrPort) {
	from = unmapAP(from)
	m.mu.RLock()
	c := m.byAddr[from]
	m.mu.RUnlock()
	if c == nil {
		c = m.learn(b, from)
		if c == nil {
			m.unrouted.Add(1)
			return
		}
	} else if isBindingRequest(b) {
		// A check from an owned address naming another call on the port
		// (the address is that call's peer too: see sharedMux) is for
		// neither: the owner would only discard it.
		if u, ok := requestUfrag(b); ok && u != c.ufrag {
			m.unrouted.Add(1)
			return
		}
	}
	c.deliver(b, from)
}

// isBindingRequest is a quick test for a STUN binding request (RFC 8489
// §5: message type 0x0001, then the length, then the magic cookie).
func isBindingRequest(b []byte) bool {
	return len(b) >= 20 && b[0] == 0 && b[1] == 1 && stun.IsMessage(b)
}

// requestUfrag is the local ufrag of a STUN binding request's USERNAME
// ("local:remote" as seen by the receiver, RFC 8445 §7.2.2).
func requestUfrag(b []byte) (string, bool) {
	if !isBindingRequest(b) {
		return "", false
	}
	msg := &stun.Message{Raw: append([]byte(nil), b...)}
	if msg.Decode() != nil {
		return "", false
	}
	var user stun.Username
	if user.GetFrom(msg) != nil {
		return "", false
	}
	ufrag, _, ok := cutColon(string(user))
	return ufrag, ok
}

// learn maps a new remote address to a call by the local ufrag of a STUN
// binding request's USERNAME.
func (m *sharedMux) learn(b []byte, from netip.AddrPort) *muxConn {
	ufrag, ok := requestUfrag(b)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.byAddr[from]; cur != nil {
		if cur.ufrag != ufrag {
			return nil // claimed meanwhile by another call (see route)
		}
		return cur
	}
	c := m.byUfrag[ufrag]
	if c != nil {
		m.byAddr[from] = c
	}
	return c
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// claim maps a remote address c sends to onto c (pion's checks go out
// before any answer comes back, as in UDPMuxDefault) and reports whether c
// may send there: false when the address belongs to another call on the
// port or is the port's own (see sharedMux), and the datagram must be
// dropped: its answers could not be told from the other call's datagrams.
func (m *sharedMux) claim(c *muxConn, to netip.AddrPort) bool {
	to = unmapAP(to)
	m.mu.RLock()
	cur := m.byAddr[to]
	m.mu.RUnlock()
	if cur == c {
		return true
	}
	ok := false
	if cur == nil && !m.isOwn(to) {
		m.mu.Lock()
		switch cur = m.byAddr[to]; {
		case cur == c:
			ok = true
		case cur != nil:
		case !m.closed && m.byUfrag[c.ufrag] == c:
			m.byAddr[to] = c
			ok = true
		default:
			ok = true // c has left the port: nothing to route back
		}
		m.mu.Unlock()
	}
	if !ok {
		m.conflicts.Add(1)
		if c.conflicted.CompareAndSwap(false, true) {
			m.log.Debug("remote address not used: it belongs to another call on the shared port or is the port itself",
				"remote", to, "own", cur == nil)
		}
	}
	return ok
}

// muxQueueLen bounds the datagrams queued for one call: at 50 pps a reader
// that is 300 ms late still loses nothing.
const muxQueueLen = 16

// muxConn is one call's share of the port: a bounded queue filled by the
// shared reader, read by pion's reader or, once the pair is selected, by
// ReadRTP (it is the call's directConn).
type muxConn struct {
	m     *sharedMux
	ufrag string
	refs  int // under m.mu
	d     demux

	qmu    sync.Mutex
	q      [muxQueueLen]muxPacket
	head   int
	n      int
	kicked bool
	note   chan struct{} // cap 1: the queue or the kick changed
	// sink is the Session that takes this call's datagrams inline, on the
	// shared reader, while it pushes (push.go); set only while q is empty.
	sink *Session

	dropped atomic.Uint64
	// conflicted: a write of this call was dropped by claim (logged once).
	conflicted atomic.Bool
}

type muxPacket struct {
	buf  []byte
	from netip.AddrPort
}

func newMuxConn(m *sharedMux, ufrag string) *muxConn {
	c := &muxConn{m: m, ufrag: ufrag, note: make(chan struct{}, 1)}
	c.d = newDemux(c)
	return c
}

func (c *muxConn) signal() {
	select {
	case c.note <- struct{}{}:
	default:
	}
}

// deliver queues one datagram (the shared reader); a full queue drops it.
// While the call pushes (push.go) and nothing is queued before it, the
// datagram is handled inline instead: demultiplexed, decrypted and handed
// to the push's deliver function on this goroutine.
func (c *muxConn) deliver(b []byte, from netip.AddrPort) {
	c.qmu.Lock()
	if s := c.sink; s != nil && c.n == 0 {
		c.qmu.Unlock()
		if s.sinkPacket(c, b, from) {
			return
		}
		c.qmu.Lock()
	}
	if c.n == muxQueueLen {
		c.qmu.Unlock()
		c.dropped.Add(1)
		return
	}
	p := &c.q[(c.head+c.n)%muxQueueLen]
	p.buf = append(p.buf[:0], b...)
	p.from = from
	c.n++
	sink := c.sink
	c.qmu.Unlock()
	c.signal()
	if sink != nil {
		sink.wakeReader() // the push loop drains the queue (attachSink)
	}
}

// popOrSink pops the oldest queued datagram into b, or, when nothing is
// queued, makes s the sink (push.go) and returns ok false.
func (c *muxConn) popOrSink(b []byte, s *Session) (int, netip.AddrPort, bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.n == 0 {
		c.sink = s
		return 0, netip.AddrPort{}, false
	}
	p := &c.q[c.head]
	n := copy(b, p.buf)
	from := p.from
	c.head = (c.head + 1) % muxQueueLen
	c.n--
	return n, from, true
}

// setSink sets or (nil) clears the inline sink.
func (c *muxConn) setSink(s *Session) {
	c.qmu.Lock()
	c.sink = s
	c.qmu.Unlock()
}

// read returns the next queued datagram; os.ErrDeadlineExceeded when kicked
// (SetReadDeadline in the past) or when abort is closed, net.ErrClosed once
// the connection is shut.
func (c *muxConn) read(b []byte, abort <-chan struct{}) (int, netip.AddrPort, error) {
	for {
		c.qmu.Lock()
		if c.n > 0 {
			p := &c.q[c.head]
			n := copy(b, p.buf)
			from := p.from
			c.head = (c.head + 1) % muxQueueLen
			c.n--
			more := c.n > 0
			c.qmu.Unlock()
			if more {
				c.signal() // another reader may be waiting
			}
			return n, from, nil
		}
		kicked := c.kicked
		c.qmu.Unlock()
		if kicked {
			c.signal()
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		select {
		case <-c.note:
		case <-abort:
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		case <-c.d.closed:
			return 0, netip.AddrPort{}, net.ErrClosed
		}
	}
}

// SetReadDeadline is the demux's kick: a time in the past makes reads
// return os.ErrDeadlineExceeded until it is cleared with the zero time.
// Other deadlines are not supported (nothing sets them) and clear it.
func (c *muxConn) SetReadDeadline(t time.Time) error {
	c.qmu.Lock()
	c.kicked = !t.IsZero() && !t.After(time.Now())
	c.qmu.Unlock()
	c.signal()
	return nil
}

// shut ends the connection: readers return net.ErrClosed.
func (c *muxConn) shut() { c.d.abort() }

func (c *muxConn) demuxer() *demux { return &c.d }

func (c *muxConn) readDirect(b []byte) (int, netip.AddrPort, error) {
	return c.read(b, nil)
}

// writeDirect sends b to addr, or queues it while the port's writes are
// held (muxWriter): a queued datagram the kernel refuses later is counted
// there, not returned.
func (c *muxConn) writeDirect(b []byte, addr netip.AddrPort) error {
	if c.m.w.write(b, addr) {
		return nil
	}
	_, err := c.m.conn.WriteToUDPAddrPort(b, addr)
	return err
}

// HoldWrites makes the media of this Transport's shared port (NewSharedPort)
// wait until ReleaseWrites, then go in one sendmmsg(2) system call per up
// to 32 datagrams instead of one sendto each: a caller that writes many
// calls' packets in a row — a bridge handling one batch of reads from its
// other leg — holds the writes around the row. Writes of other goroutines
// made meanwhile join the batch. Every HoldWrites needs its ReleaseWrites,
// soon: nothing held is sent before the last release. Without a shared
// port (or off Linux) both do nothing.
func (t *Transport) HoldWrites() {
	if m, ok := t.UDPMux.(*sharedMux); ok {
		m.w.hold()
	}
}

// ReleaseWrites ends a HoldWrites; the last release sends what was held.
func (t *Transport) ReleaseWrites() {
	if m, ok := t.UDPMux.(*sharedMux); ok {
		m.w.release()
	}
}

// muxHandle is one host candidate's view of the call's muxConn (pion
// aborts and closes each candidate's socket on its own).
type muxHandle struct {
	*muxConn
	abortOnce sync.Once
	abortCh   chan struct{}
	closeOnce sync.Once
}

// ReadFromAddrPort is pion's read (ice.AddrPortReaderWriter).
func (h *muxHandle) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return h.d.pionRead(b, h.rawRead, h.abortCh)
}

// rawRead is the handle's read of the queue for pion's reader.
func (h *muxHandle) rawRead(b []byte) (int, netip.AddrPort, error) { return h.read(b, h.abortCh) }

// WriteToAddrPort is pion's write: STUN checks; the address is mapped to
// this call for the answers. A write claim refuses is dropped as if lost
// on the way: the check times out and the pair fails.
func (h *muxHandle) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if !h.m.claim(h.muxConn, addr) {
		return len(b), nil
	}
	return h.m.conn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom implements net.PacketConn.
func (h *muxHandle) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := h.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo implements net.PacketConn.
func (h *muxHandle) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("media: shared port writes need a UDP address")
	}
	return h.WriteToAddrPort(b, ua.AddrPort())
}

// LocalAddr implements net.PacketConn.
func (h *muxHandle) LocalAddr() net.Addr { return h.m.laddr }

// SetDeadline: pion sets a deadline only to abort the candidate's reader.
func (h *muxHandle) SetDeadline(t time.Time) error { return h.SetReadDeadline(t) }

// SetReadDeadline aborts this handle's reader for a time in the past.
func (h *muxHandle) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		h.abortOnce.Do(func() { close(h.abortCh) })
	}
	return nil
}

// SetWriteDeadline implements net.PacketConn (writes do not block).
func (h *muxHandle) SetWriteDeadline(time.Time) error { return nil }

// Close releases the handle; the last one removes the call from the port.
func (h *muxHandle) Close() error {
	h.closeOnce.Do(func() {
		h.abortOnce.Do(func() { close(h.abortCh) })
		m := h.m
		m.mu.Lock()
		h.refs--
		last := h.refs == 0
		if last {
			m.removeLocked(h.muxConn)
		}
		m.mu.Unlock()
		if last {
			h.shut()
		}
	})
	return nil
}
