package rtpendpoint

import "encoding/binary"

// Sizes of the fixed headers (RFC 3550 §5.1, §6.4).
const (
	rtpHeaderLen  = 12
	rtcpHeaderLen = 8
	// srtcpTrailer is the E flag and SRTCP index (RFC 3711 §3.4).
	srtcpTrailer = 4
)

// isRTCP tells RTCP from RTP on a muxed port by the second byte: RTCP packet
// types 192–223 fall where RTP's marker bit and payload type would be, and
// RFC 5761 §4 keeps RTP payload types 64–95 free so the two never collide.
func isRTCP(b []byte) bool {
	return len(b) >= 2 && b[1] >= 192 && b[1] <= 223
}

// rtpHeaderSize checks the parts of an RTP header that can be checked before
// decryption (RFC 3550 §5.1: version 2, the CSRC list and the header
// extension of §5.3.1 fit in b) and returns the header length. Checking
// first keeps garbage away from pion's parser, whose errors allocate.
func rtpHeaderSize(b []byte) (int, bool) {
	if len(b) < rtpHeaderLen || b[0]>>6 != 2 {
		return 0, false
	}
	n := rtpHeaderLen + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return 0, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	if len(b) < n {
		return 0, false
	}
	return n, true
}

// rtpPayloadLen is the payload size of a plain RTP packet with a header of
// hl bytes, without padding (RFC 3550 §5.1: the last octet counts the
// padding octets, itself included). ok is false for an impossible count.
func rtpPayloadLen(b []byte, hl int) (int, bool) {
	n := len(b) - hl
	if b[0]&0x20 != 0 {
		if n < 1 {
			return 0, false
		}
		pad := int(b[len(b)-1])
		if pad == 0 || pad > n {
			return 0, false
		}
		n -= pad
	}
	return n, true
}

// rtpFields are the header fields the statistics need.
type rtpFields struct {
	pt   uint8
	seq  uint16
	ts   uint32
	ssrc uint32
}

func readRTPFields(b []byte) rtpFields {
	return rtpFields{
		pt:   b[1] & 0x7f,
		seq:  binary.BigEndian.Uint16(b[2:]),
		ts:   binary.BigEndian.Uint32(b[4:]),
		ssrc: binary.BigEndian.Uint32(b[8:]),
	}
}
