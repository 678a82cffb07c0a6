package emu

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// FuzzSniff feeds arbitrary first bytes of a client connection to the
// transport sniffer: it must not panic or hang, and a plain transport it
// recognises must hand the stream on from its very first byte.
func FuzzSniff(f *testing.F) {
	f.Add([]byte{0xef, 1, 2, 3})                                  // abridged
	f.Add([]byte{0xee, 0xee, 0xee, 0xee, 4, 0, 0, 0, 1, 2, 3, 4}) // intermediate
	f.Add([]byte{0xdd, 0xdd, 0xdd, 0xdd, 4, 0, 0, 0, 1, 2, 3, 4}) // padded intermediate
	f.Add([]byte{12, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9})            // full (seqno 0)
	f.Add([]byte("POST /api HTTP/1.1\r\n"))
	f.Add(bytes.Repeat([]byte{0x5a}, 64)) // an obfuscated2 init with a wrong tag
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			_, _ = client.Write(data) // fails once the server side is closed: that ends it
			client.Close()
		}()
		conn, tr, err := sniffStream(server)
		if err == nil && !strings.HasPrefix(string(tr), string(TransportObfuscated)) {
			got, _ := io.ReadAll(conn)
			if !bytes.Equal(got, data) {
				t.Errorf("%s: stream %x, sent %x", tr, got, data)
			}
		}
		server.Close()
		<-wrote
	})
}
