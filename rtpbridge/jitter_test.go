package rtpbridge

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

type arrival struct {
	seq uint16
	ts  uint32
	at  time.Duration
}

// impaired makes n packets of 20 ms (48 kHz clock) starting at seq0, drops
// each with probability loss and delays each by a uniform 0..jitter, and
// returns them in arrival order with the set of dropped sequence numbers.
func impaired(r *rand.Rand, n int, seq0 uint16, loss float64, jitter time.Duration) ([]arrival, map[uint16]bool) {
	var out []arrival
	dropped := map[uint16]bool{}
	for i := 0; i < n; i++ {
		seq := seq0 + uint16(i)
		if i > 0 && i < n-1 && r.Float64() < loss {
			dropped[seq] = true
			continue
		}
		at := time.Duration(i)*20*time.Millisecond + time.Duration(r.Int64N(int64(jitter)+1))
		out = append(out, arrival{seq, uint32(i) * 960, at})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out, dropped
}

// TestJitterBufferImpaired runs 20 % loss and 60 ms of jitter through the
// buffer, popping on every arrival as the bridge does: every sequence
// number comes out once and in order, reordered packets are put back in
// place, every dropped packet is concealed, and no packet waits longer
// than the buffer's bound plus the gap to the next arrival.
func TestJitterBufferImpaired(t *testing.T) {
	cfg := JitterConfig{Min: 20 * time.Millisecond, Max: 120 * time.Millisecond}
	r := rand.New(rand.NewPCG(1, 2))
	arrivals, dropped := impaired(r, 2000, 65000, 0.2, 60*time.Millisecond)
	jb := newJitterBuffer(cfg, 48000)
	next := uint16(65000)
	var played, lost, reordered int
	var maxSeq uint16 = 64999
	var maxGap time.Duration
	for i, a := range arrivals {
		if int16(a.seq-maxSeq) < 0 {
			reordered++
		} else {
			maxSeq = a.seq
		}
		if i > 0 {
			maxGap = max(maxGap, a.at-arrivals[i-1].at)
		}
		jb.Push(a.seq, a.ts, []byte{byte(a.seq), byte(a.seq >> 8)}, a.at)
		for {
			f := jb.Pop(a.at)
			if f.kind == frameNone {
				break
			}
			switch f.kind {
			case framePacket:
				got := uint16(f.payload[0]) | uint16(f.payload[1])<<8
				if got != next {
					t.Fatalf("played %d, want %d", got, next)
				}
				played++
			case frameLost:
				if f.ticks != 960 && f.ticks != 0 {
					t.Fatalf("lost frame of %d ticks", f.ticks)
				}
				if f.payload != nil {
					// FEC: the payload after the loss is the next one.
					if got := uint16(f.payload[0]) | uint16(f.payload[1])<<8; got != next+1 {
						t.Fatalf("fec payload %d after lost %d", got, next)
					}
				}
				lost++
			}
			next++
		}
	}
	if reordered < 100 {
		t.Fatalf("only %d reordered arrivals: the test does not exercise reordering", reordered)
	}
	if lost < len(dropped) {
		t.Fatalf("concealed %d frames for %d dropped packets", lost, len(dropped))
	}
	// Packets given up on are late; with an adaptive wait there are few.
	if jb.late > 20 || uint64(lost) != uint64(len(dropped))+jb.late {
		t.Fatalf("late %d, lost %d, dropped %d", jb.late, lost, len(dropped))
	}
	if played+lost != 2000-1-int(jb.count) && played+lost != 2000-int(jb.count) {
		t.Fatalf("played %d + lost %d, buffered %d of 2000", played, lost, jb.count)
	}
	if jb.maxHold > cfg.Max+maxGap {
		t.Fatalf("a packet waited %v (bound %v + arrival gap %v)", jb.maxHold, cfg.Max, maxGap)
	}
	if w := jb.wait(); w < 40*time.Millisecond || w > cfg.Max {
		t.Fatalf("adaptive wait %v under 60 ms jitter", w)
	}
	t.Logf("played %d, concealed %d (dropped %d, late %d), reordered %d, max hold %v, wait %v",
		played, lost, len(dropped), jb.late, reordered, jb.maxHold, jb.wait())
}

// TestJitterBufferInOrderNoDelay: an ordered stream passes without waiting.
func TestJitterBufferInOrderNoDelay(t *testing.T) {
	jb := newJitterBuffer(JitterConfig{}, 8000)
	for i := 0; i < 100; i++ {
		now := time.Duration(i) * 20 * time.Millisecond
		jb.Push(uint16(i), uint32(i*160), []byte{1}, now)
		f := jb.Pop(now)
		if f.kind != framePacket || f.hold != 0 {
			t.Fatalf("packet %d: %+v", i, f)
		}
	}
}

// TestJitterBufferBoundsWait: a fixed 20 ms wait gives up on a packet 60 ms
// late, counts it late when it comes, and learns to wait longer.
func TestJitterBufferBoundsWait(t *testing.T) {
	jb := newJitterBuffer(JitterConfig{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}, 8000)
	ms := time.Millisecond
	jb.Push(0, 0, []byte{0}, 0)
	if f := jb.Pop(0); f.kind != framePacket {
		t.Fatal("first packet not played")
	}
	jb.Push(2, 320, []byte{2}, 40*ms) // 1 is missing
	if f := jb.Pop(40 * ms); f.kind != frameNone {
		t.Fatalf("gave up at once: %+v", f)
	}
	jb.Push(3, 480, []byte{3}, 60*ms)
	f := jb.Pop(60 * ms)
	if f.kind != frameLost || f.ticks != 160 || f.payload[0] != 2 {
		t.Fatalf("after 20 ms: %+v", f)
	}
	if f := jb.Pop(60 * ms); f.kind != framePacket || f.payload[0] != 2 || f.hold != 20*ms {
		t.Fatalf("packet 2: %+v", f)
	}
	jb.Pop(60 * ms)
	before := jb.wait()
	if jb.Push(1, 160, []byte{1}, 80*ms) || jb.late != 1 {
		t.Fatalf("late packet accepted (late %d)", jb.late)
	}
	if jb.wait() <= before {
		t.Fatalf("wait did not grow after a late packet: %v -> %v", before, jb.wait())
	}
	if jb.Push(3, 480, []byte{3}, 90*ms) {
		t.Fatal("duplicate of a played packet accepted")
	}
}

// TestJitterBufferWindow: a jump past the window conceals what is missing
// instead of holding more than jbSlots packets, and a restart resets.
func TestJitterBufferWindow(t *testing.T) {
	jb := newJitterBuffer(JitterConfig{}, 8000)
	jb.Push(100, 0, []byte{0}, 0)
	jb.Pop(0)
	jb.Push(100+jbSlots+5, 0, []byte{1}, 0)
	if jb.count != 1 || jb.next <= jb.extend(101) {
		t.Fatalf("window: count %d next %d", jb.count, jb.next)
	}
	// A restart (RFC 3550 §A.1) is believed when the next packet follows.
	if jb.Push(40000, 0, []byte{2}, 0) {
		t.Fatal("a single far packet accepted")
	}
	jb.Push(40001, 0, []byte{2}, 0)
	if f := jb.Pop(0); f.kind != framePacket || f.payload[0] != 2 {
		t.Fatalf("after restart: %+v", f)
	}
}
