package main

import (
	"bytes"
	"reflect"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBencode: an ng command encodes with sorted keys (BEP 3) and decodes
// back to the same values.
func TestBencode(t *testing.T) {
	var b bytes.Buffer
	msg := map[string]any{"command": "offer", "sdp": "v=0\r\n", "flags": []string{"a", "bc"}, "n": 42}
	if err := bencode(&b, msg); err != nil {
		t.Fatal(err)
	}
	want := "d7:command5:offer5:flagsl1:a2:bce1:ni42e3:sdp5:v=0\r\ne"
	if b.String() != want {
		t.Fatalf("bencode = %q, want %q", b.String(), want)
	}
	v, rest, err := bdecode(b.Bytes())
	if err != nil || len(rest) != 0 {
		t.Fatalf("bdecode: %v, %d bytes left", err, len(rest))
	}
	got := v.(map[string]any)
	if got["command"] != "offer" || got["n"] != 42 || !reflect.DeepEqual(got["flags"], []any{"a", "bc"}) || got["sdp"] != "v=0\r\n" {
		t.Fatalf("bdecode = %#v", got)
	}
}

// TestBdecodeRejects: truncated or malformed input is an error, not a
// panic.
func TestBdecodeRejects(t *testing.T) {
	for _, in := range []string{"", "d", "d3:abc", "l1:a", "i12", "5:abc", "x", "d1:ai1e", "99999999999999999999:a"} {
		if _, _, err := bdecode([]byte(in)); err == nil {
			t.Errorf("bdecode(%q): no error", in)
		}
	}
}
