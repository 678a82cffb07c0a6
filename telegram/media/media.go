package media

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/pion/srtp/v3"
)

// packetKind is the RFC 7983 demultiplexing class of a datagram on the ICE
// connection (STUN never reaches it: pion/ice consumes it).
type packetKind uint8

const (
	kindOther packetKind = iota
	kindDTLS
	kindRTP
	kindRTCP
)

func classify(b []byte) packetKind {
	if len(b) == 0 {
		return kindOther
	}
	switch c := b[0]; {
	case c >= 20 && c <= 63:
		return kindDTLS
	case c >= 128 && c <= 191:
		// RFC 5761 §4: RTCP packet types 192–223 occupy the second byte.
		if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 {
			return kindRTCP
		}
		return kindRTP
	}
	return kindOther
}

// SetRTPExtensions sets the negotiated header extension ids (0 = off):
// abs-send-time and transport-wide-cc-01 (tgcalls uses 2 and 3 for audio).
// WriteRTP writes them; ReadRTP records transport-cc arrivals for feedback.
func (s *Session) SetRTPExtensions(absSendTime, transportCC int) {
	s.extAbsSendTime.Store(uint32(clampExtID(absSendTime)))
	s.extTransportCC.Store(uint32(clampExtID(transportCC)))
}

// clampExtID keeps only ids usable in one-byte header extensions (RFC 8285).
func clampExtID(id int) int {
	if id < 1 || id > 14 {
		return 0
	}
	return id
}

// ReadRTP reads the next RTP packet, decrypted, into b and returns its length.
// It blocks until the session is connected and a packet arrives. RTCP and
// DTLS traffic are handled on the way, and STUN on the selected socket is
// passed to the ICE agent (direct.go), so ReadRTP must be called
// continuously. b should hold at least 1500 bytes; a packet larger than b
// is dropped and io.ErrShortBuffer returned. After the session ends it
// returns the session's error. While PushRTP delivers the packets, ReadRTP
// blocks until the push is stopped (then it returns 0, ErrPushStopped) or the
// session ends.
func (s *Session) ReadRTP(b []byte) (int, error) {
	if s.keys.Load() == nil { // an atomic load, not a select, per packet
		select {
		case <-s.connected:
		case <-s.ctx.Done():
			return 0, s.endErr()
		}
	}
	for {
		if ps := s.push.Load(); ps != nil {
			select {
			case <-ps.stopCh:
				<-ps.done // the push loop has let go of the socket
				return 0, ErrPushStopped
			case <-s.ctx.Done():
				return 0, s.endErr()
			}
		}
		n, err, ok := s.readRTPLocked(b)
		if ok {
			return n, err
		}
	}
}

// readRTPLocked is ReadRTP's loop under rxMu; ok is false when a push
// started (ReadRTP then waits for it to stop).
func (s *Session) readRTPLocked(b []byte) (int, error, bool) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	for {
		if s.ended.Load() {
			return 0, s.endErr(), true
		}
		if s.push.Load() != nil {
			return 0, nil, false
		}
		pkt, ok := s.nextPacket(nil)
		if !ok {
			continue
		}
		switch classify(pkt) {
		case kindRTP:
			n, err := s.decryptRTP(pkt, b)
			if err == nil {
				return n, nil, true
			}
			if errors.Is(err, io.ErrShortBuffer) {
				return 0, err, true
			}
		case kindRTCP:
			s.handleSRTCP(pkt)
		case kindDTLS:
			s.dtlsEP.deliver(pkt)
		}
	}
}

// nextPacket returns the next datagram for the reader (ReadRTP, or the push
// loop ps) in rxBuf: from the side queue (the pump), else read from the
// selected socket, else it waits for the pump. ok is false when there is
// nothing to handle yet (woken, or the datagram went to pion's reader).
// Called under rxMu.
func (s *Session) nextPacket(ps *pushState) ([]byte, bool) {
	if pkt, ok, done := s.nextQueued(); done {
		return pkt, ok
	}
	c := s.curConn()
	if c == nil {
		select {
		case <-s.side.note:
		case <-s.ctx.Done():
		}
		return nil, false
	}
	return s.readSelected(c, ps)
}

// nextQueued pops the side queue into rxBuf (done and ok when something was
// there) and makes the reader follow a changed route (done, not ok: look
// again). Called under rxMu.
func (s *Session) nextQueued() (pkt []byte, ok, done bool) {
	if s.side.n.Load() > 0 {
		n, ok := s.side.pop(s.rxBuf)
		if ok {
			s.viaPump.Add(1)
		}
		return s.rxBuf[:n], ok, true
	}
	if r := s.route.Load(); r != s.cur {
		s.follow(r)
	}
	return nil, false, false
}

// readSelected reads the selected socket c once into rxBuf. The reader is
// woken (ok false) when the side queue, the route or the push state (the
// reader's ps no longer the current one) changes. Called under rxMu.
func (s *Session) readSelected(c directConn, ps *pushState) ([]byte, bool) {
	d := c.demuxer()
	s.reading.Store(d)
	// Checked after publishing reading: a later push, route change or
	// PushRTP/stop kicks the read below.
	if s.side.n.Load() > 0 || s.route.Load() != s.cur || s.push.Load() != ps {
		s.reading.Store(nil)
		return nil, false
	}
	n, from, err := c.readDirect(s.rxBuf)
	s.reading.Store(nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !d.gone.Load() {
			d.unkick() // woken; the side queue and route are checked next
		} else {
			d.abort() // closed: pion's path from now on
		}
		return nil, false
	}
	if n > maxDatagram {
		// Too large for us (see maxDatagram), or truncated by the kernel
		// to the buffer: drop it explicitly rather than fail to decrypt.
		s.st.dropped.Add(1)
		return nil, false
	}
	pkt := s.rxBuf[:n]
	if !s.fromSelected(pkt, from, d) {
		return nil, false
	}
	return pkt, true
}

// fromSelected says whether pkt, read from the selected socket, is media
// for the reader; STUN (consent freshness, keepalives, nominations) and
// anything from another address take pion's path (RFC 7983 §7: 0–3 is
// STUN). Called under rxMu.
func (s *Session) fromSelected(pkt []byte, from netip.AddrPort, d *demux) bool {
	if (from != s.cur.remote && unmapAP(from) != s.cur.remote) || classify(pkt) == kindOther {
		d.handToPion(pkt, from)
		return false
	}
	return true
}

// curConn is the socket ReadRTP reads, nil for pion's path.
func (s *Session) curConn() directConn {
	if s.cur == nil || s.cur.conn == nil || s.cur.conn.demuxer().gone.Load() {
		return nil
	}
	return s.cur.conn
}

// follow moves ReadRTP to route r: the old socket goes back to pion's
// reader with its unread datagrams, the new one is taken. Called under rxMu.
func (s *Session) follow(r *route) {
	var oc, nc directConn
	if s.cur != nil {
		oc = s.cur.conn
	}
	if r != nil {
		nc = r.conn
	}
	s.cur = r
	if oc == nc {
		return
	}
	if oc != nil {
		oc.demuxer().release()
	}
	if nc != nil && !nc.demuxer().gone.Load() {
		nc.demuxer().take(s.ctx.Done())
	}
}

// send writes one protected packet on the selected route.
func (s *Session) send(out []byte) error {
	if r := s.route.Load(); r != nil && r.conn != nil {
		return r.conn.writeDirect(out, r.remote)
	}
	_, err := s.conn.Write(out)
	return err
}

// endErr is what I/O returns once the session is ending.
func (s *Session) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLocked()
}

// decryptRTP unprotects pkt into b and updates the receive statistics.
func (s *Session) decryptRTP(pkt, b []byte) (int, error) {
	if len(b) < len(pkt) {
		s.st.dropped.Add(1)
		return 0, io.ErrShortBuffer
	}
	keys := s.keys.Load()
	out, err := keys.in.DecryptRTP(b[:0:len(b)], pkt, &s.rxHdr)
	if err != nil {
		if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
			s.st.authFailures.Add(1)
		} else {
			s.st.dropped.Add(1)
		}
		return 0, err
	}
	now := time.Now()
	var twccSeq uint16
	hasTWCC := false
	if id := s.extTransportCC.Load(); id != 0 && s.rxHdr.Extension {
		if ext := s.rxHdr.GetExtension(uint8(id)); len(ext) >= 2 {
			twccSeq, hasTWCC = binary.BigEndian.Uint16(ext), true
		}
	}
	s.st.received(&s.rxHdr, len(out), now, twccSeq, hasTWCC)
	return len(out), nil
}

// WriteRTP protects one plain RTP packet and sends it. The header extension
// block is replaced by the negotiated ones (abs-send-time, transport-wide-cc
// sequence): Telegram negotiated nothing else. b is not modified. It returns
// ErrNotConnected before Connected and the session's error after it ended;
// a packet of more than maxWriteRTP (2,020) bytes is not sent and
// io.ErrShortBuffer returned.
func (s *Session) WriteRTP(b []byte) error {
	keys := s.keys.Load()
	if keys == nil {
		select {
		case <-s.ctx.Done():
			return s.endErr()
		default:
			return ErrNotConnected
		}
	}
	if s.ended.Load() { // cheaper per packet than ctx.Err
		return s.endErr()
	}
	if len(b) > maxWriteRTP {
		s.st.dropped.Add(1)
		return io.ErrShortBuffer
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	hl, err := s.txHdr.Unmarshal(b)
	if err != nil {
		s.st.dropped.Add(1)
		return err
	}
	now := time.Now() // one clock read per packet: abs-send-time and the SR
	plain, ok := s.rewriteExtensions(b, hl, now)
	if !ok {
		s.st.dropped.Add(1)
		return io.ErrShortBuffer
	}
	out, err := keys.out.EncryptRTP(s.txOut[:0], plain, &s.txHdr)
	if err != nil {
		return err
	}
	if err := s.send(out); err != nil {
		if s.ctx.Err() != nil {
			return s.endErr()
		}
		return err
	}
	s.st.sent(&s.txHdr, len(plain)-hl, now)
	return nil
}

// rewriteExtensions copies b into txPlain with the fixed header and CSRCs of
// b, our one-byte extension block (RFC 8285) and b's payload. When no
// extension is negotiated and b has none, b is used as is.
func (s *Session) rewriteExtensions(b []byte, hl int, now time.Time) ([]byte, bool) {
	abs, cc := s.extAbsSendTime.Load(), s.extTransportCC.Load()
	if abs == 0 && cc == 0 && !s.txHdr.Extension {
		return b, true
	}
	fixed := 12 + 4*len(s.txHdr.CSRC)
	payload := b[hl:]
	need := fixed + 12 + len(payload)
	if need > len(s.txPlain) {
		return nil, false
	}
	p := s.txPlain[:fixed]
	copy(p, b[:fixed])
	if abs == 0 && cc == 0 {
		p[0] &^= 0x10 // no extension
	} else {
		p[0] |= 0x10
		extStart := len(p)
		p = append(p, 0xbe, 0xde, 0, 0)
		if abs != 0 {
			v := absSendTime(now)
			p = append(p, byte(abs<<4|2), byte(v>>16), byte(v>>8), byte(v))
		}
		if cc != 0 {
			seq := s.twccSeq
			s.twccSeq++
			p = append(p, byte(cc<<4|1), byte(seq>>8), byte(seq))
		}
		for (len(p)-extStart)%4 != 0 {
			p = append(p, 0)
		}
		binary.BigEndian.PutUint16(p[extStart+2:], uint16((len(p)-extStart-4)/4))
	}
	p = append(p, payload...)
	if _, err := s.txHdr.Unmarshal(p); err != nil {
		return nil, false
	}
	return p, true
}

// absSendTime is the 24-bit 6.18 fixed-point seconds value of
// http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time.
func absSendTime(t time.Time) uint32 {
	ns := uint64(t.UnixNano())
	sec := ns / 1e9
	frac := (ns % 1e9) << 18 / 1e9
	return uint32((sec<<18 | frac) & 0xffffff)
}
