package emu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tgsip/tgsip/telegram/wire"
)

// The datagram layouts (tgcalls tgcalls/v2/ReflectorPort.cpp; tgcalls.md
// §5.2) are telegram/wire's: a client sends hellos from its own tag and data
// addressed to peer_tag[0:12] || remoteRandom; the reflector forwards data
// as destTag || senderRandom || len || data.

// reflector is one UDP relay. It learns which address speaks for a tag from
// the hellos and data packets it receives, and forwards data to the address
// of the destination tag. It forwards for any tag: the switch does not
// register calls with it.
type reflector struct {
	id   int64
	conn *net.UDPConn
	addr netip.AddrPort
	log  *slog.Logger

	// drop, when set, says that traffic of a tag must be lost (a party of
	// the call has vanished). Set before serve starts.
	drop func(wire.Tag) bool

	mu    sync.Mutex
	peers map[wire.Tag]reflectorPeer
	swept time.Time // the last sweep of idle tags (learn)
}

// reflectorPeer is the address that last spoke for a tag, and when.
type reflectorPeer struct {
	addr netip.AddrPort
	seen time.Time
}

// A tag nobody spoke for in reflectorIdle is forgotten (the sweep runs at
// most every reflectorIdle/4, from learn), so that a reflector does not
// grow with every call it ever relayed. A live call's client speaks for
// its tag at least every 10 s: tgcalls' ReflectorPort sends its hello
// every 500 ms until the first reply and every 10 s after that
// (SendReflectorHello; research/tgcalls.md §5.2).
const reflectorIdle = 2 * time.Minute

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
		peers: map[wire.Tag]reflectorPeer{},
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
		p, err := wire.ParseToReflector(buf[:nb])
		if err != nil {
			continue // junk from the network is dropped
		}
		if r.drop != nil && r.drop(p.Tag) {
			continue
		}
		if p.Hello {
			r.learn(p.Tag, from)
			// The reply starts with the client's own tag, which makes its
			// ReflectorPort READY; the 0xFF run keeps it from being
			// delivered as data.
			out = wire.AppendHelloReply(out[:0], p.Tag)
			if _, err := r.conn.WriteToUDPAddrPort(out, from); err != nil {
				r.log.Debug("reflector reply", "err", err)
			}
			continue
		}
		src := p.Tag
		binary.LittleEndian.PutUint32(src[12:], p.SenderRandom)
		r.learn(src, from)
		r.mu.Lock()
		to, ok := r.peers[p.Tag]
		r.mu.Unlock()
		if !ok {
			continue
		}
		out = wire.AppendToClient(out[:0], p.Tag, p.SenderRandom, p.Data)
		if _, err := r.conn.WriteToUDPAddrPort(out, to.addr); err != nil {
			r.log.Debug("reflector forward", "err", err)
		}
	}
}

func (r *reflector) learn(tag wire.Tag, from netip.AddrPort) {
	r.learnAt(tag, from, time.Now())
}

func (r *reflector) learnAt(tag wire.Tag, from netip.AddrPort, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers[tag] = reflectorPeer{addr: from, seen: now}
	if now.Sub(r.swept) < reflectorIdle/4 {
		return
	}
	r.swept = now
	for t, p := range r.peers {
		if now.Sub(p.seen) > reflectorIdle {
			delete(r.peers, t)
		}
	}
}
