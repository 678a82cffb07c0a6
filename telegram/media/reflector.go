package media

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"

	"github.com/tgsip/tgsip/telegram/wire"
)

// Reflector is one Telegram reflector of the call, from the phoneConnection
// list. ServerID is computed by the engine (index of the connection id in the
// sorted id list, plus one; tgcalls.md §5.1); PeerTag is the connection's
// 16-byte peer_tag.
type Reflector struct {
	ServerID uint8
	Addr     netip.AddrPort
	PeerTag  [16]byte
	// TCP reflectors are not supported yet and are skipped (tgcalls@dev
	// NativeNetworkingImpl skips them too).
	TCP bool
}

// The datagram layout (tgcalls v2/ReflectorPort.cpp, tgcalls.md §5.2) lives
// in telegram/wire; these are the port's timing constants.
const (
	helloIntervalConnecting = 500 * time.Millisecond
	helloIntervalReady      = 10 * time.Second
	reflectorOverhead       = 16 + 4 + 4 + 3 // tag, sender, length, padding
)

// reflectorPacket classifies a datagram received from a reflector.
type reflectorPacket int

const (
	reflectorInvalid reflectorPacket = iota // wrong call tag or malformed: ignore
	reflectorService                        // hello reply / ping: proves the reflector answers
	reflectorData                           // data from a peer
)

// unwrapReflector checks a datagram from the reflector against our call's
// tag (tgcalls compares only the first 12 bytes) and returns the sender's
// random and the payload, which aliases b.
func unwrapReflector(b []byte, own wire.Tag) (reflectorPacket, uint32, []byte) {
	p, err := wire.ParseFromReflector(b)
	if err != nil || !p.Tag.SameCall(own) {
		return reflectorInvalid, 0, nil
	}
	if p.Service {
		return reflectorService, 0, nil
	}
	return reflectorData, p.SenderRandom, p.Data
}

var (
	errNotReflector   = errors.New("media: destination is not this reflector")
	errNoRemoteTag    = errors.New("media: no remote reflector tag known yet")
	errReflectorTrunc = errors.New("media: datagram too large for reflector")
)

// reflectorPort is the socket of one reflector. Until the reflector answers
// a hello it is read by its hello loop; afterwards it is a virtual relay
// candidate of the ICE agent, which reads it through ReadFromAddrPort.
//
// It implements net.PacketConn and pion's AddrPortReaderWriter; the only
// address it can reach is the reflector's, which stands for the one remote
// peer tag learnt from signaling.
type reflectorPort struct {
	Reflector
	addr    netip.AddrPort // reflector address, unmapped
	udpAddr *net.UDPAddr
	ownTag  uint32   // our random
	own     wire.Tag // peer_tag[0:12] || ownTag
	conn    *net.UDPConn
	d       demux // pion's reader and ReadRTP (direct.go)

	remoteTag atomic.Uint32
	cand      atomic.Pointer[ice.CandidateRelay] // set before the candidate reaches the agent

	closeOnce sync.Once
	closeErr  error

	helloMu      sync.Mutex
	helloTimer   *time.Timer // keepalive hellos once ready (startHellos)
	helloStopped bool        // closed: no more hellos

	helloSent, packetsIn, packetsOut, dropped atomic.Uint64
}

func newReflectorPort(r Reflector, conn *net.UDPConn) *reflectorPort {
	p := &reflectorPort{
		Reflector: r,
		addr:      netip.AddrPortFrom(r.Addr.Addr().Unmap(), r.Addr.Port()),
		conn:      conn,
		d:         newDemux(conn),
		ownTag:    randomNonZero32(),
	}
	p.own = wire.Tag(r.PeerTag)
	binary.LittleEndian.PutUint32(p.own[12:], p.ownTag)
	p.udpAddr = net.UDPAddrFromAddrPort(p.addr)
	return p
}

// reflectorWriteBufs hold a datagram while a reflector port wraps and sends
// it: one write at a time per buffer, shared by every port of the process,
// instead of a 2 KiB buffer kept by each port for the call's life.
var reflectorWriteBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, maxDatagram+reflectorOverhead)
	return &b
}}

// randomNonZero32 returns a random non-zero uint32 (tgcalls picks the own
// random tag the same way).
func randomNonZero32() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		if v := binary.LittleEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}

// hostname is our relay candidate's announced address.
func (p *reflectorPort) hostname() string { return wire.ReflectorHostname(p.ServerID, p.ownTag) }

func (p *reflectorPort) sendHello() error {
	var buf [64]byte
	_, err := p.conn.WriteToUDPAddrPort(wire.AppendHello(buf[:0], p.own), p.addr)
	if err == nil {
		p.helloSent.Add(1)
	}
	return err
}

// startHellos sends a hello every 10 s from now until the port closes
// (tgcalls ReflectorPort: helloIntervalReady once the reflector answered).
func (p *reflectorPort) startHellos() {
	p.helloMu.Lock()
	defer p.helloMu.Unlock()
	if !p.helloStopped {
		p.helloTimer = time.AfterFunc(helloIntervalReady, p.helloTick)
	}
}

func (p *reflectorPort) helloTick() {
	if err := p.sendHello(); err != nil && isClosed(err) {
		return
	}
	p.helloMu.Lock()
	defer p.helloMu.Unlock()
	if !p.helloStopped {
		p.helloTimer.Reset(helloIntervalReady)
	}
}

func (p *reflectorPort) stopHellos() {
	p.helloMu.Lock()
	defer p.helloMu.Unlock()
	p.helloStopped = true
	if p.helloTimer != nil {
		p.helloTimer.Stop()
	}
}

// awaitReady sends hellos every 500 ms and reads until the reflector answers
// with our tag (tgcalls SendReflectorHello / HandleIncomingPacket). It
// returns false when the socket was closed first.
func (p *reflectorPort) awaitReady(buf []byte) bool {
	for {
		if err := p.sendHello(); err != nil && isClosed(err) {
			return false
		}
		deadline := time.Now().Add(helloIntervalConnecting)
		if err := p.conn.SetReadDeadline(deadline); err != nil {
			return false
		}
		for {
			n, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				return false
			}
			if unmapAP(from) != p.addr {
				continue
			}
			if kind, _, _ := unwrapReflector(buf[:n], p.own); kind != reflectorInvalid {
				_ = p.conn.SetReadDeadline(time.Time{}) // a failure here surfaces on the next read
				return true
			}
		}
	}
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// ReadFromAddrPort is pion's read of the port: data relayed from the peer,
// unwrapped, unless ReadRTP owns the port (direct.go).
func (p *reflectorPort) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return p.d.pionRead(b, p.readData, nil)
}

func (p *reflectorPort) demuxer() *demux { return &p.d }

func (p *reflectorPort) readDirect(b []byte) (int, netip.AddrPort, error) { return p.readData(b) }

func (p *reflectorPort) writeDirect(b []byte, addr netip.AddrPort) error {
	_, err := p.WriteToAddrPort(b, addr)
	return err
}

// readData returns the next data packet relayed from the peer, unwrapped in
// place. Service packets (hello replies) are consumed here.
func (p *reflectorPort) readData(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(b)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		if unmapAP(from) != p.addr {
			p.dropped.Add(1)
			continue
		}
		kind, sender, data := unwrapReflector(b[:n], p.own)
		if kind != reflectorData {
			if kind == reflectorInvalid {
				p.dropped.Add(1)
			}
			continue
		}
		// A peer that reaches us before its candidate arrived is learnt, so
		// that ICE can answer its checks (the peer-reflexive case).
		p.remoteTag.CompareAndSwap(0, sender)
		p.packetsIn.Add(1)
		return copy(b, data), p.addr, nil
	}
}

// WriteToAddrPort wraps b for the remote peer tag. Only the reflector's own
// address is reachable: anything else fails, so no UDP is ever sent to a
// synthetic address.
func (p *reflectorPort) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if unmapAP(addr) != p.addr {
		return 0, errNotReflector
	}
	remote := p.remoteTag.Load()
	if remote == 0 {
		return 0, errNoRemoteTag
	}
	if len(b) > maxDatagram {
		return 0, errReflectorTrunc
	}
	bp := reflectorWriteBufs.Get().(*[]byte)
	buf := wire.AppendReflectorData((*bp)[:0], p.own, remote, p.ownTag, b)
	_, err := p.conn.WriteToUDPAddrPort(buf, p.addr)
	*bp = buf[:0]
	reflectorWriteBufs.Put(bp)
	if err != nil {
		return 0, err
	}
	p.packetsOut.Add(1)
	return len(b), nil
}

// ReadFrom implements net.PacketConn.
func (p *reflectorPort) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, err := p.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, p.udpAddr, nil
}

// WriteTo implements net.PacketConn.
func (p *reflectorPort) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errNotReflector
	}
	return p.WriteToAddrPort(b, ua.AddrPort())
}

// Close closes the socket; safe to call more than once (the agent and the
// session both do).
func (p *reflectorPort) Close() error {
	p.stopHellos()
	p.d.abort()
	p.closeOnce.Do(func() { p.closeErr = p.conn.Close() })
	return p.closeErr
}

// LocalAddr implements net.PacketConn.
func (p *reflectorPort) LocalAddr() net.Addr { return p.conn.LocalAddr() }

// SetDeadline implements net.PacketConn; a deadline in the past is how pion
// aborts its reader before closing the candidate.
func (p *reflectorPort) SetDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		p.d.abort()
	}
	return p.ignoreClosed(p.conn.SetDeadline(t))
}

// SetReadDeadline implements net.PacketConn (see SetDeadline).
func (p *reflectorPort) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		p.d.abort()
	}
	return p.ignoreClosed(p.conn.SetReadDeadline(t))
}

// ignoreClosed hides the error of a deadline set on a port we closed
// ourselves (a released relay, relays.go): pion aborts its reader that way
// when the agent closes and would log it.
func (p *reflectorPort) ignoreClosed(err error) error {
	if err != nil && isClosed(err) && p.d.gone.Load() {
		return nil
	}
	return err
}

// SetWriteDeadline implements net.PacketConn.
func (p *reflectorPort) SetWriteDeadline(t time.Time) error { return p.conn.SetWriteDeadline(t) }
