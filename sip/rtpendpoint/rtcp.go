package rtpendpoint

import (
	"encoding/binary"
	"time"
)

// RTCP packet types (RFC 3550 §12.1).
const (
	ptSR   = 200
	ptRR   = 201
	ptSDES = 202
	ptBYE  = 203
)

const (
	reportBlockLen = 24 // RFC 3550 §6.4.1
	senderInfoLen  = 20 // NTP (8), RTP timestamp, packet and octet counts
	sdesCNAME      = 1  // RFC 3550 §6.5.1
	maxCNAME       = 255
)

// ntpTime is t in the 64-bit NTP format (RFC 3550 §4).
func ntpTime(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + 2208988800 // seconds from 1900 to 1970
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// ntpMiddle is the middle 32 bits of the NTP time, the unit of LSR and of
// round-trip computations (RFC 3550 §6.4.1).
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// appendReport appends our compound RTCP packet to dst: an SR when we sent
// RTP recently, else an RR, with one report block about the peer's current
// SSRC once we received from it, then an SDES CNAME (RFC 3550 §6.1: every
// compound packet starts with a report and carries a CNAME) and, when bye
// is set, a BYE (§6.6). It advances the loss interval of the block. dst
// needs 28+24+8+CNAME+8 bytes of capacity to avoid growing.
func (c *counters) appendReport(dst []byte, now time.Time, clock uint32, interval time.Duration,
	localSSRC uint32, cname string, bye bool,
) []byte {
	c.mu.Lock()
	// §6.4: send an SR if we sent RTP since the second previous report.
	sender := c.sendSSRC != 0 && now.Sub(c.lastTSAt) < 2*interval
	ssrc := localSSRC
	if c.sendSSRC != 0 {
		ssrc = c.sendSSRC
	}
	blocks := 0
	if c.rx.started {
		blocks = 1
	}
	start := len(dst)
	if sender {
		dst = append(dst, 0x80|byte(blocks), ptSR, 0, 0)
		dst = binary.BigEndian.AppendUint32(dst, ssrc)
		dst = binary.BigEndian.AppendUint64(dst, ntpTime(now))
		// The RTP time of "now", extrapolated from the last packet sent
		// (§6.4.1: it need not equal any packet's timestamp).
		ts := c.lastTS + uint32(now.Sub(c.lastTSAt).Seconds()*float64(clock))
		dst = binary.BigEndian.AppendUint32(dst, ts)
		dst = binary.BigEndian.AppendUint32(dst, c.sendPackets)
		dst = binary.BigEndian.AppendUint32(dst, c.sendOctets)
	} else {
		dst = append(dst, 0x80|byte(blocks), ptRR, 0, 0)
		dst = binary.BigEndian.AppendUint32(dst, ssrc)
	}
	if blocks == 1 {
		r := &c.rx
		c.fraction = r.interval()
		lost := r.lost()
		// §6.4.1: cumulative lost is a signed 24-bit field, clamped.
		if lost > 0x7fffff {
			lost = 0x7fffff
		} else if lost < -0x800000 {
			lost = -0x800000
		}
		var lsr, dlsr uint32
		if c.srSSRC == r.ssrc && !c.srAt.IsZero() {
			lsr = c.lastSR
			dlsr = uint32(now.Sub(c.srAt).Seconds() * 65536)
		}
		dst = binary.BigEndian.AppendUint32(dst, r.ssrc)
		dst = binary.BigEndian.AppendUint32(dst, uint32(c.fraction)<<24|uint32(lost)&0xffffff)
		dst = binary.BigEndian.AppendUint32(dst, r.extMax())
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.jitter))
		dst = binary.BigEndian.AppendUint32(dst, lsr)
		dst = binary.BigEndian.AppendUint32(dst, dlsr)
	}
	c.mu.Unlock()
	binary.BigEndian.PutUint16(dst[start+2:], uint16((len(dst)-start)/4-1))

	// SDES with one chunk: SSRC, CNAME item, END, padding to 32 bits (§6.5).
	start = len(dst)
	dst = append(dst, 0x81, ptSDES, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, ssrc)
	dst = append(dst, sdesCNAME, byte(len(cname)))
	dst = append(dst, cname...)
	dst = append(dst, 0) // END item
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	binary.BigEndian.PutUint16(dst[start+2:], uint16((len(dst)-start)/4-1))

	if bye {
		dst = append(dst, 0x81, ptBYE, 0, 1)
		dst = binary.BigEndian.AppendUint32(dst, ssrc)
	}
	return dst
}

// parseRTCP reads a plain compound RTCP packet received at now: sender
// reports give the LSR for our next report block; report blocks about our
// stream give the peer's loss and jitter and the round-trip time. It
// allocates nothing and reports false for a malformed packet (what came
// before the malformed part is kept, as RFC 3550 §6.1 processing would).
func (c *counters) parseRTCP(b []byte, now time.Time) bool {
	if len(b) < 4 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		if len(b) < 4 || b[0]>>6 != 2 {
			return false
		}
		n := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
		if n > len(b) {
			return false
		}
		count, body := int(b[0]&0x1f), b[4:n]
		switch b[1] {
		case ptSR:
			if len(body) < 4+senderInfoLen {
				return false
			}
			ssrc := binary.BigEndian.Uint32(body)
			c.srSSRC, c.lastSR, c.srAt = ssrc, uint32(binary.BigEndian.Uint64(body[4:])>>16), now
			c.reportBlocks(body[4+senderInfoLen:], count, now)
		case ptRR:
			if len(body) < 4 {
				return false
			}
			c.reportBlocks(body[4:], count, now)
		}
		b = b[n:]
	}
	return true
}

// reportBlocks takes the blocks about our stream (RFC 3550 §6.4.1). RTT is
// A - LSR - DLSR in 1/65536 s, A being the arrival time; a negative result
// (clock skew on the peer's DLSR) is ignored. Called with c.mu held.
func (c *counters) reportBlocks(b []byte, count int, now time.Time) {
	for i := 0; i < count && len(b) >= reportBlockLen; i++ {
		blk := b[:reportBlockLen]
		b = b[reportBlockLen:]
		if c.sendSSRC == 0 || binary.BigEndian.Uint32(blk) != c.sendSSRC {
			continue
		}
		c.reportsIn++
		w := binary.BigEndian.Uint32(blk[4:])
		c.remoteFrac = uint8(w >> 24)
		c.remoteLost = int64(int32(w<<8) >> 8) // sign-extend 24 bits
		c.remoteJitter = binary.BigEndian.Uint32(blk[12:])
		lsr, dlsr := binary.BigEndian.Uint32(blk[16:]), binary.BigEndian.Uint32(blk[20:])
		if lsr == 0 {
			continue
		}
		if rtt := int32(ntpMiddle(now) - lsr - dlsr); rtt >= 0 {
			c.rtt = time.Duration(int64(rtt) * int64(time.Second) / 65536)
		}
	}
}
