package emu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// Reflector wire format (tgcalls tgcalls/v2/ReflectorPort.cpp; tgcalls.md
// §5.2). A tag is 16 bytes: the call's peer_tag[0:12] followed by the
// endpoint's random 4-byte id.
//
//	client → reflector, hello/ping: ownTag(16) || 0xFF×12 || …
//	client → reflector, data:       peer_tag[0:12] || dstRandom(4) || srcRandom(4) || len(4, BE) || data || pad
//	reflector → client, data:       dstTag(16) || srcRandom(4) || len(4, BE) || data || pad
//
// TODO: switch to telegram/wire's ParseToReflector/AppendToClient once that
// package has them; these private helpers mirror the same layout.
const (
	reflectorTagLen = 16
	serviceMarker   = 12 // bytes of 0xFF after the tag in a service packet
)

var serviceFF = bytes.Repeat([]byte{0xFF}, serviceMarker)

// reflectorPacket is a parsed client → reflector datagram.
type reflectorPacket struct {
	tag     [reflectorTagLen]byte // sender's tag (hello) or destination tag (data)
	hello   bool
	src     [4]byte // sender's random id (data only)
	payload []byte  // data only
}

// parseToReflector parses a datagram a client sent to a reflector.
func parseToReflector(b []byte) (reflectorPacket, error) {
	var p reflectorPacket
	if len(b) < reflectorTagLen+serviceMarker {
		return p, errors.New("reflector: short packet")
	}
	copy(p.tag[:], b)
	if bytes.Equal(b[reflectorTagLen:reflectorTagLen+serviceMarker], serviceFF) {
		p.hello = true
		return p, nil
	}
	copy(p.src[:], b[16:20])
	l := binary.BigEndian.Uint32(b[20:24])
	if uint64(l) > uint64(len(b)-24) {
		return p, errors.New("reflector: length exceeds packet")
	}
	p.payload = b[24 : 24+int(l)]
	return p, nil
}

// appendToClient appends the reflector → client form of a data packet.
func appendToClient(dst []byte, tag [reflectorTagLen]byte, src [4]byte, payload []byte) []byte {
	dst = append(dst, tag[:]...)
	dst = append(dst, src[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// reflector is one UDP relay. It learns which address speaks for a tag from
// the hellos and data packets it receives, and forwards data to the address
// of the destination tag. It forwards for any tag: the switch does not
// register calls with it.
type reflector struct {
	id   int64
	conn *net.UDPConn
	addr netip.AddrPort
	log  *slog.Logger

	mu    sync.Mutex
	peers map[[reflectorTagLen]byte]netip.AddrPort
}

func listenReflector(ctx context.Context, id int64, log *slog.Logger) (*reflector, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emu: reflector listen: %w", err)
	}
	conn := pc.(*net.UDPConn)
	return &reflector{
		id:    id,
		conn:  conn,
		addr:  conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		log:   log.With("reflector", id),
		peers: map[[reflectorTagLen]byte]netip.AddrPort{},
	}, nil
}

func (r *reflector) close() error { return r.conn.Close() }

// serve reads datagrams until the socket is closed.
func (r *reflector) serve() {
	buf := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10)
	for {
		nb, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Debug("reflector read", "err", err)
			continue
		}
		p, err := parseToReflector(buf[:nb])
		if err != nil {
			continue // junk from the network is dropped
		}
		if p.hello {
			r.learn(p.tag, from)
			// Echo: the reply starts with the client's own tag, which is
			// what makes its ReflectorPort READY; the 0xFF marker keeps it
			// from being delivered as data.
			if _, err := r.conn.WriteToUDPAddrPort(buf[:nb], from); err != nil {
				r.log.Debug("reflector reply", "err", err)
			}
			continue
		}
		var srcTag [reflectorTagLen]byte
		copy(srcTag[:12], p.tag[:12])
		copy(srcTag[12:], p.src[:])
		r.learn(srcTag, from)
		r.mu.Lock()
		to, ok := r.peers[p.tag]
		r.mu.Unlock()
		if !ok {
			continue
		}
		out = appendToClient(out[:0], p.tag, p.src, p.payload)
		if _, err := r.conn.WriteToUDPAddrPort(out, to); err != nil {
			r.log.Debug("reflector forward", "err", err)
		}
	}
}

func (r *reflector) learn(tag [reflectorTagLen]byte, from netip.AddrPort) {
	r.mu.Lock()
	r.peers[tag] = from
	r.mu.Unlock()
}
