package demo

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// fakeConn feeds ReadRTP from a list (then io.EOF, or its error) and keeps
// what WriteRTP gets.
type fakeConn struct {
	in      [][]byte
	readErr []error // returned before in[i] when set
	out     [][]byte
	audio   tgcall.Audio
	failAt  int // WriteRTP fails on this packet (1-based); 0 never
}

func (f *fakeConn) ReadRTP(b []byte) (int, error) {
	if len(f.readErr) > 0 {
		err := f.readErr[0]
		f.readErr = f.readErr[1:]
		if err != nil {
			return 0, err
		}
	}
	if len(f.in) == 0 {
		return 0, io.EOF
	}
	n := copy(b, f.in[0])
	f.in = f.in[1:]
	return n, nil
}

func (f *fakeConn) WriteRTP(b []byte) error {
	f.out = append(f.out, append([]byte(nil), b...))
	if f.failAt > 0 && len(f.out) == f.failAt {
		return errors.New("write failed")
	}
	return nil
}

func (f *fakeConn) Audio() tgcall.Audio { return f.audio }

func marshal(t *testing.T, p rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEchoRestamps(t *testing.T) {
	peer := func(seq uint16, ts uint32, payload string) []byte {
		return marshal(t, rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SSRC: 0xdead, SequenceNumber: seq, Timestamp: ts},
			Payload: []byte(payload),
		})
	}
	c := &fakeConn{
		audio: tgcall.Audio{SSRC: 0x11223344, PayloadType: 111},
		in: [][]byte{
			peer(7, 1000, "a"),
			{0x80},             // not RTP: skipped
			peer(8, 3880, "b"), // a 60 ms frame later
			peer(10, 6760, "c"),
		},
		// An oversized packet the session dropped does not end the echo.
		readErr: []error{nil, nil, io.ErrShortBuffer},
	}
	if err := echo(c); !errors.Is(err, io.EOF) {
		t.Fatalf("echo ended with %v, want the read error", err)
	}
	if len(c.out) != 3 {
		t.Fatalf("echoed %d packets, want 3", len(c.out))
	}
	var first rtp.Packet
	for i, b := range c.out {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
		if p.SSRC != 0x11223344 || p.PayloadType != 111 {
			t.Errorf("packet %d: ssrc %x pt %d, want ours", i, p.SSRC, p.PayloadType)
		}
		if p.SequenceNumber != first.SequenceNumber+uint16(i) {
			t.Errorf("packet %d: seq %d, want consecutive from %d", i, p.SequenceNumber, first.SequenceNumber)
		}
		if want := []string{"a", "b", "c"}[i]; string(p.Payload) != want {
			t.Errorf("packet %d: payload %q, want %q", i, p.Payload, want)
		}
		if want := []uint32{0, 2880, 5760}[i]; p.Timestamp-first.Timestamp != want {
			t.Errorf("packet %d: timestamp +%d, want +%d", i, p.Timestamp-first.Timestamp, want)
		}
	}
	if first.Timestamp == 1000 || first.SequenceNumber == 7 {
		t.Error("echo kept the peer's sequence or timestamp base")
	}
	// A failing write ends the echo with its error.
	c = &fakeConn{audio: tgcall.Audio{SSRC: 1, PayloadType: 111}, in: [][]byte{peer(1, 1, "x"), peer(2, 2, "y")}, failAt: 1}
	if err := echo(c); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("echo after a failed write: %v", err)
	}
}

func TestPlayToneIs1kHzOpus(t *testing.T) {
	c := &fakeConn{audio: tgcall.Audio{SSRC: 42, PayloadType: 111}, failAt: 40}
	// The 40th write fails and ends playTone: 40 frames, 0.8 s.
	if err := playTone(context.Background(), c, 1000, nil); err == nil {
		t.Fatal("playTone ignored a failed write")
	}
	in := &fakeConn{in: c.out}
	pcm, err := audiotest.ReceiveOpus(in, audiotest.OpusRate/2, 5)
	if err != nil {
		t.Fatal(err)
	}
	f, p := audiotest.DominantFrequency(pcm, audiotest.OpusRate, 100, 4000, 2)
	if f < 980 || f > 1020 || p < 10 {
		t.Errorf("tone at %v Hz (prominence %.1f), want 1 kHz", f, p)
	}
	var prev rtp.Packet
	for i, b := range c.out {
		var pkt rtp.Packet
		if err := pkt.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if pkt.SSRC != 42 || pkt.PayloadType != 111 {
			t.Fatalf("packet %d: ssrc %d pt %d", i, pkt.SSRC, pkt.PayloadType)
		}
		if i > 0 && (pkt.SequenceNumber != prev.SequenceNumber+1 || pkt.Timestamp != prev.Timestamp+frameSamples) {
			t.Fatalf("packet %d: seq %d ts %d after %d/%d", i, pkt.SequenceNumber, pkt.Timestamp, prev.SequenceNumber, prev.Timestamp)
		}
		prev = pkt
	}
	// A cancelled context stops it after the frame in flight.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c = &fakeConn{audio: tgcall.Audio{SSRC: 42, PayloadType: 111}}
	if err := playTone(ctx, c, 1000, nil); !errors.Is(err, context.Canceled) || len(c.out) != 1 {
		t.Errorf("cancelled playTone: %v after %d frames", err, len(c.out))
	}
}
