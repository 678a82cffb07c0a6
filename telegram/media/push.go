package media

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The push-style receive path (PushRTP): the run-to-completion path of a
// passthrough bridge. The goroutine that reads a datagram also decrypts it
// and hands the plain RTP packet to the bridge's deliver function, which may
// re-encrypt and write it to the other leg, with no channel or goroutine hop
// in between:
//
//   - on the shared port (mux.go), the port's batch reader itself: once the
//     call's pair is selected, its muxConn has the Session as its sink, and
//     the reader demultiplexes (RFC 7983 §7), decrypts and delivers inline;
//   - on a socket of the call's own (host socket, reflector port), the push
//     loop goroutine, which reads the socket as ReadRTP would.
//
// The push loop also takes what does not come from the selected socket (the
// pump's side queue: media before selection, over TURN) and follows
// selected-pair changes, exactly as ReadRTP does. Everything that is not
// RTP (RTCP, DTLS, STUN) is handled inside the session as before.

// ErrPushStopped is what ReadRTP returns when it was blocked by PushRTP and
// the push was stopped.
var ErrPushStopped = errors.New("media: push stopped")

// pushState is one PushRTP call.
type pushState struct {
	deliver func([]byte)
	buf     []byte // decrypted packets; used under rxMu
	stopped atomic.Bool
	stopCh  chan struct{} // closed by stop
	done    chan struct{} // closed when the push loop has exited
	once    sync.Once
}

// pushSink is the shared-port connection whose batch reader delivers to
// this Session while it pushes (under rxMu; see attachSink).
type pushSink struct {
	conn *muxConn
	ps   *pushState
}

// PushRTP calls deliver with every RTP packet the session receives (plain
// RTP, exactly what ReadRTP would have returned), on the session's receiving
// goroutine — the shared port's reader, or the session's own reader of its
// selected socket — until stop is called or the session ends. deliver must
// not block, must not keep b after it returns and must not call stop; it may
// call WriteRTP of another session or endpoint. While pushing, ReadRTP blocks
// until stop is called (then it returns 0, ErrPushStopped) or the session
// ends (then it returns the session's error). stop returns once no deliver
// call is running and none will start; it is idempotent. A second PushRTP
// stops the first one. PushRTP may be called before the session is
// connected; delivery starts once it is.
func (s *Session) PushRTP(deliver func(b []byte)) (stop func()) {
	ps := &pushState{
		deliver: deliver,
		buf:     make([]byte, receiveMTU),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if prev := s.push.Load(); prev != nil {
		s.stopPush(prev)
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		close(ps.done)
		return func() {}
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.push.Store(ps)
	s.wakeReader() // a blocked ReadRTP lets go of the socket
	go s.pushLoop(ps)
	return func() { s.stopPush(ps) }
}

// stopPush ends ps: the push loop exits, the shared port's reader no longer
// delivers, and a ReadRTP blocked by the push returns ErrPushStopped.
func (s *Session) stopPush(ps *pushState) {
	ps.once.Do(func() {
		ps.stopped.Store(true)
		s.push.CompareAndSwap(ps, nil)
		close(ps.stopCh)
		s.wakeReader()
	})
	<-ps.done
}

// pushLoop is the receiving goroutine of one PushRTP call.
func (s *Session) pushLoop(ps *pushState) {
	defer s.wg.Done()
	defer close(ps.done)
	if s.keys.Load() == nil {
		select {
		case <-s.connected:
		case <-s.ctx.Done():
			return
		case <-ps.stopCh:
			return
		}
	}
	for s.pushOnce(ps) {
	}
}

// pushOnce handles one datagram or one wake-up of the push loop; false when
// the push or the session has ended.
func (s *Session) pushOnce(ps *pushState) bool {
	s.rxMu.Lock()
	if s.ended.Load() || s.push.Load() != ps {
		s.detachSink()
		s.rxMu.Unlock()
		return false
	}
	pkt, ok, done := s.nextQueued()
	if !done {
		c := s.curConn()
		if mc, isMux := c.(*muxConn); isMux {
			// The shared port's reader delivers from now on; this loop
			// only waits for the side queue, a route change or the end.
			s.attachSink(mc, ps)
			c = nil
		}
		if c == nil {
			s.rxMu.Unlock()
			select {
			case <-s.side.note:
			case <-s.ctx.Done():
			}
			return true
		}
		pkt, ok = s.readSelected(c, ps)
	}
	if ok {
		s.handleInbound(pkt, ps)
	}
	s.rxMu.Unlock()
	return true
}

// handleInbound handles one datagram for the push: RTP is decrypted and
// delivered, RTCP and DTLS handled as ReadRTP does. Called under rxMu.
func (s *Session) handleInbound(pkt []byte, ps *pushState) {
	switch classify(pkt) {
	case kindRTP:
		if n, err := s.decryptRTP(pkt, ps.buf); err == nil {
			ps.deliver(ps.buf[:n])
		}
	case kindRTCP:
		s.handleSRTCP(pkt)
	case kindDTLS:
		s.dtlsEP.deliver(pkt)
	}
}

// attachSink makes the shared port's reader deliver c's datagrams to the
// push ps. What c has queued is handled first, here, so that the order is
// kept: the reader only delivers inline while c's queue is empty, and the
// queue is drained and the sink set under c's queue lock. The reader queues
// instead when it cannot get rxMu at once (someone else handles a datagram
// of the session) and then wakes the push loop, which comes back here to
// drain the queue. Called under rxMu.
func (s *Session) attachSink(c *muxConn, ps *pushState) {
	if s.sink.conn != c || s.sink.ps != ps {
		s.detachSink()
	}
	for {
		n, from, ok := c.popOrSink(s.rxBuf, s)
		if !ok {
			break
		}
		if pkt := s.rxBuf[:n]; s.fromSelected(pkt, from, &c.d) {
			s.handleInbound(pkt, ps)
		}
	}
	s.sink = pushSink{conn: c, ps: ps}
}

// detachSink stops the shared port's inline delivery; later datagrams are
// queued on the muxConn again. Called under rxMu.
func (s *Session) detachSink() {
	if s.sink.conn == nil {
		return
	}
	s.sink.conn.setSink(nil)
	s.sink = pushSink{}
}

// sinkPacket is the shared port reader's inline delivery of one datagram of
// c (mux.go). It returns false when the datagram is not taken: the session
// no longer takes datagrams from c inline (the push stopped, the route
// changed), or rxMu is held — the reader never waits for it, since its
// holder may be waiting for the reader (ReadRTP blocked on c's queue) or
// for another socket. The caller then queues the datagram.
func (s *Session) sinkPacket(c *muxConn, b []byte, from netip.AddrPort) bool {
	if !s.rxMu.TryLock() {
		return false
	}
	defer s.rxMu.Unlock()
	if s.sink.conn != c || s.sink.ps.stopped.Load() || s.ended.Load() || s.cur == nil || s.cur.conn != c {
		return false
	}
	if s.fromSelected(b, from, &c.d) {
		s.handleInbound(b, s.sink.ps)
	}
	return true
}
