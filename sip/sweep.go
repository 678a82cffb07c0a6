package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Sockets sipgo opens by itself, and how Close keeps it from doing so.
//
// Our UDP requests leave from the listener's socket (prepareRequest sets
// Laddr; RFC 3261 §18.1.1 allows it and PBXs that match a trunk by source
// port need it), and responses go out on the socket the request came in
// on. sipgo v1.7.3 still opens a UDP socket of its own, read by a goroutine
// (TransportUDP.readUDPConnection), when it finds no connection for an
// address in its pool, and its pool's Clear (UserAgent.Close) only closes
// what the pool holds at that moment. Two ways lead there at Close:
//   - a request of ours sent after the listener closed: Laddr names the
//     listener's port, the pool no longer has it, so sipgo binds it anew;
//   - a request read just before the listener closed: sipgo handles each
//     message on a goroutine of its own (TransactionLayer.handleMessage);
//     one that looks the sender up (serverRequestConnection) after the
//     listener's reader removed it from the pool, or after Clear emptied
//     the pool, opens a socket for the response that nobody closes.
//
// So Close shuts our requests out (sendGate), makes the listeners deaf
// (senders.close: the read filter drops what they read from then on),
// waits until the UDP listener's reader has finished the message before
// (flushUDPReader: the next datagram it reads, its own, shows it), puts a
// dead connection under every recent sender in sipgo's UDP pool
// (shelterSenders; the listener's reader only removes its own entries),
// and never clears that pool while a UDP listener served (closeUA). A late
// handler then finds the dead connection and its response fails, as it
// would on the closed listener.

// errServerClosed is a request refused because the server has closed.
var errServerClosed = errors.New("sip: server closed")

// sendGate lets requests start until Close shuts it; close waits for the
// requests in flight.
type sendGate struct {
	mu     sync.RWMutex
	closed bool
}

// enter reports whether a request may be sent; if so, leave must follow
// once sipgo has the request (its connection is then in the pool).
func (g *sendGate) enter() bool {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *sendGate) leave() { g.mu.RUnlock() }

// close refuses every later request and waits for those in flight. Their
// dials and handshakes use untilHalt, so they end once halt is closed.
func (g *sendGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// senders remembers the UDP senders the listeners read from last (sipgo's
// pool key for a sender, Request.Source) until Close makes it deaf.
type senders struct {
	mu     sync.Mutex
	ring   [256]string
	next   int
	deaf   bool
	heard  chan struct{} // closed at the first UDP message read while deaf
	signal sync.Once
}

func newSenders() *senders { return &senders{heard: make(chan struct{})} }

// pass reports whether a message read from a may go to sipgo.
func (r *senders) pass(a net.Addr, udp bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deaf {
		if udp {
			r.signal.Do(func() { close(r.heard) })
		}
		return false
	}
	if udp && a != nil {
		s := a.String()
		// A sender usually sends several messages in a row: skip repeats.
		if r.ring[(r.next+len(r.ring)-1)%len(r.ring)] != s {
			r.ring[r.next] = s
			r.next = (r.next + 1) % len(r.ring)
		}
	}
	return true
}

// close makes the filter deaf and returns the distinct recent senders.
func (r *senders) close() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deaf = true
	seen := make(map[string]bool, len(r.ring))
	var out []string
	for _, a := range r.ring {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// deafFilter is next until Close; then it drops every message, so sipgo
// starts no more handlers that could open sockets.
func (s *Server) deafFilter(next sip.TransportReadFilter) sip.TransportReadFilter {
	return func(p sip.TransportReadProps, data []byte) ([]byte, error) {
		if !s.senders.pass(p.RemoteAddr, p.Transport == "UDP" || p.Transport == "udp") {
			return nil, nil
		}
		return next(p, data)
	}
}

// flushUDPReader sends the UDP listener a datagram of its own and waits
// until its reader has read it: the reader has then finished the message
// before, including sipgo's pool entry for that sender. Loopback does not
// lose it; the wait is bounded all the same.
func (s *Server) flushUDPReader() {
	s.mu.Lock()
	var c *net.UDPConn
	for _, cl := range s.closers {
		if u, ok := cl.(*net.UDPConn); ok {
			c = u
			break
		}
	}
	s.mu.Unlock()
	if c == nil {
		return
	}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return
	}
	to := la.AddrPort()
	if to.Addr().IsUnspecified() {
		lo := netip.IPv6Loopback()
		if to.Addr().Unmap().Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		to = netip.AddrPortFrom(lo, to.Port())
	}
	if _, err := c.WriteToUDPAddrPort([]byte("\r\n\r\n"), to); err != nil {
		return
	}
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-s.senders.heard:
	case <-t.C:
		s.log.Debug("UDP listener did not read its own datagram")
	}
}

// shelterSenders puts a dead connection in sipgo's UDP pool under each of
// addrs, where the listener was: a late handler of sipgo's finds it
// instead of an empty slot.
func (s *Server) shelterSenders(addrs []string) {
	udp := s.ua.TransportLayer().Pool("udp")
	if udp == nil {
		return
	}
	for _, a := range addrs {
		udp.Add(a, s.dead)
	}
}

// closeUA is UserAgent.Close (the transaction layer, then every transport's
// pool) except that the UDP pool is not cleared after a UDP listener
// served: that would drop the dead connections of shelterSenders. Every
// UDP message of ours then went through the listener, whose socket we
// close ourselves, so that pool holds no socket of sipgo's own.
func (s *Server) closeUA(udpListener bool) {
	s.ua.TransactionLayer().Close()
	tpl := s.ua.TransportLayer()
	for _, n := range []string{"udp", "tcp", "tls", "ws", "wss"} {
		if n == "udp" && udpListener {
			continue
		}
		if p := tpl.Pool(n); p != nil {
			if err := p.Clear(); err != nil {
				s.log.Debug("closing sipgo connections", "transport", n, "err", err)
			}
		}
	}
}

// newDeadConn stands in for a connection of a closed server in sipgo's
// pool: sipgo's UDP code wants a *UDPConnection, every write fails, and as
// a Listener sipgo never closes its PacketConn, which has no socket.
func newDeadConn() *sip.UDPConnection {
	return &sip.UDPConnection{PacketConn: deadPacketConn{}, PacketAddr: deadAddr.String(), Listener: true}
}

var deadAddr = &net.UDPAddr{IP: net.IPv4zero}

// deadPacketConn is a net.PacketConn that is closed from the start.
type deadPacketConn struct{}

func (deadPacketConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (deadPacketConn) WriteTo([]byte, net.Addr) (int, error)  { return 0, net.ErrClosed }
func (deadPacketConn) Close() error                           { return nil }
func (deadPacketConn) LocalAddr() net.Addr                    { return deadAddr }
func (deadPacketConn) SetDeadline(time.Time) error            { return nil }
func (deadPacketConn) SetReadDeadline(time.Time) error        { return nil }
func (deadPacketConn) SetWriteDeadline(time.Time) error       { return nil }
