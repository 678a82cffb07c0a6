package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseFromReflectorEdges(t *testing.T) {
	tag, _ := NewTag(bytes.Repeat([]byte{7}, 16), 42)
	tests := []struct {
		name    string
		in      []byte
		service bool
		data    []byte
		err     bool
	}{
		{"shorter than a tag", tag[:15], false, nil, true},
		{"bare tag", tag[:], true, nil, false},
		{"tag and header only (24 bytes)", AppendToClient(nil, tag, 1, nil), true, nil, false},
		{"hello reply", AppendHelloReply(nil, tag), true, nil, false},
		{"one byte of data, padded", AppendToClient(nil, tag, 9, []byte{0xAB}), false, []byte{0xAB}, false},
		{"padding not required", append(AppendToClient(nil, tag, 9, []byte{1, 2, 3, 4}), 0, 0)[:28], false, []byte{1, 2, 3, 4}, false},
		{"length beyond datagram", append(AppendToClient(nil, tag, 9, nil), 0, 0, 0, 0)[:24:24], true, nil, false},
		{"declared length too long", func() []byte {
			b := AppendToClient(nil, tag, 9, []byte{1, 2, 3, 4})
			b[23] = 5
			return b
		}(), false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseFromReflector(tt.in)
			if tt.err {
				if !errors.Is(err, ErrReflector) {
					t.Fatalf("err = %v, want ErrReflector", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Service != tt.service || !bytes.Equal(p.Data, tt.data) || p.Tag != tag {
				t.Fatalf("packet %+v", p)
			}
		})
	}
}

func TestParseToReflectorEdges(t *testing.T) {
	tag, _ := NewTag(bytes.Repeat([]byte{7}, 16), 42)
	if _, err := ParseToReflector(make([]byte, 23)); !errors.Is(err, ErrReflector) {
		t.Errorf("23 bytes: %v", err)
	}
	b := AppendReflectorData(nil, tag, 1, 2, []byte("abcdef"))
	if len(b)%4 != 0 {
		t.Errorf("datagram of %d bytes is not padded", len(b))
	}
	b[23] = 200
	if _, err := ParseToReflector(b); !errors.Is(err, ErrReflector) {
		t.Errorf("bad length: %v", err)
	}
	p, err := ParseToReflector(AppendReflectorData(nil, tag, 1, 2, nil))
	if err != nil || p.Hello || len(p.Data) != 0 || p.SenderRandom != 2 || p.Tag.Random() != 1 {
		t.Errorf("empty data: %+v, %v", p, err)
	}
	if _, err := NewTag(make([]byte, 12), 1); !errors.Is(err, ErrReflector) {
		t.Errorf("short peer tag: %v", err)
	}
}

func TestReflectorHostname(t *testing.T) {
	if got := ReflectorHostname(255, 4294967295); got != "reflector-255-4294967295.reflector" {
		t.Errorf("ReflectorHostname = %q", got)
	}
	for _, bad := range []string{
		"", "reflector-1-2", "reflector-1-2.reflector.", "reflector--2.reflector", "reflector-1-.reflector",
		"reflector-0-2.reflector", "reflector-1-0.reflector", "reflector-256-2.reflector",
		"reflector-1-4294967296.reflector", "reflector-01-2.reflector", "reflector-1-+2.reflector",
		"reflector-1-2-3.reflector", "reflector-x-2.reflector", "relay-1-2.reflector",
	} {
		if _, _, err := ParseReflectorHostname(bad); !errors.Is(err, ErrReflector) {
			t.Errorf("ParseReflectorHostname(%q) accepted", bad)
		}
	}
	id, r, err := ParseReflectorHostname("reflector-12-1.reflector")
	if err != nil || id != 12 || r != 1 {
		t.Errorf("= %d, %d, %v", id, r, err)
	}
}
