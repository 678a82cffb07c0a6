package media

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// TURN allocations over UDP (RFC 8656) are made by the Session, not by
// pion's gatherer, for memory: pion/turn's Client.Listen reads the server's
// socket into a 64 KiB buffer (maxDataBufferSize) for the call's whole life,
// the largest single object of a call, and the agent gives no handle on an
// allocation it made. Here the socket is read into a datagram-sized buffer
// and the allocation is a virtual relay candidate of the agent, as the
// reflectors are. TURN over TCP or TLS (configured servers only; Telegram
// lists UDP servers, tgcalls allocates with PROTO_UDP) stays with pion.
//
// The candidate is the one pion would have gathered (type relay, relay
// protocol udp, pion's default priority, the related address the local
// socket), one allocation per server.

// turnOverhead is the TURN framing around data from a peer: a Data
// indication (STUN header 20, XOR-PEER-ADDRESS up to 24, DATA header 4,
// padding 3) or ChannelData (4 and padding).
const turnOverhead = 64

// isUDPTURN reports whether the Session allocates on u itself.
func isUDPTURN(u *stun.URI) bool {
	return u.Scheme == stun.SchemeTypeTURN && u.Proto == stun.ProtoTypeUDP
}

// turnPort is one TURN allocation of the call.
type turnPort struct {
	url  *stun.URI
	conn *net.UDPConn // the socket to the TURN server

	mu     sync.Mutex
	client *turn.Client
	relay  *relayConn // the allocation, once made
	closed bool

	cand    atomic.Pointer[ice.CandidateRelay]
	dropped atomic.Uint64
}

// startTURN begins an allocation on every UDP TURN server (Start).
func (s *Session) startTURN() {
	for _, u := range s.turnURLs {
		s.wg.Add(1)
		go s.runTURN(u)
	}
}

// runTURN allocates on one server and adds the relay candidate; the
// socket's reader runs in a goroutine of its own for the allocation's life.
func (s *Session) runTURN(u *stun.URI) {
	defer s.wg.Done()
	network := "udp4"
	if s.t.IPv6 {
		network = "udp"
	}
	server, err := net.ResolveUDPAddr(network, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	if err != nil {
		s.log.Debug("TURN server address", "url", u.String(), "err", err)
		return
	}
	sap := server.AddrPort()
	sap = netip.AddrPortFrom(sap.Addr().Unmap(), sap.Port())
	conn, err := listenUDP(s.t, sap)
	if err != nil {
		s.log.Warn("TURN socket", "url", u.String(), "err", err)
		return
	}
	p := &turnPort{url: u, conn: conn}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		_ = conn.Close() // the session ended while we resolved
		return
	}
	s.turns = append(s.turns, p)
	s.mu.Unlock()

	family := turn.RequestedAddressFamilyIPv4
	if sap.Addr().Is6() {
		family = turn.RequestedAddressFamilyIPv6
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr:         net.UDPAddrFromAddrPort(sap).String(),
		Username:               u.Username,
		Password:               u.Password,
		Conn:                   conn,
		Net:                    s.net, // not a netlink dump of its own
		LoggerFactory:          pionLoggerFactory{log: s.log},
		RequestedAddressFamily: family,
	})
	if err != nil {
		s.log.Warn("TURN client", "url", u.String(), "err", err)
		p.close()
		return
	}
	p.mu.Lock()
	p.client = client
	p.mu.Unlock()
	s.wg.Add(1)
	go s.readTURN(p, client)

	relay, err := client.AllocateWithContext(s.ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("TURN allocation", "url", u.String(), "err", err)
		}
		p.close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = relay.Close() // closed while allocating: release it at once
		return
	}
	p.relay = &relayConn{PacketConn: relay}
	p.mu.Unlock()

	local := conn.LocalAddr().(*net.UDPAddr)
	relayed := relay.LocalAddr().(*net.UDPAddr)
	cand, err := ice.NewCandidateRelay(&ice.CandidateRelayConfig{
		Network:       "udp",
		Address:       relayed.IP.String(),
		Port:          relayed.Port,
		Component:     ice.ComponentRTP,
		RelAddr:       local.IP.String(),
		RelPort:       local.Port,
		RelayProtocol: "udp",
	})
	if err != nil {
		s.log.Warn("TURN candidate", "url", u.String(), "err", err)
		p.close()
		return
	}
	p.cand.Store(cand)
	s.log.Debug("TURN allocation", "url", u.String(), "relayed", relayed.String())
	if err := s.agent.AddVirtualCandidate(cand, p.relay); err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("adding TURN candidate", "url", u.String(), "err", err)
		}
		p.close()
	}
}

// readTURN reads the server's socket for the client: responses to its
// requests, and data from peers, which it queues on the allocation.
func (s *Session) readTURN(p *turnPort, client *turn.Client) {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram+turnOverhead+1)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return // closed (a read deadline is never set on it)
		}
		if n > maxDatagram+turnOverhead {
			p.dropped.Add(1) // too large for us (maxDatagram)
			continue
		}
		// Malformed input is the server's or an attacker's problem, not
		// a reason to stop reading (pion's Listen would).
		_, _ = client.HandleInbound(buf[:n], from)
	}
}

// close releases the allocation (a Refresh with lifetime 0 to the server,
// without waiting), the client and the socket; idempotent.
func (p *turnPort) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	relay, client := p.relay, p.client
	p.mu.Unlock()
	if relay != nil {
		_ = relay.Close() // idempotent: the agent may have closed it already
	}
	if client != nil {
		client.Close()
	}
	_ = p.conn.Close() // ends readTURN
}

// closeTURN closes every allocation of the session.
func (s *Session) closeTURN() {
	s.mu.Lock()
	turns := s.turns
	s.mu.Unlock()
	for _, p := range turns {
		p.close()
	}
}

// relayConn is the allocation as the agent sees it and as the session
// closes it: closing is idempotent, and once the agent aborted its reader
// (a deadline in the past) or the allocation was closed, reads end with
// net.ErrClosed, which pion's reader takes as the end without logging
// (pion/turn returns errors of its own).
type relayConn struct {
	net.PacketConn
	once    sync.Once
	aborted atomic.Bool
}

// Close releases the allocation: a Refresh with lifetime 0, sent without
// waiting (the server lets the allocation expire if it is lost).
func (c *relayConn) Close() error {
	c.aborted.Store(true)
	c.once.Do(func() { _ = c.PacketConn.Close() })
	return nil
}

func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err != nil && c.aborted.Load() {
		return 0, nil, net.ErrClosed
	}
	return n, from, err
}

func (c *relayConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		c.aborted.Store(true)
	}
	return c.PacketConn.SetDeadline(t)
}

func (c *relayConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		c.aborted.Store(true)
	}
	return c.PacketConn.SetReadDeadline(t)
}
