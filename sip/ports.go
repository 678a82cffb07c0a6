package sip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ErrNoPorts is returned when every RTP port pair in the range is taken.
var ErrNoPorts = errors.New("sip: no free RTP port in range")

// PortPool hands out RTP/RTCP socket pairs from a UDP port range. Each pair
// is an even RTP port and the next odd port for RTCP (RFC 3550 §11), both
// bound for real so no other process can take them while a call holds them.
type PortPool struct {
	addr     netip.Addr
	min, max uint16

	mu    sync.Mutex
	next  uint16
	inUse map[uint16]bool
}

// NewPortPool makes a pool binding on addr within r.
func NewPortPool(addr netip.Addr, r PortRange) (*PortPool, error) {
	lo := r.Min + r.Min%2 // first even port
	if !addr.IsValid() || lo == 0 || uint32(lo)+1 > uint32(r.Max) {
		return nil, fmt.Errorf("sip: bad RTP port range %d-%d on %v", r.Min, r.Max, addr)
	}
	return &PortPool{addr: addr, min: lo, max: r.Max, next: lo, inUse: map[uint16]bool{}}, nil
}

// RTPPort is one bound RTP/RTCP pair. Release returns it to the pool.
type RTPPort struct {
	RTP  *net.UDPConn
	RTCP *net.UDPConn
	pool *PortPool
	port uint16
	once sync.Once
}

// Port is the RTP port number.
func (p *RTPPort) Port() uint16 { return p.port }

// Release closes both sockets and frees the pair. It is safe to call twice.
func (p *RTPPort) Release() {
	p.once.Do(func() {
		p.RTP.Close()
		p.RTCP.Close()
		p.pool.mu.Lock()
		delete(p.pool.inUse, p.port)
		p.pool.mu.Unlock()
	})
}

// Allocate binds the next free pair, skipping ports another process holds.
func (p *PortPool) Allocate() (*RTPPort, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pairs := (int(p.max) - int(p.min) + 1) / 2
	for i := 0; i < pairs; i++ {
		port := p.next
		p.next += 2
		if uint32(p.next)+1 > uint32(p.max) || p.next < p.min {
			p.next = p.min
		}
		if p.inUse[port] {
			continue
		}
		rtp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, port)))
		if err != nil {
			continue
		}
		rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, port+1)))
		if err != nil {
			rtp.Close()
			continue
		}
		p.inUse[port] = true
		return &RTPPort{RTP: rtp, RTCP: rtcp, pool: p, port: port}, nil
	}
	return nil, ErrNoPorts
}

// InUse is the number of pairs currently allocated.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inUse)
}
