package rtpbridge

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestParseRTP(t *testing.T) {
	plain := pkt(111, 65535, 4294967295, 0xdeadbeef, true, []byte{1, 2, 3})
	padded := append(pkt(0, 1, 2, 3, false, []byte{9, 9}), 0, 0, 3)
	padded[0] |= 0x20
	withCSRC := pkt(8, 7, 8, 9, false, nil)
	withCSRC[0] |= 2
	withCSRC = append(withCSRC[:12], append(make([]byte, 8), 5, 6)...)
	ext := pktExt(111, 10, 20, 30, []byte{7}, []byte{3, 0xaa, 0xbb, 0xcc})
	for _, tc := range []struct {
		name    string
		b       []byte
		err     error
		payload []byte
		plain   bool
	}{
		{"plain", plain, nil, []byte{1, 2, 3}, true},
		{"padded", padded, nil, []byte{9, 9}, false},
		{"csrc", withCSRC, nil, []byte{5, 6}, false},
		{"extension", ext, nil, []byte{7}, false},
		{"short", plain[:11], errRTPShort, nil, false},
		{"version", append([]byte{0x40}, plain[1:]...), errRTPVersion, nil, false},
		{"rtcp-mux", []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0}, errRTCP, nil, false},
		{"zero padding", append(append([]byte(nil), padded[:len(padded)-1]...), 0), errRTPPadding, nil, false},
		{"padding too long", append(append([]byte(nil), padded[:len(padded)-1]...), 40), errRTPPadding, nil, false},
		{"csrc truncated", withCSRC[:16], errRTPShort, nil, false},
		{"extension truncated", ext[:17], errRTPShort, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h header
			err := parseRTP(tc.b, &h)
			if err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(h.payload, tc.payload) || h.plain() != tc.plain {
				t.Fatalf("payload %x plain %v, want %x %v", h.payload, h.plain(), tc.payload, tc.plain)
			}
		})
	}
	var h header
	if err := parseRTP(plain, &h); err != nil || h.seq != 65535 || h.ts != 4294967295 || h.ssrc != 0xdeadbeef || !h.marker || h.pt != 111 {
		t.Fatalf("fields: %+v %v", h, err)
	}
}

func TestExtensionIter(t *testing.T) {
	type elem struct {
		id  uint8
		val string
	}
	for _, tc := range []struct {
		name    string
		profile uint16
		data    []byte
		want    []elem
		err     error
	}{
		{"one-byte", 0xBEDE, []byte{0x22, 1, 2, 3, 0, 0x10, 9, 0}, []elem{{2, "\x01\x02\x03"}, {1, "\x09"}}, nil},
		{"one-byte id 15 stops", 0xBEDE, []byte{0x10, 9, 0xF3, 1, 2, 3, 4, 0x10, 8}, []elem{{1, "\x09"}}, nil},
		{"one-byte truncated", 0xBEDE, []byte{0x13, 1}, nil, errExtTruncated},
		{"two-byte", 0x1000, []byte{20, 2, 1, 2, 0, 0, 21, 0}, []elem{{20, "\x01\x02"}, {21, ""}}, nil},
		{"two-byte appbits", 0x100F, []byte{5, 1, 7, 0}, []elem{{5, "\x07"}}, nil},
		{"two-byte truncated", 0x1000, []byte{5}, nil, errExtTruncated},
		{"two-byte value truncated", 0x1000, []byte{5, 9, 1}, nil, errExtTruncated},
		{"other profile", 0x1234, []byte{1, 2, 3, 4}, nil, errExtProfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it, err := newExtIter(tc.profile, tc.data)
			var got []elem
			for err == nil {
				id, val, ok, e := it.next()
				if e != nil {
					err = e
					break
				}
				if !ok {
					break
				}
				got = append(got, elem{id, string(val)})
			}
			if err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestWriteExtensions(t *testing.T) {
	// Telegram sends abs-send-time (id 2) and transport-cc (id 3); only
	// audio level (id 1, mapped to 5) may pass.
	b := pktExt(111, 1, 2, 3, []byte{0xab}, []byte{2, 1, 2, 3}, []byte{3, 0, 7}, []byte{1, 0x85})
	var h header
	if err := parseRTP(b, &h); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, maxExtBlock)
	if n := writeExtensions(out, &h, nil); n != 0 {
		t.Fatalf("no map: wrote %d bytes", n)
	}
	if n := writeExtensions(out, &h, map[uint8]uint8{9: 1}); n != 0 {
		t.Fatalf("unrelated map: wrote %d bytes", n)
	}
	n := writeExtensions(out, &h, map[uint8]uint8{1: 5})
	want := []byte{0xBE, 0xDE, 0, 1, 0x50, 0x85, 0, 0}
	if !bytes.Equal(out[:n], want) {
		t.Fatalf("block %x, want %x", out[:n], want)
	}
	// An id above 14 needs the two-byte form.
	n = writeExtensions(out, &h, map[uint8]uint8{1: 20, 2: 21})
	want = []byte{0x10, 0x00, 0, 2, 21, 3, 1, 2, 3, 20, 1, 0x85}
	if !bytes.Equal(out[:n], want) {
		t.Fatalf("block %x, want %x", out[:n], want)
	}
}

// FuzzParseRTP checks that no packet makes the parser or the extension
// rewriter panic, and that what they produce parses again.
func FuzzParseRTP(f *testing.F) {
	f.Add(pkt(111, 1, 2, 3, false, []byte{1}))
	f.Add(pktExt(111, 1, 2, 3, []byte{1}, []byte{2, 1, 2, 3}, []byte{1, 9}))
	two := pktExt(111, 1, 2, 3, []byte{1})
	binary.BigEndian.PutUint16(two[12:], 0x1000)
	f.Add(append(two, 1, 2, 3, 4))
	f.Add([]byte{0xb0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h header
		if parseRTP(b, &h) != nil {
			return
		}
		if len(h.payload) > len(b) {
			t.Fatal("payload outside the packet")
		}
		it, err := newExtIter(h.extProfile, h.ext)
		for err == nil {
			_, val, ok, e := it.next()
			if !ok || e != nil {
				break
			}
			if len(val) > len(h.ext) {
				t.Fatal("element outside the block")
			}
		}
		out := make([]byte, rtpHeaderLen+maxExtBlock+len(h.payload))
		n := writeExtensions(out[rtpHeaderLen:], &h, map[uint8]uint8{1: 1, 2: 15, 3: 3, 16: 4})
		putHeader(out, h.marker, h.pt, h.seq, h.ts, h.ssrc, n > 0)
		m := rtpHeaderLen + n + copy(out[rtpHeaderLen+n:], h.payload)
		var h2 header
		if err := parseRTP(out[:m], &h2); err != nil {
			t.Fatalf("rewritten packet does not parse: %v", err)
		}
		if !bytes.Equal(h2.payload, h.payload) {
			t.Fatal("payload changed")
		}
		if h2.ext != nil {
			if _, err := newExtIter(h2.extProfile, h2.ext); err != nil {
				t.Fatalf("rewritten extension: %v", err)
			}
		}
	})
}
