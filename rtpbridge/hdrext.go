package rtpbridge

import (
	"encoding/binary"
	"errors"
)

// RFC 8285 header extension profiles: §4.2 one-byte (0xBEDE) and §4.3
// two-byte (0x100 followed by 4 application bits).
const (
	extProfileOneByte     = 0xBEDE
	extProfileTwoByte     = 0x1000
	extProfileTwoByteMask = 0xFFF0
)

var (
	errExtTruncated = errors.New("rtpbridge: header extension element truncated")
	errExtProfile   = errors.New("rtpbridge: header extension is not RFC 8285")
)

// extIter walks the elements of one RFC 8285 extension block.
type extIter struct {
	data    []byte
	off     int
	twoByte bool
	done    bool
}

// newExtIter starts walking data of an extension with profile; a profile
// that is not RFC 8285 (an RFC 3550 §5.3.1 extension of some other
// profile) yields errExtProfile: the bridge drops such blocks whole.
func newExtIter(profile uint16, data []byte) (extIter, error) {
	switch {
	case profile == extProfileOneByte:
		return extIter{data: data}, nil
	case profile&extProfileTwoByteMask == extProfileTwoByte:
		return extIter{data: data, twoByte: true}, nil
	}
	return extIter{done: true}, errExtProfile
}

// next returns the next element's id and value; ok is false at the end.
// Padding (id 0) is skipped.
func (it *extIter) next() (id uint8, val []byte, ok bool, err error) {
	for !it.done && it.off < len(it.data) {
		b := it.data[it.off]
		if b == 0 {
			// RFC 8285 §4.1: padding octets are 0 and ignored, in both forms.
			it.off++
			continue
		}
		var n, hl int
		if it.twoByte {
			// §4.3: 8-bit id, 8-bit length (0-255 bytes of data).
			if it.off+2 > len(it.data) {
				it.done = true
				return 0, nil, false, errExtTruncated
			}
			id, n, hl = b, int(it.data[it.off+1]), 2
		} else {
			id, n, hl = b>>4, int(b&0x0f)+1, 1
			if id == 0 {
				// §4.2: id 0 is padding only; skip the octet.
				it.off++
				continue
			}
			if id == 15 {
				// §4.2: id 15 is reserved; stop processing the block.
				it.done = true
				return 0, nil, false, nil
			}
		}
		start := it.off + hl
		if start+n > len(it.data) {
			it.done = true
			return 0, nil, false, errExtTruncated
		}
		it.off = start + n
		return id, it.data[start : start+n : start+n], true, nil
	}
	return 0, nil, false, nil
}

// maxExtBlock bounds the extension block the bridge writes.
const maxExtBlock = 256

// writeExtensions writes into out the extension block (profile word,
// length word and padded data) holding the elements of h's extension whose
// ids idMap maps, with their new ids. It returns the block's length, 0
// when nothing is kept. out must hold maxExtBlock bytes. Elements that do
// not fit are dropped.
func writeExtensions(out []byte, h *header, idMap map[uint8]uint8) int {
	if h.ext == nil || len(idMap) == 0 {
		return 0
	}
	// The one-byte form is used when every kept element fits it (§4.2:
	// ids 1-14, 1-16 bytes); otherwise the two-byte form (§4.3).
	it, err := newExtIter(h.extProfile, h.ext)
	if err != nil {
		return 0
	}
	twoByte := false
	kept := 0
	for {
		id, val, ok, _ := it.next()
		if !ok {
			break
		}
		nid, found := idMap[id]
		if !found {
			continue
		}
		kept++
		if nid > 14 || len(val) == 0 || len(val) > 16 {
			twoByte = true
		}
	}
	if kept == 0 {
		return 0
	}
	it, _ = newExtIter(h.extProfile, h.ext)
	off := 4
	for {
		id, val, ok, _ := it.next()
		if !ok {
			break
		}
		nid, found := idMap[id]
		if !found {
			continue
		}
		hl := 1
		if twoByte {
			hl = 2
		}
		if off+hl+len(val)+3 > maxExtBlock || len(val) > 255 {
			continue
		}
		if twoByte {
			out[off], out[off+1] = nid, byte(len(val))
		} else {
			out[off] = nid<<4 | byte(len(val)-1)
		}
		off += hl
		off += copy(out[off:], val)
	}
	for (off-4)%4 != 0 {
		out[off] = 0
		off++
	}
	if off == 4 {
		return 0
	}
	profile := uint16(extProfileOneByte)
	if twoByte {
		profile = extProfileTwoByte
	}
	binary.BigEndian.PutUint16(out[0:], profile)
	binary.BigEndian.PutUint16(out[2:], uint16((off-4)/4))
	return off
}
