package media

import "encoding/binary"

// Incoming RTCP is read in place, without pion/rtcp's Unmarshal, which
// allocates a Packet per item and, for transport-cc feedback
// (TransportLayerCC.Unmarshal), its chunk and delta slices — every 250 ms
// per call, for a report of which nothing is used: the trunk sends audio
// at tgcalls' fixed rate and only counts the feedback it gets. What is read
// is the compound structure (RFC 3550 §6.1, §6.4) and, of sender and
// receiver reports, the sender's SSRC, the SR's NTP time and the report
// blocks. FuzzRTCPIn checks it against pion/rtcp.

// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1) and the transport-layer
// feedback formats counted (RFC 4585 §6.2.1 generic NACK;
// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1, FMT 15).
const (
	rtcpSR        = 200
	rtcpRR        = 201
	rtcpRTPFB     = 205
	rtcpFmtNACK   = 1
	rtcpFmtTWCC   = 15
	rtcpReportLen = 24
	srBlocksAt    = 28 // header 4 + sender SSRC 4 + sender info 20
	rrBlocksAt    = 8  // header 4 + sender SSRC 4
)

// nextRTCP splits the first packet p off a compound packet b. ok is false
// where pion/rtcp's Unmarshal fails on the packet's header, length, or — for
// SR and RR — its report blocks (fewer than the report count says).
func nextRTCP(b []byte) (p, rest []byte, ok bool) {
	if len(b) < 4 || b[0]>>6 != 2 {
		return nil, nil, false
	}
	n := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
	if n > len(b) {
		return nil, nil, false
	}
	p = b[:n]
	rc := int(p[0] & 0x1f)
	switch p[1] {
	case rtcpSR:
		if len(p) < srBlocksAt+rc*rtcpReportLen {
			return nil, nil, false
		}
	case rtcpRR:
		if len(p) < rrBlocksAt+rc*rtcpReportLen {
			return nil, nil, false
		}
	}
	return p, b[n:], true
}

// validRTCP says whether every packet of the compound b splits (nextRTCP);
// an empty b is invalid, as for pion/rtcp.
func validRTCP(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		var ok bool
		if _, b, ok = nextRTCP(b); !ok {
			return false
		}
	}
	return true
}

// reportBlock is the part of an RFC 3550 §6.4.1 report block that is kept.
type reportBlock struct {
	ssrc      uint32
	fraction  uint8
	totalLost uint32 // 24 bits as sent
	jitter    uint32
}

// reportBlocks returns the report block i of an SR or RR p checked by
// nextRTCP.
func reportBlockAt(p []byte, i int) reportBlock {
	at := rrBlocksAt
	if p[1] == rtcpSR {
		at = srBlocksAt
	}
	r := p[at+i*rtcpReportLen:]
	return reportBlock{
		ssrc:      binary.BigEndian.Uint32(r),
		fraction:  r[4],
		totalLost: uint32(r[5])<<16 | uint32(r[6])<<8 | uint32(r[7]),
		jitter:    binary.BigEndian.Uint32(r[12:]),
	}
}

// rtcpSenderSSRC is the sender SSRC of an SR or RR p; srNTP the SR's NTP
// time (RFC 3550 §6.4.1).
func rtcpSenderSSRC(p []byte) uint32 { return binary.BigEndian.Uint32(p[4:]) }
func srNTP(p []byte) uint64          { return binary.BigEndian.Uint64(p[8:]) }
