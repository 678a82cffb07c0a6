package rtpendpoint

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/srtp/v3"
)

// ReadRTP reads the next RTP packet from the peer, authenticated and
// decrypted, into b and returns its length. RTCP muxed on the RTP port is
// handled on the way; packets that fail a check are dropped and counted
// (Stats) and the read goes on. b should hold 1500 bytes: a packet larger
// than b is dropped with io.ErrShortBuffer. After Close, or once the owner
// closed the socket, it returns an error wrapping net.ErrClosed. While
// PushRTP pushes, ReadRTP only waits (see PushRTP).
func (e *Endpoint) ReadRTP(b []byte) (int, error) {
	if p := e.push.Load(); p != nil {
		return e.waitPush(p)
	}
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	for {
		if e.closed.Load() {
			return 0, ErrClosed
		}
		n, src, err := e.rtpConn.ReadFromUDPAddrPort(e.rxBuf)
		if err != nil {
			if e.closed.Load() {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("rtpendpoint: read RTP: %w", err)
		}
		m, err := e.receive(e.rxBuf[:n], unmap(src), b, time.Now())
		if err != nil {
			return 0, err
		}
		if m > 0 {
			return m, nil
		}
	}
}

// receive handles one datagram from the RTP socket: an RTP packet is
// checked, decrypted into b and accounted, and its length returned; RTCP is
// handed to receiveRTCP; anything else is dropped (0, nil). Only a packet
// too large for b returns an error.
func (e *Endpoint) receive(pkt []byte, src netip.AddrPort, b []byte, now time.Time) (int, error) {
	if isRTCP(pkt) {
		e.receiveRTCP(pkt, src, true, now)
		return 0, nil
	}
	hl, ok := rtpHeaderSize(pkt)
	if !ok {
		e.c.malformed.Add(1)
		return 0, nil
	}
	st := e.st.Load()
	if !st.latch && src != st.dst && src != st.prevSrc {
		e.c.wrongSource.Add(1)
		return 0, nil
	}
	if len(b) < len(pkt) {
		e.c.large.Add(1)
		return 0, io.ErrShortBuffer
	}
	keys, nkeys := st.rxOrder()
	var out []byte
	var used *cryptoPair
	var err error
	for i := 0; i < nkeys; i++ {
		used = keys[i]
		var tryErr error
		if out, tryErr = e.unprotectRTP(used, pkt, hl, b); tryErr == nil {
			err = nil
			break
		}
		err = worseError(err, tryErr)
	}
	if err != nil {
		e.countRxError(err)
		return 0, nil
	}
	plen, ok := rtpPayloadLen(out, hl)
	if !ok {
		e.c.malformed.Add(1)
		return 0, nil
	}
	f := readRTPFields(out)
	if st.latch && used == nil && int(f.pt) != st.codecPT && int(f.pt) != st.dtmfPT {
		// Plain RTP cannot be authenticated; latch only on a payload
		// type we negotiated.
		e.c.wrongSource.Add(1)
		return 0, nil
	}
	e.settle(st, used, src, true)
	e.c.received(f, plen, now, st.clock)
	return len(out), nil
}

// rxOrder is the order in which receive keys are tried. During a rekey the
// old SRTP keys go first (the peer keeps them until our answer reached it,
// RFC 4568 §7.1.4), so only the first packet under the new keys pays a
// second attempt; plain RTP as the old "keys" goes last, since it would
// accept anything.
func (st *state) rxOrder() ([2]*cryptoPair, int) {
	switch {
	case !st.hasPrev:
		return [2]*cryptoPair{st.rx}, 1
	case st.prev != nil:
		return [2]*cryptoPair{st.prev, st.rx}, 2
	}
	return [2]*cryptoPair{st.rx, st.prev}, 2
}

// unprotectRTP decrypts pkt into b with k (nil: plain RTP, copied).
func (e *Endpoint) unprotectRTP(k *cryptoPair, pkt []byte, hl int, b []byte) ([]byte, error) {
	if k == nil {
		return b[:copy(b, pkt)], nil
	}
	if len(pkt) < hl+k.overhead {
		return nil, errShort
	}
	return k.rtp.DecryptRTP(b[:0:len(b)], pkt, &e.rxHdr)
}

var errShort = errors.New("rtpendpoint: packet too short")

// worseError picks the error to count when neither key of a rekey fits: a
// replay or a malformed packet says more than an authentication failure,
// which the key that does not apply always reports.
func worseError(prev, next error) error {
	if prev == nil || errors.Is(prev, srtp.ErrFailedToVerifyAuthTag) {
		return next
	}
	return prev
}

func (e *Endpoint) countRxError(err error) {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag), errors.Is(err, srtp.ErrMKINotFound):
		e.c.authFailures.Add(1)
	case isReplay(err):
		e.c.replayed.Add(1)
	default:
		e.c.malformed.Add(1)
	}
}

// isReplay recognises pion/srtp's unexported duplicated-packet error,
// which it returns unwrapped.
func isReplay(err error) bool {
	d, ok := err.(interface{ Unwrap() error })
	if !ok {
		return false
	}
	inner := d.Unwrap()
	return inner != nil && inner.Error() == "duplicated packet"
}

// isClosedConn reports a socket closed by its owner or woken by Close.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}

// settle publishes what an authenticated packet from src under keys used
// teaches: the end of a rekey, the end of an address move and the latched
// address. It allocates only when something changes.
func (e *Endpoint) settle(st *state, used *cryptoPair, src netip.AddrPort, isRTP bool) {
	endRekey := st.hasPrev && used == st.rx
	endMove := st.prevSrc.IsValid() && src == st.dst
	latch := isRTP && st.latch || (!isRTP && (st.latchRTCP || (st.mux && st.latch)))
	if !endRekey && !endMove && !latch {
		return
	}
	ns := *st
	if endRekey {
		ns.prev, ns.hasPrev = nil, false
		e.log.Debug("rtp endpoint: peer switched to the new keys")
	}
	if endMove {
		ns.prevSrc = netip.AddrPort{}
	}
	if latch {
		if isRTP || st.mux {
			ns.dst, ns.latch = src, false
			if st.mux {
				ns.dstRTCP = src
			} else if st.latchRTCP {
				// Until RTCP itself arrives, guess the RTCP port next to
				// the latched RTP port (RFC 3550 §11).
				ns.dstRTCP = netip.AddrPortFrom(src.Addr(), src.Port()+1)
			}
		} else {
			ns.dstRTCP, ns.latchRTCP = src, false
		}
		e.log.Debug("rtp endpoint latched", "remote", src, "rtcp", !isRTP)
	}
	// A failed swap means Update or the other path published first; the
	// next packet settles again.
	e.st.CompareAndSwap(st, &ns)
}

// receiveRTCP checks, decrypts and reads one RTCP packet, from the RTCP
// socket or muxed on the RTP socket.
func (e *Endpoint) receiveRTCP(pkt []byte, src netip.AddrPort, muxed bool, now time.Time) {
	e.rtcpRxMu.Lock()
	defer e.rtcpRxMu.Unlock()
	st := e.st.Load()
	want, pending := st.dstRTCP, st.latchRTCP
	if muxed {
		want, pending = st.dst, st.latch
	}
	if !pending && src != want && src != st.prevSrc {
		e.c.wrongSource.Add(1)
		e.c.rtcpErrors.Add(1)
		return
	}
	if len(pkt) < rtcpHeaderLen || pkt[0]>>6 != 2 {
		e.c.rtcpErrors.Add(1)
		return
	}
	keys, nkeys := st.rxOrder()
	var out []byte
	var used *cryptoPair
	var err error
	for i := 0; i < nkeys; i++ {
		used = keys[i]
		var tryErr error
		if out, tryErr = e.unprotectRTCP(used, pkt); tryErr == nil {
			err = nil
			break
		}
		err = worseError(err, tryErr)
	}
	if err != nil {
		// RTP's drop counters are for RTP; only a failed SRTCP
		// authentication also counts as one.
		if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) || errors.Is(err, srtp.ErrMKINotFound) {
			e.c.authFailures.Add(1)
		}
		e.c.rtcpErrors.Add(1)
		return
	}
	if !e.c.parseRTCP(out, now) {
		e.c.rtcpErrors.Add(1)
		return
	}
	e.c.rtcpIn.Add(1)
	e.settle(st, used, src, false)
}

func (e *Endpoint) unprotectRTCP(k *cryptoPair, pkt []byte) ([]byte, error) {
	if k == nil {
		return pkt, nil
	}
	if len(pkt) < rtcpHeaderLen+srtcpTrailer+k.overhead {
		return nil, errShort
	}
	return k.rtcp.DecryptRTCP(e.rtcpIn[:0], pkt, nil)
}

// readRTCPSocket reads the separate RTCP socket until Close (without
// rtcp-mux). RTCP is rare, so one goroutine blocked here costs no CPU.
func (e *Endpoint) readRTCPSocket() {
	defer e.wg.Done()
	for {
		n, src, err := e.rtcpConn.ReadFromUDPAddrPort(e.rtcpRxBuf)
		if err != nil {
			if e.closed.Load() {
				return
			}
			if isClosedConn(err) {
				return
			}
			continue
		}
		e.receiveRTCP(e.rtcpRxBuf[:n], unmap(src), false, time.Now())
	}
}

// WriteRTP protects one plain RTP packet and sends it to the peer. While
// our direction does not send (hold) or the peer has no address, the
// packet is dropped, counted, and nil returned. b is not modified. After
// Close it returns ErrClosed.
func (e *Endpoint) WriteRTP(b []byte) error {
	if e.closed.Load() {
		return ErrClosed
	}
	hl, ok := rtpHeaderSize(b)
	if !ok {
		e.c.txErrors.Add(1)
		return errNotRTP
	}
	plen, ok := rtpPayloadLen(b, hl)
	if !ok {
		e.c.txErrors.Add(1)
		return errNotRTP
	}
	e.txMu.Lock()
	defer e.txMu.Unlock()
	st := e.st.Load()
	if !st.sends || !sendable(st.dst) {
		e.c.heldDrops.Add(1)
		return nil
	}
	out := b
	if st.tx != nil {
		var err error
		out, err = st.tx.rtp.EncryptRTP(e.txBuf[:0], b, &e.txHdr)
		if err != nil {
			e.c.txErrors.Add(1)
			return fmt.Errorf("rtpendpoint: protect RTP: %w", err)
		}
	}
	if _, err := e.rtpConn.WriteToUDPAddrPort(out, st.dst); err != nil {
		e.c.txErrors.Add(1)
		if e.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("rtpendpoint: send RTP: %w", err)
	}
	e.c.sent(readRTPFields(b), plen, time.Now())
	return nil
}

var errNotRTP = errors.New("rtpendpoint: WriteRTP: not an RTP packet")

func sendable(a netip.AddrPort) bool {
	return a.IsValid() && a.Port() != 0 && !a.Addr().IsUnspecified()
}
