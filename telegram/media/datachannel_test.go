package media

import (
	"strings"
	"testing"
	"time"
)

// TestDataChannel: the caller opens tgcalls' "data" channel over SCTP on the
// DTLS connection, the callee accepts it, and text messages (MediaState)
// flow both ways while RTP readers run, as rtpbridge keeps them running.
func TestDataChannel(t *testing.T) {
	ca, cb := Config{Transport: loopbackTransport(), Outgoing: true, P2PAllowed: true}, Config{Transport: loopbackTransport(), P2PAllowed: true}
	a, b := newSession(t, ca), newSession(t, cb)
	gotA, gotB := make(chan string, 4), make(chan string, 4)
	a.OnData(func(m string) { gotA <- m })
	b.OnData(func(m string) { gotB <- m })
	if err := a.SendData("too early"); err == nil {
		t.Error("SendData before the channel opened succeeded")
	}
	link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	ra, rb := startReader(a), startReader(b)
	for _, s := range []*Session{a, b} {
		select {
		case <-s.DataChannelOpen():
		case <-time.After(testTimeout):
			t.Fatal("data channel did not open")
		}
	}
	const stateA = `{"@type":"MediaState","muted":true}`
	const stateB = `{"@type":"MediaState","muted":false}`
	if err := a.SendData(stateA); err != nil {
		t.Fatal(err)
	}
	if err := b.SendData(stateB); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ch   chan string
		want string
	}{{gotB, stateA}, {gotA, stateB}} {
		select {
		case m := <-c.ch:
			if m != c.want {
				t.Errorf("got %q, want %q", m, c.want)
			}
		case <-time.After(testTimeout):
			t.Fatalf("message %q not delivered", c.want)
		}
	}
	a.Close()
	b.Close()
	ra.wait(t)
	rb.wait(t)
}

// TestDataChannelLargeMessage: a message larger than the first read buffer
// still arrives whole (the buffer doubles up to tgcalls' 256 KiB limit).
func TestDataChannelLargeMessage(t *testing.T) {
	a, b := newSession(t, Config{Transport: loopbackTransport(), Outgoing: true, P2PAllowed: true}), newSession(t, Config{Transport: loopbackTransport(), P2PAllowed: true})
	got := make(chan string, 4)
	b.OnData(func(m string) { got <- m })
	link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	ra, rb := startReader(a), startReader(b)
	select {
	case <-a.DataChannelOpen():
	case <-time.After(testTimeout):
		t.Fatal("data channel did not open")
	}
	// Just over the kept buffer, large, tgcalls' largest, then small again
	// (the reader went back to its small buffer).
	msgs := []string{
		strings.Repeat("a", dataChannelReadSize+1),
		strings.Repeat("b", 100<<10),
		strings.Repeat("c", dataChannelMaxSize),
		"small",
	}
	for _, m := range msgs {
		if err := a.SendData(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %d bytes, want %d", len(m), len(want))
			}
		case <-time.After(testTimeout):
			t.Fatal("message not delivered")
		}
	}
	a.Close()
	b.Close()
	ra.wait(t)
	rb.wait(t)
}
