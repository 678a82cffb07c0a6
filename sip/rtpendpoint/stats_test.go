package rtpendpoint

import (
	"math"
	"testing"
	"time"
)

// TestJitterA8: arrivals alternately 5 ms early and late against
// timestamps 20 ms apart at 8 kHz: every |D| is 40 units after the first
// pair (the first gives 40 as well), and J follows J += (|D| - J)/16
// (RFC 3550 A.8) exactly.
func TestJitterA8(t *testing.T) {
	var c counters
	c.epoch = time.Unix(1000, 0)
	at := c.epoch
	want := 0.0
	for i := range 50 {
		f := rtpFields{seq: uint16(i), ts: uint32(i * 160), ssrc: 1}
		c.received(f, 160, at, 8000)
		if i > 0 {
			want += (40 - want) / 16
		}
		if math.Abs(c.rx.jitter-want) > 1e-9 {
			t.Fatalf("packet %d: J=%v, want %v", i, c.rx.jitter, want)
		}
		gap := 25 * time.Millisecond
		if i%2 == 1 {
			gap = 15 * time.Millisecond
		}
		at = at.Add(gap)
	}
	if s := c.snapshot(8000); s.Received.Jitter < 4*time.Millisecond || s.Received.Jitter > 5*time.Millisecond {
		t.Fatalf("jitter %v, want just under 5 ms", s.Received.Jitter)
	}
}

// TestSequenceA1: loss and the extended sequence number across wrap,
// duplicates, reordering, a stray packet far off and a restart (RFC 3550
// A.1, A.3).
func TestSequenceA1(t *testing.T) {
	var c counters
	now := time.Unix(1000, 0)
	feed := func(seqs ...int) {
		for _, s := range seqs {
			c.received(rtpFields{seq: uint16(s), ts: uint32(s) * 160, ssrc: 7}, 10, now, 8000)
		}
	}
	check := func(what string, lost int64, extMax uint32) {
		t.Helper()
		if got := c.rx.lost(); got != lost || c.rx.extMax() != extMax {
			t.Fatalf("%s: lost %d extMax %#x, want %d %#x", what, got, c.rx.extMax(), lost, extMax)
		}
	}
	feed(65530, 65531, 65533, 65535, 0, 1)
	check("wrap with gaps", 2, 1<<16|1)
	feed(1)
	check("duplicate", 1, 1<<16|1) // A.3: duplicates make loss go down
	feed(65534)
	check("late packet from before the wrap", 0, 1<<16|1)
	feed(30000)
	check("stray far-off packet is not counted", 0, 1<<16|1)
	feed(40000, 40001)
	check("restart: two in sequence resynchronise", 0, 40001)
	if c.lostPrior != 0 {
		t.Fatalf("lostPrior %d", c.lostPrior)
	}
	c.received(rtpFields{seq: 5, ts: 1, ssrc: 8}, 10, now, 8000)
	c.received(rtpFields{seq: 7, ts: 1, ssrc: 8}, 10, now, 8000)
	if s := c.snapshot(8000).Received; s.Lost != 1 || s.SSRC != 8 {
		t.Fatalf("after an SSRC change: lost %d ssrc %d", s.Lost, s.SSRC)
	}
}
