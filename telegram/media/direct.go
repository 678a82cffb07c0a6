package media

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// The direct media path (docs/media-performance.md, option A).
//
// pion/ice reads every socket of a call in a goroutine of its own
// (candidateBase.recvLoop), checks each datagram and queues it into the
// agent's buffer, from which ice.Conn.Read copies it out again: two
// goroutine hand-offs per packet. Once a pair is selected, the Session
// instead reads the selected socket itself, in ReadRTP, and demultiplexes
// by the first byte (RFC 7983 §7): SRTP/SRTCP (128–191) and DTLS (20–63)
// from the selected remote are handled inline; everything else — STUN
// (0–3: consent freshness, RFC 7675, keepalives, renomination) and any
// datagram from another address — is handed to pion's reader of that
// socket, which is parked on a small queue while the Session owns the
// socket, and takes pion's normal path (STUN handling, the check that the
// sender is a known remote candidate, the agent's buffer).
//
// Whatever reaches the agent's buffer (before a pair is selected, TURN,
// pion's shared-port mux, media from a non-selected remote during a
// selected-pair change) is read by the pump goroutine and queued for
// ReadRTP, which it wakes. A selected-pair change is therefore lossless: a
// socket that is given back to pion's reader keeps its unread datagrams in
// the kernel, and pion's reader delivers them through the agent's buffer
// and the pump. It is not ordered: a datagram pion's reader had read just
// before the take reaches ReadRTP through the agent's buffer and the pump,
// after datagrams ReadRTP read directly meanwhile (a reorder of one or two
// packets per change, which the jitter buffer or the far end's absorbs).
//
// Writes go straight to the selected remote (WriteToUDPAddrPort, or the
// reflector's wrapping), skipping pion's per-write checks.

// directConn is a socket the Session can read and write itself: a host
// socket (hostConn) or a reflector port.
type directConn interface {
	demuxer() *demux
	// readDirect reads the next datagram for the Session (a reflector port
	// unwraps it and consumes service packets).
	readDirect(b []byte) (int, netip.AddrPort, error)
	// writeDirect sends b to addr.
	writeDirect(b []byte, addr netip.AddrPort) error
}

// demux is the ownership state of one socket between pion's reader and the
// Session's ReadRTP.
type demux struct {
	raw readDeadliner // the socket, or a shared-port queue

	taken   atomic.Bool   // ReadRTP owns the socket; pion's reader is parked
	parked  chan struct{} // pion's reader signals it is parked (cap 1)
	wake    chan struct{} // release wakes pion's reader (cap 1)
	toPion  chan *pionPacket
	closed  chan struct{} // pion aborted or closed the socket
	closeMu sync.Once
	gone    atomic.Bool // closed (read side): ReadRTP must not take it again
}

// readDeadliner is what the demux kicks: a read deadline in the past wakes
// the socket's reader.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

type pionPacket struct {
	buf  []byte
	from netip.AddrPort
}

// toPionQueue bounds what ReadRTP hands to pion's reader: STUN checks and
// stray datagrams, a few per second. A full queue drops (STUN retransmits).
const toPionQueue = 16

var pionPackets = sync.Pool{New: func() any { return &pionPacket{buf: make([]byte, 0, 1500)} }}

func newDemux(raw readDeadliner) demux {
	return demux{
		raw:    raw,
		parked: make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		toPion: make(chan *pionPacket, toPionQueue),
		closed: make(chan struct{}),
	}
}

func (d *demux) abort() {
	d.gone.Store(true)
	d.closeMu.Do(func() { close(d.closed) })
}

// pionRead is what pion's reader of the socket gets: the socket's next
// datagram while the Session does not own it, else what the Session hands
// over. raw reads the socket (a reflector port unwraps); a closed abort
// (one shared-port candidate closing) ends the read.
func (d *demux) pionRead(b []byte, raw func([]byte) (int, netip.AddrPort, error), abort <-chan struct{}) (int, netip.AddrPort, error) {
	for {
		select {
		case <-abort:
			return 0, netip.AddrPort{}, net.ErrClosed
		default:
		}
		if d.taken.Load() {
			select {
			case d.parked <- struct{}{}:
			default:
			}
			select {
			case p := <-d.toPion:
				n := copy(b, p.buf)
				from := p.from
				pionPackets.Put(p)
				return n, from, nil
			case <-d.wake:
				continue
			case <-abort:
				return 0, netip.AddrPort{}, net.ErrClosed
			case <-d.closed:
				return 0, netip.AddrPort{}, net.ErrClosed
			}
		}
		n, from, err := raw(b)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !d.gone.Load() {
				// Kicked out of the read by a take (parks above), or a
				// kick meant for ReadRTP outlived its read and the socket
				// was given back: clear it, or every read would time out.
				// A take that starts after the check below sets its
				// deadline after this clear, so it is not lost.
				if !d.taken.Load() {
					_ = d.raw.SetReadDeadline(time.Time{})
				}
				continue
			}
			return n, from, err
		}
		return n, from, nil
	}
}

// handToPion queues one datagram for pion's reader (ReadRTP only).
func (d *demux) handToPion(b []byte, from netip.AddrPort) {
	p := pionPackets.Get().(*pionPacket)
	p.buf = append(p.buf[:0], b...)
	p.from = from
	select {
	case d.toPion <- p:
	default:
		pionPackets.Put(p)
	}
}

// parkWait bounds how long a take waits for pion's reader to leave the
// socket. Past it both read the socket, which is still correct (what pion
// reads takes pion's path and the pump).
const parkWait = 200 * time.Millisecond

// take gives the socket to ReadRTP: pion's reader is kicked out of its read
// (a read deadline in the past) and parks before the deadline is cleared.
func (d *demux) take(done <-chan struct{}) {
	select { // a stale token from an earlier take
	case <-d.parked:
	default:
	}
	d.taken.Store(true)
	_ = d.raw.SetReadDeadline(time.Unix(1, 0)) // closed socket: the read fails, handled there
	t := time.NewTimer(parkWait)
	select {
	case <-d.parked:
	case <-d.closed:
	case <-done:
	case <-t.C:
	}
	t.Stop()
	_ = d.raw.SetReadDeadline(time.Time{})
}

// release gives the socket back to pion's reader; datagrams not yet read
// stay in the socket for it.
func (d *demux) release() {
	d.taken.Store(false)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// kick makes ReadRTP's blocked read of the socket return (a timeout).
func (d *demux) kick() { _ = d.raw.SetReadDeadline(time.Unix(1, 0)) }

// unkick clears a kick (ReadRTP only, after its read timed out).
func (d *demux) unkick() { _ = d.raw.SetReadDeadline(time.Time{}) }

// hostConn is a host candidate's socket as pion sees it (through
// sessionNet.ListenUDP): reads go through the demux; writes go to the
// socket. It implements transport.UDPConn and ice.AddrPortReaderWriter;
// pion reads it only through ReadFromAddrPort.
type hostConn struct {
	*net.UDPConn
	d demux
}

func (c *hostConn) demuxer() *demux { return &c.d }

func (c *hostConn) readDirect(b []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(b)
}

func (c *hostConn) writeDirect(b []byte, addr netip.AddrPort) error {
	_, err := c.UDPConn.WriteToUDPAddrPort(b, addr)
	return err
}

// ReadFromAddrPort is pion's read (ice.AddrPortReaderWriter).
func (c *hostConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.d.pionRead(b, c.UDPConn.ReadFromUDPAddrPort, nil)
}

// WriteToAddrPort is pion's write (ice.AddrPortReaderWriter).
func (c *hostConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom implements net.PacketConn through the demux.
func (c *hostConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDP implements transport.UDPConn through the demux.
func (c *hostConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// SetDeadline is how pion aborts its reader before closing a candidate.
func (c *hostConn) SetDeadline(t time.Time) error {
	c.abortIfPast(t)
	return c.UDPConn.SetDeadline(t)
}

// SetReadDeadline: see SetDeadline.
func (c *hostConn) SetReadDeadline(t time.Time) error {
	c.abortIfPast(t)
	return c.UDPConn.SetReadDeadline(t)
}

func (c *hostConn) abortIfPast(t time.Time) {
	if !t.IsZero() && !t.After(time.Now()) {
		c.d.abort()
	}
}

// Close closes the socket and wakes a parked pion reader.
func (c *hostConn) Close() error {
	c.d.abort()
	return c.UDPConn.Close()
}

// sessionNet is the transport.Net of one call's agent: the standard
// network, except that UDP sockets pion listens on (host candidates) are
// hostConns the Session can take over.
type sessionNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns []*hostConn
}

func newSessionNet() (*sessionNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &sessionNet{Net: n}, nil
}

// ListenUDP opens a host socket wrapped as a hostConn.
func (n *sessionNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	hc := &hostConn{UDPConn: c, d: newDemux(c)}
	n.mu.Lock()
	n.conns = append(n.conns, hc)
	n.mu.Unlock()
	return hc, nil
}

// byLocal finds the host socket of a local candidate.
func (n *sessionNet) byLocal(c ice.Candidate) *hostConn {
	if n == nil {
		return nil
	}
	var match func(hc *hostConn) bool
	switch c.Type() {
	case ice.CandidateTypeHost:
		ip, err := netip.ParseAddr(c.Address())
		if err != nil {
			return nil
		}
		want := netip.AddrPortFrom(ip.Unmap(), uint16(c.Port()))
		match = func(hc *hostConn) bool { return unmapAP(hc.UDPConn.LocalAddr().(*net.UDPAddr).AddrPort()) == want }
	case ice.CandidateTypeServerReflexive:
		// pion gathers a server-reflexive candidate on a socket of its
		// own (bound to the unspecified address), its related address.
		ra := c.RelatedAddress()
		if ra == nil {
			return nil
		}
		match = func(hc *hostConn) bool { return hc.UDPConn.LocalAddr().(*net.UDPAddr).Port == ra.Port }
	default:
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, hc := range n.conns {
		if match(hc) {
			return hc
		}
	}
	return nil
}

// route is where media goes: the selected pair's socket (nil: pion's
// path, for TURN and the shared-port mux) and remote address.
type route struct {
	conn   directConn
	remote netip.AddrPort
}

// handleSelectedPair follows pion's selected pair: writes use the new route
// at once; ReadRTP is woken to take the new socket.
func (s *Session) handleSelectedPair(local, remote ice.Candidate) {
	r := &route{}
	if ip, err := netip.ParseAddr(remote.Address()); err == nil {
		r.remote = netip.AddrPortFrom(ip.Unmap(), uint16(remote.Port()))
	}
	if hc := s.net.byLocal(local); hc != nil && r.remote.IsValid() {
		r.conn = hc
	}
	if m, ok := s.t.UDPMux.(*sharedMux); ok && r.remote.IsValid() && local.Type() == ice.CandidateTypeHost && local.Port() == m.laddr.Port {
		if c := m.connFor(s.ufrag); c != nil {
			r.conn = c
		}
	}
	for _, p := range s.ports {
		if rc, ok := local.(*ice.CandidateRelay); ok && rc == p.cand.Load() {
			r.conn = p
			r.remote = p.addr
		}
	}
	if r.conn != nil && r.conn.demuxer().gone.Load() {
		r.conn = nil
	}
	s.log.Debug("selected pair", "local", local.String(), "remote", remote.String(), "direct", r.conn != nil)
	s.route.Store(r)
	s.wakeReader()
	s.noteSelectedPair(local)
}

// sideQueue holds datagrams for ReadRTP that did not come from its own
// read: from the agent's buffer (pump). Buffers are kept and reused.
type sideQueue struct {
	mu   sync.Mutex
	pkts [sideQueueLen]sidePacket
	head int
	n    atomic.Int32
	note chan struct{} // cap 1: something was queued
}

const sideQueueLen = 32

type sidePacket struct {
	buf []byte
}

func (q *sideQueue) push(b []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(q.n.Load()) == sideQueueLen {
		return false
	}
	p := &q.pkts[(q.head+int(q.n.Load()))%sideQueueLen]
	p.buf = append(p.buf[:0], b...)
	q.n.Add(1)
	return true
}

// pop copies the oldest datagram into b.
func (q *sideQueue) pop(b []byte) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n.Load() == 0 {
		return 0, false
	}
	p := &q.pkts[q.head]
	n := copy(b, p.buf)
	q.head = (q.head + 1) % sideQueueLen
	q.n.Add(-1)
	return n, true
}

// pump reads the agent's buffer for the whole session: DTLS goes to the
// DTLS endpoint, SRTP/SRTCP to the side queue for ReadRTP (dropped before
// the keys exist: the peer may finish its handshake before we do).
func (s *Session) pump(conn *ice.Conn) {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram+1) // one more: a larger datagram shows
	for {
		n, err := conn.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) || n > maxDatagram {
			s.st.dropped.Add(1) // too large for us (maxDatagram); consumed
			continue
		}
		if err != nil {
			return
		}
		pkt := buf[:n]
		switch classify(pkt) {
		case kindDTLS:
			s.dtlsEP.deliver(pkt)
		case kindRTP, kindRTCP:
			if s.keys.Load() == nil {
				s.st.earlyDropped.Add(1)
				continue
			}
			if !s.side.push(pkt) {
				s.st.dropped.Add(1)
				continue
			}
			s.wakeReader()
		}
	}
}

// wakeReader makes ReadRTP look at the side queue and the route: its
// blocked socket read is kicked, or its wait on the side queue ended.
func (s *Session) wakeReader() {
	if d := s.reading.Load(); d != nil {
		d.kick()
	}
	select {
	case s.side.note <- struct{}{}:
	default:
	}
}
