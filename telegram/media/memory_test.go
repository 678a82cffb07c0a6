package media

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestOversizeDatagramDropped: a datagram larger than maxDatagram on the
// selected path, whole or truncated by the kernel to the read buffer, is
// dropped and counted before decryption, and packets after it still flow.
func TestOversizeDatagramDropped(t *testing.T) {
	a, b := connectedPair(t, Config{P2PAllowed: true}, Config{P2PAllowed: true})
	// A reader with room for more than maxDatagram, so that its buffer
	// is not what refuses the datagram.
	rb := &reader{pkts: make(chan []byte, 1024), done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		buf := make([]byte, 4*maxDatagram)
		for {
			n, err := b.ReadRTP(buf)
			if err != nil {
				if b.Err() != nil {
					return
				}
				continue
			}
			select {
			case rb.pkts <- append([]byte(nil), buf[:n]...):
			default:
			}
		}
	}()
	flow(t, a, rb, 0x1234, "warm", 5) // b's reader owns its socket now
	r := a.route.Load()
	if r == nil || r.conn == nil {
		t.Fatalf("no direct route: %+v", r)
	}
	dropped, authFailures := b.st.dropped.Load(), b.st.authFailures.Load()
	for _, size := range []int{maxDatagram + 1, datagramBuf + 100} {
		big := make([]byte, size)
		big[0], big[1] = 0x80, 111 // looks like RTP (RFC 7983)
		if err := r.conn.writeDirect(big, r.remote); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for b.st.dropped.Load()-dropped < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d of 2 oversize datagrams", b.st.dropped.Load()-dropped)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.st.authFailures.Load() - authFailures; n != 0 {
		t.Errorf("%d oversize datagrams reached decryption", n)
	}
	flow(t, a, rb, 0x1234, "after", 5)

	// WriteRTP refuses what would not fit a datagram once protected.
	if err := a.WriteRTP(rtpPacket(t, 0x1234, 1, make([]byte, maxWriteRTP))); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("WriteRTP of %d bytes: %v, want io.ErrShortBuffer", maxWriteRTP+12, err)
	}
	if err := a.WriteRTP(rtpPacket(t, 0x1234, 2, make([]byte, maxWriteRTP-12))); err != nil {
		t.Errorf("WriteRTP of %d bytes: %v", maxWriteRTP, err)
	}
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
}

// TestTransportSharesInterfaces: the calls of one Transport gather from one
// interface list, not a netlink dump each.
func TestTransportSharesInterfaces(t *testing.T) {
	tr := loopbackTransport()
	a, b := newSession(t, Config{Transport: tr}), newSession(t, Config{Transport: tr})
	if a.net.Net != b.net.Net {
		t.Error("two calls of one Transport read the interfaces twice")
	}
	if c := newSession(t, Config{Transport: loopbackTransport()}); c.net.Net == a.net.Net {
		t.Error("two Transports share an interface list")
	}
}
