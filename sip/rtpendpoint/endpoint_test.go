package rtpendpoint

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip/sdp"
)

var allSuites = []sdp.Suite{
	sdp.AESCM128HMACSHA180, sdp.AESCM128HMACSHA132,
	sdp.AES256CMHMACSHA180, sdp.AES256CMHMACSHA132,
	sdp.AEADAES128GCM, sdp.AEADAES256GCM,
}

// TestSRTPBothWays: every suite, with and without MKI and rtcp-mux, against
// a peer made of pion/srtp contexts on its own socket: the peer's packets
// come out of ReadRTP byte for byte, ours decrypt at the peer, across the
// 16-bit sequence wrap (the peer starts at 65500).
func TestSRTPBothWays(t *testing.T) {
	for _, suite := range allSuites {
		for _, mki := range []bool{false, true} {
			for _, mux := range []bool{true, false} {
				name := fmt.Sprintf("%s/mki=%v/mux=%v", suite, mki, mux)
				t.Run(name, func(t *testing.T) {
					pr := newPair(t, newKeys(t, suite, mki), mux, Options{}, nil)
					r := startReader(t, pr.ep)
					for i := range 60 {
						payload := bytes.Repeat([]byte{byte(i)}, 160)
						want := pr.peer.send(payload)
						got, err := r.next(waitFor)
						if err != nil {
							t.Fatalf("packet %d: %v", i, err)
						}
						raw, _ := got.Marshal()
						if !bytes.Equal(raw, want) {
							t.Fatalf("packet %d differs", i)
						}
						out := rtpPacket(t, 0x55, uint16(65500+i), uint32(160*i), payload)
						if err := pr.ep.WriteRTP(out); err != nil {
							t.Fatal(err)
						}
						back, err := pr.peer.recvRTP(waitFor)
						if err != nil {
							t.Fatalf("peer: packet %d: %v", i, err)
						}
						if back.SequenceNumber != uint16(65500+i) || !bytes.Equal(back.Payload, payload) {
							t.Fatalf("peer got seq %d payload %x…", back.SequenceNumber, back.Payload[:4])
						}
					}
					st := pr.ep.Stats()
					if st.Received.Packets != 60 || st.Sent.Packets != 60 || st.Received.Lost != 0 {
						t.Fatalf("stats %+v", st)
					}
					p, _ := suite.Profile()
					if st.SRTPProfile != p.String() {
						t.Fatalf("profile %q", st.SRTPProfile)
					}
				})
			}
		}
	}
}

// TestPlainRTP: without keys packets pass unchanged both ways.
func TestPlainRTP(t *testing.T) {
	pr := newPair(t, nil, true, Options{}, nil)
	r := startReader(t, pr.ep)
	want := pr.peer.send([]byte("plain"))
	got, err := r.next(waitFor)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := got.Marshal(); !bytes.Equal(raw, want) {
		t.Fatal("plain packet changed")
	}
	out := rtpPacket(t, 9, 1, 2, []byte("back"))
	if err := pr.ep.WriteRTP(out); err != nil {
		t.Fatal(err)
	}
	back, err := pr.peer.recvRTP(waitFor)
	if err != nil || string(back.Payload) != "back" {
		t.Fatalf("%v %q", err, back.Payload)
	}
}

// TestCloseUnblocksRead: Close wakes a blocked ReadRTP with an error that
// wraps net.ErrClosed; later calls fail the same way; Close is idempotent.
func TestCloseUnblocksRead(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AEADAES128GCM, false), false, Options{RTCPInterval: time.Hour}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := pr.ep.ReadRTP(make([]byte, 1500))
		errc <- err
	}()
	// A packet in flight: Close must work whether the reader returns it
	// first or not.
	pr.peer.send([]byte("x"))
	if err := pr.ep.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			// It may have returned the packet first; the next read must fail.
			_, err = pr.ep.ReadRTP(make([]byte, 1500))
		}
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadRTP after Close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("ReadRTP still blocked after Close")
	}
	if _, err := pr.ep.ReadRTP(make([]byte, 1500)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadRTP: %v", err)
	}
	if err := pr.ep.WriteRTP(rtpPacket(t, 1, 1, 1, nil)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteRTP: %v", err)
	}
	if err := pr.ep.Update(pr.neg); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Update: %v", err)
	}
	if err := pr.ep.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBlockedReadWokenByClose: a ReadRTP that has certainly blocked (no
// packet ever comes) returns once Close is called.
func TestBlockedReadWokenByClose(t *testing.T) {
	pr := newPair(t, nil, true, Options{}, nil)
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := pr.ep.ReadRTP(make([]byte, 1500))
		errc <- err
	}()
	<-started
	select {
	case err := <-errc:
		t.Fatalf("ReadRTP returned before Close: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	pr.ep.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("still blocked")
	}
}

// TestOwnerClosedSocket: when the owner closes the socket first, ReadRTP
// fails with net.ErrClosed instead of spinning.
func TestOwnerClosedSocket(t *testing.T) {
	pr := newPair(t, nil, false, Options{}, nil)
	pr.epRTP.Close()
	if _, err := pr.ep.ReadRTP(make([]byte, 1500)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// TestShortBuffer: a packet larger than the caller's buffer is dropped with
// io.ErrShortBuffer and counted; the next read works.
func TestShortBuffer(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{}, nil)
	pr.peer.send(make([]byte, 400))
	if _, err := pr.ep.ReadRTP(make([]byte, 100)); err == nil {
		t.Fatal("no error for a short buffer")
	}
	pr.peer.send(make([]byte, 40))
	if n, err := pr.ep.ReadRTP(make([]byte, 1500)); err != nil || n != 52 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if s := pr.ep.Stats(); s.Received.TooLarge != 1 {
		t.Fatalf("TooLarge=%d", s.Received.TooLarge)
	}
}
