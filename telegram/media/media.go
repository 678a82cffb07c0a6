package media

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/pion/ice/v4"
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

// bootstrapRead owns the ICE connection's read side from ICE connected until
// the first SRTP/SRTCP packet after the keys exist: it feeds the DTLS
// handshake (including retransmissions the peer needs after our handshake
// completed) and then hands that first media packet and the connection to
// ReadRTP, so that steady-state reads happen inline in the caller.
func (s *Session) bootstrapRead(conn *ice.Conn) {
	defer s.wg.Done()
	defer close(s.handoff)
	defer s.handedOff.Store(true) // runs first: pendingN is set before
	for {
		n, err := conn.Read(s.rxBuf)
		if err != nil {
			return
		}
		pkt := s.rxBuf[:n]
		switch classify(pkt) {
		case kindDTLS:
			s.dtlsEP.deliver(pkt)
		case kindRTP, kindRTCP:
			if s.keys.Load() == nil {
				// The peer finished its handshake before we did; early
				// media is dropped rather than blocking the handshake.
				s.st.earlyDropped.Add(1)
				continue
			}
			s.pendingN = n
			return
		}
	}
}

// ReadRTP reads the next RTP packet, decrypted, into b and returns its length.
// It blocks until the session is connected and a packet arrives. RTCP and
// DTLS traffic are handled on the way. b should hold at least 1500 bytes; a
// packet larger than b is dropped and io.ErrShortBuffer returned. After the
// session ends it returns the session's error.
func (s *Session) ReadRTP(b []byte) (int, error) {
	if !s.handedOff.Load() { // an atomic load, not a select, per packet
		select {
		case <-s.handoff:
		case <-s.ctx.Done():
			return 0, s.endErr()
		}
	}
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	for {
		var pkt []byte
		if s.pendingN > 0 {
			pkt, s.pendingN = s.rxBuf[:s.pendingN], 0
		} else {
			n, err := s.conn.Read(s.rxBuf)
			if err != nil {
				return 0, s.endErr()
			}
			pkt = s.rxBuf[:n]
		}
		switch classify(pkt) {
		case kindRTP:
			n, err := s.decryptRTP(pkt, b)
			if err == nil {
				return n, nil
			}
			if errors.Is(err, io.ErrShortBuffer) {
				return 0, err
			}
		case kindRTCP:
			s.handleSRTCP(pkt)
		case kindDTLS:
			s.dtlsEP.deliver(pkt)
		}
	}
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
// ErrNotConnected before Connected and the session's error after it ended.
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
	if _, err := s.conn.Write(out); err != nil {
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
