package rtpbridge

import (
	"encoding/binary"
	"errors"
)

// Errors for RTP the bridge cannot use; such packets are dropped and
// counted (Stats.Discarded), never fatal.
var (
	errRTPShort   = errors.New("rtpbridge: rtp packet too short")
	errRTPVersion = errors.New("rtpbridge: not rtp version 2")
	errRTPPadding = errors.New("rtpbridge: bad rtp padding")
	errRTCP       = errors.New("rtpbridge: rtcp on the rtp path")
)

const rtpHeaderLen = 12

// header is the parsed header of one RTP packet (RFC 3550 §5.1) and where
// its parts lie in the packet's buffer. Parsing does not copy.
type header struct {
	marker bool
	pt     PayloadType
	seq    uint16
	ts     uint32
	ssrc   SSRC
	csrcs  int
	// extProfile and ext are the header extension (RFC 3550 §5.3.1): the
	// 16-bit profile and the data after the length word; ext is nil when
	// the X bit is clear.
	extProfile uint16
	ext        []byte
	padded     bool
	payload    []byte
}

// parseRTP parses b into h. The slices of h alias b.
func parseRTP(b []byte, h *header) error {
	if len(b) < rtpHeaderLen {
		return errRTPShort
	}
	if b[0]>>6 != 2 {
		return errRTPVersion
	}
	// RFC 5761 §4: with rtcp-mux, RTCP packet types 192-223 read as RTP
	// payload types 64-95; none of them is a valid RTP payload type.
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return errRTCP
	}
	h.csrcs = int(b[0] & 0x0f)
	off := rtpHeaderLen + 4*h.csrcs
	if len(b) < off {
		return errRTPShort
	}
	h.marker = b[1]&0x80 != 0
	h.pt = PayloadType(b[1] & 0x7f)
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = SSRC(binary.BigEndian.Uint32(b[8:]))
	h.ext, h.extProfile = nil, 0
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return errRTPShort
		}
		h.extProfile = binary.BigEndian.Uint16(b[off:])
		n := 4 * int(binary.BigEndian.Uint16(b[off+2:]))
		off += 4
		if len(b) < off+n {
			return errRTPShort
		}
		h.ext = b[off : off+n : off+n]
		off += n
	}
	end := len(b)
	h.padded = b[0]&0x20 != 0
	if h.padded {
		// RFC 3550 §5.1: the last octet counts the padding, itself included.
		pad := int(b[end-1])
		if pad == 0 || off+pad > end {
			return errRTPPadding
		}
		end -= pad
	}
	h.payload = b[off:end:end]
	return nil
}

// plain says whether the packet is a bare 12-byte header and payload, so
// the bridge may rewrite its header in place.
func (h *header) plain() bool { return h.csrcs == 0 && h.ext == nil && !h.padded }

// putHeader writes a 12-byte RTP header without CSRCs into b; ext says
// whether an extension block follows.
func putHeader(b []byte, marker bool, pt PayloadType, seq uint16, ts uint32, ssrc SSRC, ext bool) {
	b[0] = 0x80
	if ext {
		b[0] |= 0x10
	}
	b[1] = byte(pt) & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], uint32(ssrc))
}
