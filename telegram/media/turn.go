package media

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// TURN allocations over UDP (RFC 8656) are made by the Session with a
// client of its own, for memory: pion/turn's client keeps three goroutines
// per allocation (PeriodicTimers for the allocation refresh, the permission
// refresh and the channel-binding check), a 1,024-slot read queue, and
// needs a reader goroutine of its own for the server's socket beside the
// agent's. Here the allocation is a virtual relay candidate of the agent,
// as the reflectors are: the agent's reader of the candidate reads the
// server's socket itself (ReadFromAddrPort), unwraps relayed data and
// consumes the server's responses; refreshes run on one runtime timer per
// allocation. TURN over TCP or TLS (configured servers only; Telegram lists
// UDP servers, tgcalls allocates with PROTO_UDP) stays with pion.
//
// The candidate is the one pion would have gathered (type relay, relay
// protocol udp, pion's default priority, the related address the local
// socket), one allocation per server.
//
// What goes on the wire follows libwebrtc's TurnPort (p2p/base/turn_port.cc),
// which tgcalls uses: an Allocate first without credentials, again with
// the realm and nonce of the 401 (long-term credentials, RFC 8489 §9.2);
// a Refresh a minute before the lifetime ends (ScheduleRefresh); per peer
// a ChannelBind on the first packet to it, data as Send indications until
// the binding is answered and as ChannelData after (TurnEntry::Send). One
// deviation: libwebrtc refreshes a peer's permission with CreatePermission
// every 4 minutes and its channel with ChannelBind every 9; here one
// ChannelBind every 4 minutes does both, as a ChannelBind also installs or
// refreshes the permission of the peer's address (RFC 8656 §12.2).

// turnOverhead is the TURN framing around data from a peer: a Data
// indication (STUN header 20, XOR-PEER-ADDRESS up to 24, DATA header 4,
// padding 3) or ChannelData (4 and padding).
const turnOverhead = 64

// stunMagicCookie is RFC 8489 §5's fixed value, the XOR key of addresses.
const stunMagicCookie = 0x2112A442

const (
	// turnRTO and turnRequestSends are RFC 8489 §6.2.1's retransmission
	// of a request over UDP: 500 ms doubling, 7 sends, then 16 RTO.
	turnRTO          = 500 * time.Millisecond
	turnRequestSends = 7
	// turnRetryMax caps the retry interval of an unanswered Refresh or
	// ChannelBind once the allocation is up.
	turnRetryMax = 30 * time.Second
	// turnBindRefresh is libwebrtc's permission refresh
	// (TURN_PERMISSION_TIMEOUT − 1 min), applied to the ChannelBind that
	// keeps both the permission and the channel.
	turnBindRefresh = 4 * time.Minute
	// turnMaxPeers bounds the peers (remote candidates) a call sends to
	// through the allocation; channel numbers are 0x4000–0x4FFF.
	turnMaxPeers     = 64
	turnFirstChannel = 0x4000
)

var (
	errTURNTimeout = errors.New("media: TURN server did not answer")
	errTURNPeers   = errors.New("media: too many TURN peers")
	// The message types the client sends and reads.
	turnAllocate   = stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	turnRefresh    = stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	turnBind       = stun.NewType(stun.MethodChannelBind, stun.ClassRequest)
	turnSend       = stun.NewType(stun.MethodSend, stun.ClassIndication)
	turnDataInd    = stun.NewType(stun.MethodData, stun.ClassIndication)
	udpTransport   = []byte{17, 0, 0, 0} // REQUESTED-TRANSPORT UDP (RFC 8656 §18.7)
	ipv6AddrFamily = []byte{2, 0, 0, 0}  // REQUESTED-ADDRESS-FAMILY IPv6 (§18.9)
)

// isUDPTURN reports whether the Session allocates on u itself.
func isUDPTURN(u *stun.URI) bool {
	return u.Scheme == stun.SchemeTypeTURN && u.Proto == stun.ProtoTypeUDP
}

// turnPeer is one remote transport address the call sends to through the
// allocation, with its channel.
type turnPeer struct {
	addr    netip.AddrPort
	channel uint16
	bound   bool      // ChannelBind answered: data goes as ChannelData
	due     time.Time // next ChannelBind (refresh, or retry when unanswered)
	tries   int       // ChannelBinds sent without an answer
	tx      [stun.TransactionIDSize]byte
}

// turnPort is one TURN allocation of the call. Once allocated it is the
// net.PacketConn (and pion's AddrPortReaderWriter) of its relay candidate:
// the only addresses it reaches are peers through the server.
type turnPort struct {
	url    *stun.URI
	conn   *net.UDPConn   // the socket to the TURN server
	server netip.AddrPort // unmapped
	log    *slog.Logger

	mu        sync.Mutex
	closed    bool
	realm     stun.Realm
	nonce     stun.Nonce
	integrity stun.MessageIntegrity
	relayed   netip.AddrPort
	lifetime  time.Duration
	refresh   turnPeer // the allocation's Refresh: due, tries, tx
	peers     map[netip.AddrPort]*turnPeer
	channels  []*turnPeer // by channel − turnFirstChannel
	timer     *time.Timer

	aborted atomic.Bool // closed, or pion aborted its reader
	cand    atomic.Pointer[ice.CandidateRelay]
	dropped atomic.Uint64

	rmsg stun.Message // the reader's (pion's reader of the candidate)
	wmu  sync.Mutex   // guards wmsg and wbuf (writers: the agent, the session)
	wmsg stun.Message
	wbuf []byte
}

// startTURN begins an allocation on every UDP TURN server (Start).
func (s *Session) startTURN() {
	for _, u := range s.turnURLs {
		s.wg.Add(1)
		go s.runTURN(u)
	}
}

// runTURN allocates on one server and adds the relay candidate; the
// goroutine ends then (the agent reads the allocation from there on).
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
	p := &turnPort{url: u, conn: conn, server: sap, log: s.log, peers: map[netip.AddrPort]*turnPeer{}}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		_ = conn.Close() // the session ended while we resolved
		return
	}
	s.turns = append(s.turns, p)
	s.mu.Unlock()

	if err := p.allocate(); err != nil {
		if s.ctx.Err() == nil && !p.aborted.Load() {
			s.log.Warn("TURN allocation", "url", u.String(), "err", err)
		}
		p.close()
		return
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	cand, err := ice.NewCandidateRelay(&ice.CandidateRelayConfig{
		Network:       "udp",
		Address:       p.relayed.Addr().String(),
		Port:          int(p.relayed.Port()),
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
	s.log.Debug("TURN allocation", "url", u.String(), "relayed", p.relayed.String())
	if err := s.agent.AddVirtualCandidate(cand, p); err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("adding TURN candidate", "url", u.String(), "err", err)
		}
		p.close()
	}
}

// allocate makes the allocation: an Allocate without credentials, which
// the server answers 401 with its realm and nonce, then with them (a 438
// Stale Nonce is retried with the new nonce). It reads the socket itself:
// the agent's reader starts only once the candidate exists.
func (p *turnPort) allocate() error {
	buf := make([]byte, maxDatagram+turnOverhead)
	for attempt := 0; attempt < 4; attempt++ {
		m, err := newRequest(turnAllocate)
		if err != nil {
			return err
		}
		m.Add(stun.AttrRequestedTransport, udpTransport)
		if p.server.Addr().Is6() {
			m.Add(stun.AttrRequestedAddressFamily, ipv6AddrFamily)
		}
		p.mu.Lock()
		err = p.authenticate(m)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		resp, err := p.transact(m, buf)
		if err != nil {
			return err
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return p.allocated(resp)
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(resp); err != nil {
			return fmt.Errorf("media: TURN Allocate: malformed error response: %w", err)
		}
		switch {
		case code.Code == stun.CodeUnauthorized && attempt == 0, code.Code == stun.CodeStaleNonce:
			p.mu.Lock()
			err := p.takeNonce(resp)
			p.mu.Unlock()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("media: TURN Allocate: %d %s", code.Code, code.Reason)
		}
	}
	return errors.New("media: TURN Allocate: authentication failed")
}

// allocated takes the relayed address and lifetime of the Allocate's
// success response and schedules the first Refresh.
func (p *turnPort) allocated(resp *stun.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.authentic(resp) {
		return errors.New("media: TURN Allocate response fails its MESSAGE-INTEGRITY")
	}
	relayed, ok := xorAddr(resp, stun.AttrXORRelayedAddress)
	if !ok {
		return errors.New("media: TURN Allocate response without a relayed address")
	}
	p.relayed = relayed
	p.lifetime = lifetimeOf(resp)
	p.refresh.due = time.Now().Add(refreshDelay(p.lifetime))
	if p.closed {
		return net.ErrClosed
	}
	p.armLocked(time.Now())
	return nil
}

// transact sends a request and waits for its response, retransmitting
// over UDP (RFC 8489 §6.2.1). Only the allocation uses it.
func (p *turnPort) transact(m *stun.Message, buf []byte) (*stun.Message, error) {
	rto := turnRTO
	for send := 1; ; send++ {
		if _, err := p.conn.WriteToUDPAddrPort(m.Raw, p.server); err != nil {
			return nil, err
		}
		wait := rto
		if send == turnRequestSends {
			wait = 16 * turnRTO
		}
		deadline := time.Now().Add(wait)
		if err := p.conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		for {
			n, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, err
			}
			if unmapped(from) != p.server || !stun.IsMessage(buf[:n]) {
				continue
			}
			resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if resp.Decode() != nil || resp.TransactionID != m.TransactionID {
				continue
			}
			_ = p.conn.SetReadDeadline(time.Time{})
			return resp, nil
		}
		if send == turnRequestSends {
			return nil, errTURNTimeout
		}
		rto *= 2
	}
}

// authenticate adds the long-term credential attributes (once the realm
// and nonce are known) and the fingerprint, and encodes m; under mu.
func (p *turnPort) authenticate(m *stun.Message) error {
	if p.realm != nil {
		for _, a := range []stun.Setter{stun.NewUsername(p.url.Username), p.realm, p.nonce, p.integrity} {
			if err := a.AddTo(m); err != nil {
				return err
			}
		}
	}
	return stun.Fingerprint.AddTo(m)
}

// authentic reports whether a success response carries our credentials'
// MESSAGE-INTEGRITY (any response while none are in use); under mu.
func (p *turnPort) authentic(m *stun.Message) bool {
	return p.realm == nil || p.integrity.Check(m) == nil
}

// newRequest is a request of type t with a new transaction id and its
// header written, ready for attributes.
func newRequest(t stun.MessageType) (*stun.Message, error) {
	m := stun.New()
	m.Type = t
	if err := m.NewTransactionID(); err != nil {
		return nil, err
	}
	m.WriteHeader()
	return m, nil
}

// takeNonce takes the realm and nonce of a 401 or 438; under mu.
func (p *turnPort) takeNonce(resp *stun.Message) error {
	var realm stun.Realm
	var nonce stun.Nonce
	if err := realm.GetFrom(resp); err != nil {
		if p.realm == nil {
			return fmt.Errorf("media: TURN: no realm from the server: %w", err)
		}
		realm = p.realm // a 438 may leave it out
	}
	if err := nonce.GetFrom(resp); err != nil {
		return fmt.Errorf("media: TURN: no nonce from the server: %w", err)
	}
	p.realm, p.nonce = realm, nonce
	p.integrity = stun.NewLongTermIntegrity(p.url.Username, realm.String(), p.url.Password)
	return nil
}

// refreshDelay is libwebrtc's TurnPort::ScheduleRefresh: a minute before
// the lifetime ends, half of it below two minutes, at most 59 minutes.
func refreshDelay(lifetime time.Duration) time.Duration {
	switch {
	case lifetime < 2*time.Minute:
		return lifetime / 2
	case lifetime > time.Hour:
		return time.Hour - time.Minute
	}
	return lifetime - time.Minute
}

// lifetimeOf reads LIFETIME (RFC 8656 §18.2); the default 600 s without.
func lifetimeOf(m *stun.Message) time.Duration {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return 600 * time.Second
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

// channelData splits a ChannelData message (RFC 8656 §12.4: the first two
// bits 01, a channel number, a length, the data): isChannelData says pkt
// is one, and data is nil when its length runs past the datagram.
// Padding after the data is ignored, as over UDP it may be absent.
func channelData(pkt []byte) (channel uint16, data []byte, isChannelData bool) {
	if len(pkt) < 4 || pkt[0]&0xC0 != 0x40 {
		return 0, nil, false
	}
	channel = binary.BigEndian.Uint16(pkt)
	length := int(binary.BigEndian.Uint16(pkt[2:]))
	if 4+length > len(pkt) {
		return channel, nil, true
	}
	return channel, pkt[4 : 4+length], true
}

// xorAddr reads an XOR address attribute (RFC 8489 §14.2) without
// allocating.
func xorAddr(m *stun.Message, t stun.AttrType) (netip.AddrPort, bool) {
	v, err := m.Get(t)
	if err != nil || len(v) < 8 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(v[2:]) ^ uint16(stunMagicCookie>>16)
	var key [16]byte
	binary.BigEndian.PutUint32(key[:], stunMagicCookie)
	copy(key[4:], m.TransactionID[:])
	switch v[1] {
	case 1:
		if len(v) != 8 {
			return netip.AddrPort{}, false
		}
		var a [4]byte
		for i := range a {
			a[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(a), port), true
	case 2:
		if len(v) != 20 {
			return netip.AddrPort{}, false
		}
		var a [16]byte
		for i := range a {
			a[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

// armLocked sets the timer to the earliest due Refresh or ChannelBind;
// under mu.
func (p *turnPort) armLocked(now time.Time) {
	if p.closed {
		return
	}
	next := p.refresh.due
	for _, peer := range p.peers {
		if peer.due.Before(next) {
			next = peer.due
		}
	}
	d := max(next.Sub(now), 0)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.onTimer)
		return
	}
	p.timer.Reset(d)
}

// onTimer sends what is due: the allocation's Refresh and the peers'
// ChannelBinds, each retried (RTO doubling up to turnRetryMax) until
// answered. Their responses come through the agent's reader.
func (p *turnPort) onTimer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := time.Now()
	if !p.refresh.due.After(now) {
		p.sendLocked(&p.refresh, now, turnRefresh, func(m *stun.Message) {
			m.Add(stun.AttrLifetime, lifetimeValue(p.lifetime))
		})
	}
	for _, peer := range p.peers {
		if !peer.due.After(now) {
			p.sendBindLocked(peer, now)
		}
	}
	p.armLocked(now)
}

// sendLocked sends one authenticated request built by fill and arms its
// retry; under mu.
func (p *turnPort) sendLocked(r *turnPeer, now time.Time, t stun.MessageType, fill func(*stun.Message)) {
	m, err := newRequest(t)
	if err != nil {
		return
	}
	fill(m)
	if err := p.authenticate(m); err != nil {
		return
	}
	r.tx = m.TransactionID
	r.due = now.Add(min(turnRTO<<min(r.tries, 6), turnRetryMax))
	r.tries++
	if _, err := p.conn.WriteToUDPAddrPort(m.Raw, p.server); err != nil {
		p.log.Debug("TURN request", "url", p.url.String(), "err", err)
	}
}

func (p *turnPort) sendBindLocked(peer *turnPeer, now time.Time) {
	p.sendLocked(peer, now, turnBind, func(m *stun.Message) {
		var ch [4]byte
		binary.BigEndian.PutUint16(ch[:], peer.channel)
		m.Add(stun.AttrChannelNumber, ch[:])
		addXORAddr(m, stun.AttrXORPeerAddress, peer.addr)
	})
}

// lifetimeValue is a LIFETIME attribute's value.
func lifetimeValue(d time.Duration) []byte {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(d/time.Second))
	return v[:]
}

// addXORAddr adds an XOR address attribute (RFC 8489 §14.2); m's
// transaction id must be set first.
func addXORAddr(m *stun.Message, t stun.AttrType, a netip.AddrPort) {
	var key [16]byte
	binary.BigEndian.PutUint32(key[:], stunMagicCookie)
	copy(key[4:], m.TransactionID[:])
	var v [20]byte
	binary.BigEndian.PutUint16(v[2:], a.Port()^uint16(stunMagicCookie>>16))
	ip := a.Addr().Unmap()
	n := 8
	if ip.Is4() {
		v[1] = 1
		b := ip.As4()
		for i := range b {
			v[4+i] = b[i] ^ key[i]
		}
	} else {
		v[1] = 2
		b := ip.As16()
		for i := range b {
			v[4+i] = b[i] ^ key[i]
		}
		n = 20
	}
	m.Add(t, v[:n])
}

// handleResponse takes a response from the server to a Refresh or a
// ChannelBind; the agent's reader calls it.
func (p *turnPort) handleResponse(m *stun.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	r := &p.refresh
	if r.tx != m.TransactionID {
		r = nil
		for _, peer := range p.peers {
			if peer.tx == m.TransactionID {
				r = peer
				break
			}
		}
		if r == nil {
			return // a retransmission's late answer, or not ours
		}
	}
	now := time.Now()
	if m.Type.Class == stun.ClassSuccessResponse {
		if !p.authentic(m) {
			return // not from the server that holds our credentials
		}
		r.tx, r.tries = [stun.TransactionIDSize]byte{}, 0
		if r == &p.refresh {
			p.lifetime = lifetimeOf(m)
			r.due = now.Add(refreshDelay(p.lifetime))
		} else {
			r.bound = true
			r.due = now.Add(turnBindRefresh)
		}
		p.armLocked(now)
		return
	}
	var code stun.ErrorCodeAttribute
	if code.GetFrom(m) != nil {
		return
	}
	r.tx = [stun.TransactionIDSize]byte{}
	if code.Code == stun.CodeStaleNonce && p.takeNonce(m) == nil {
		r.due = now // again at once with the new nonce
	} else {
		p.log.Debug("TURN request refused", "url", p.url.String(), "channel", r.channel, "code", int(code.Code), "reason", string(code.Reason))
		r.due = now.Add(turnRetryMax)
	}
	p.armLocked(now)
}

// peerLocked returns the peer for addr, binding a channel to it on first
// use; nil when no more peers fit. Under mu.
func (p *turnPort) peerLocked(addr netip.AddrPort) *turnPeer {
	if peer := p.peers[addr]; peer != nil {
		return peer
	}
	if len(p.peers) >= turnMaxPeers {
		return nil
	}
	peer := &turnPeer{addr: addr, channel: turnFirstChannel + uint16(len(p.channels))}
	p.peers[addr] = peer
	p.channels = append(p.channels, peer)
	now := time.Now()
	p.sendBindLocked(peer, now)
	p.armLocked(now)
	return peer
}

// WriteToAddrPort sends b to the peer addr through the allocation.
func (p *turnPort) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if len(b) > maxDatagram {
		return 0, io.ErrShortBuffer
	}
	addr = unmapped(addr)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, net.ErrClosed
	}
	peer := p.peerLocked(addr)
	if peer == nil {
		p.mu.Unlock()
		return 0, errTURNPeers
	}
	bound, channel := peer.bound, peer.channel
	p.mu.Unlock()

	p.wmu.Lock()
	defer p.wmu.Unlock()
	var out []byte
	if bound { // ChannelData (RFC 8656 §12.4); no padding over UDP
		out = append(p.wbuf[:0], byte(channel>>8), byte(channel), byte(len(b)>>8), byte(len(b)))
		out = append(out, b...)
		p.wbuf = out
	} else { // Send indication (§11.1)
		m := &p.wmsg
		m.Reset()
		m.Type = turnSend
		if _, err := rand.Read(m.TransactionID[:]); err != nil {
			return 0, err
		}
		m.WriteHeader()
		addXORAddr(m, stun.AttrXORPeerAddress, addr)
		m.Add(stun.AttrData, b)
		out = m.Raw
	}
	if _, err := p.conn.WriteToUDPAddrPort(out, p.server); err != nil {
		return 0, err
	}
	return len(b), nil
}

// ReadFromAddrPort returns the next datagram relayed from a peer: a Data
// indication or ChannelData from the server, unwrapped into b. Responses
// to our Refresh and ChannelBind requests are consumed on the way. It is
// called by the agent's reader of the candidate only.
func (p *turnPort) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(b)
		if err != nil {
			if p.aborted.Load() {
				return 0, netip.AddrPort{}, net.ErrClosed // pion's reader ends quietly
			}
			return 0, netip.AddrPort{}, err
		}
		if unmapped(from) != p.server {
			continue // the socket talks to the server only
		}
		pkt := b[:n]
		if channel, data, isCD := channelData(pkt); isCD {
			if data == nil {
				continue
			}
			if len(data) > maxDatagram {
				p.dropped.Add(1) // too large for us (maxDatagram)
				continue
			}
			p.mu.Lock()
			var peer netip.AddrPort
			if i := int(channel) - turnFirstChannel; i >= 0 && i < len(p.channels) {
				peer = p.channels[i].addr
			}
			p.mu.Unlock()
			if !peer.IsValid() {
				continue
			}
			return copy(b, data), peer, nil
		}
		if !stun.IsMessage(pkt) {
			continue
		}
		m := &p.rmsg
		m.Raw = pkt
		if m.Decode() != nil {
			continue
		}
		switch {
		case m.Type == turnDataInd:
			peer, ok := xorAddr(m, stun.AttrXORPeerAddress)
			data, err := m.Get(stun.AttrData)
			if !ok || err != nil {
				continue
			}
			if len(data) > maxDatagram {
				p.dropped.Add(1)
				continue
			}
			m.Raw = nil // it is b, the caller's
			return copy(b, data), peer, nil
		case m.Type.Class == stun.ClassSuccessResponse || m.Type.Class == stun.ClassErrorResponse:
			p.handleResponse(m)
		}
		m.Raw = nil
	}
}

func (p *turnPort) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := p.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (p *turnPort) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, net.InvalidAddrError("media: TURN peer is not a UDP address")
	}
	return p.WriteToAddrPort(b, ua.AddrPort())
}

// LocalAddr is the relayed address.
func (p *turnPort) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(p.relayed) }

// Close releases the allocation; the agent closes its candidate with it.
func (p *turnPort) Close() error {
	p.close()
	return nil
}

// A read deadline in the past is how pion aborts its reader: reads end
// with net.ErrClosed from then on.
func (p *turnPort) SetDeadline(t time.Time) error {
	p.noteAbort(t)
	return p.conn.SetDeadline(t)
}

func (p *turnPort) SetReadDeadline(t time.Time) error {
	p.noteAbort(t)
	return p.conn.SetReadDeadline(t)
}

func (p *turnPort) SetWriteDeadline(t time.Time) error { return p.conn.SetWriteDeadline(t) }

func (p *turnPort) noteAbort(t time.Time) {
	if !t.IsZero() && !t.After(time.Now()) {
		p.aborted.Store(true)
	}
}

// close releases the allocation (a Refresh with lifetime 0, sent without
// waiting: the server lets the allocation expire if it is lost), stops the
// timer and closes the socket, which ends the agent's reader; idempotent.
func (p *turnPort) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.relayed.IsValid() {
		var r turnPeer
		p.sendLocked(&r, time.Now(), turnRefresh, func(m *stun.Message) {
			m.Add(stun.AttrLifetime, lifetimeValue(0))
		})
	}
	p.closed = true
	p.mu.Unlock()
	p.aborted.Store(true)
	_ = p.conn.Close()
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

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
