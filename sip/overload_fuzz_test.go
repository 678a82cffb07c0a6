package sip

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// FuzzStampInvite: the read filter's stamp leaves every datagram that is
// not an INVITE with a header section untouched, and inserts exactly one
// rxHeader line at the end of an INVITE's header section, the rest kept
// byte for byte.
func FuzzStampInvite(f *testing.F) {
	f.Add([]byte("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\nv=0\r\n"))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\n\r\n"))
	f.Add([]byte("INVITE no end"))
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
	f.Add([]byte{})
	now := time.Unix(0, 1765000000123456789)
	stamp := rxHeader + ": " + strconv.FormatInt(now.UnixNano(), 10) + "\r\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		out := stampInvite(nil, data, now)
		i := bytes.Index(data, headerEnd)
		if !bytes.HasPrefix(data, inviteStart) || i < 0 {
			if !bytes.Equal(out, data) {
				t.Fatalf("changed a datagram that is not an INVITE with headers:\n%q\n%q", data, out)
			}
			return
		}
		want := append(append(append([]byte(nil), data[:i+2]...), stamp...), data[i+2:]...)
		if !bytes.Equal(out, want) {
			t.Fatalf("stamped\n%q\nas\n%q, want\n%q", data, out, want)
		}
	})
}
