package rtpbridge

import (
	"time"
)

// JitterConfig bounds the jitter buffer of the transcoding directions.
type JitterConfig struct {
	// Min and Max bound how long the buffer waits for a missing packet
	// before it conceals it (defaults 20 ms and 200 ms). In between, the
	// wait adapts to the measured jitter.
	Min, Max time.Duration
}

func (c JitterConfig) withDefaults() JitterConfig {
	if c.Min <= 0 {
		c.Min = 20 * time.Millisecond
	}
	if c.Max <= 0 {
		c.Max = 200 * time.Millisecond
	}
	if c.Max < c.Min {
		c.Max = c.Min
	}
	return c
}

const (
	jbSlots   = 16   // packets held at most (320 ms of 20 ms packets, beyond the 200 ms wait)
	jbSlotCap = 1500 // payload bytes per packet
)

// jbSlot is one buffered packet.
type jbSlot struct {
	used bool
	seq  uint64 // extended sequence number
	ts   uint32
	at   time.Duration
	n    int
}

// frameKind says what Pop returns.
type frameKind int

const (
	frameNone frameKind = iota
	framePacket
	frameLost
)

// jbFrame is one frame out of the jitter buffer: a packet's payload, or a
// lost packet to conceal (with the payload that follows it, when buffered,
// for Opus in-band FEC).
type jbFrame struct {
	kind    frameKind
	payload []byte // framePacket: the payload; frameLost: the next one or nil
	ts      uint32
	// ticks is the length of a lost frame in RTP clock ticks, 0 when
	// unknown.
	ticks uint32
	// hold is how long a packet waited in the buffer.
	hold time.Duration
}

// jitterBuffer reorders one source's packets and decides when a missing
// packet is lost. It is pure state: the caller passes the clock.
//
// A packet in order leaves at once: the buffer adds no delay to an
// ordered stream. Only packets behind a gap wait, for at most the adaptive
// wait (between Config.Min and Config.Max); then the missing packet is
// declared lost and concealed. Both ends of a bridged call run playout
// buffers of their own (WebRTC NetEQ in tgcalls, the phone's), so this
// buffer only has to restore order and mark losses; smoothing arrival
// times again here would add delay twice.
type jitterBuffer struct {
	cfg   JitterConfig
	clock int64
	slots [jbSlots]jbSlot
	data  []byte // jbSlots × jbSlotCap

	started  bool
	next     uint64 // extended sequence number to play next
	count    int
	lastTS   uint32 // timestamp of the last frame played
	lastSeq  uint64
	played   bool
	maxSeen  uint64
	transit  int64
	jitter   float64 // RFC 3550 §A.8 estimate, in ticks
	extra    time.Duration
	late     uint64
	lost     uint64
	dups     uint64
	maxHold  time.Duration
	lastWait time.Duration
	badSeq   uint16
	badValid bool
}

func newJitterBuffer(cfg JitterConfig, clock int) *jitterBuffer {
	return &jitterBuffer{cfg: cfg.withDefaults(), clock: int64(clock), data: make([]byte, jbSlots*jbSlotCap)}
}

// wait is how long a gap may stay open: three times the jitter estimate
// plus what late packets taught, within the configured bounds.
func (j *jitterBuffer) wait() time.Duration {
	w := time.Duration(3*j.jitter*float64(time.Second)/float64(j.clock)) + j.extra
	return min(max(w, j.cfg.Min), j.cfg.Max)
}

// extend turns a 16-bit sequence number into the one nearest to next.
func (j *jitterBuffer) extend(seq uint16) uint64 {
	ref := j.next
	if j.maxSeen > ref {
		ref = j.maxSeen
	}
	d := int64(int16(seq - uint16(ref)))
	e := int64(ref) + d
	if e < 0 {
		e += 1 << 16
	}
	return uint64(e)
}

// reset forgets everything buffered (a new source).
func (j *jitterBuffer) reset() {
	for i := range j.slots {
		j.slots[i].used = false
	}
	j.count, j.started, j.played = 0, false, false
}

// Push buffers a packet that arrived at now. It reports false for a packet
// too late (its turn passed), a duplicate, or one too large.
func (j *jitterBuffer) Push(seq uint16, ts uint32, payload []byte, now time.Duration) bool {
	if len(payload) > jbSlotCap {
		return false
	}
	// Jitter estimate (RFC 3550 §A.8) over arrival vs. media time.
	arrival := int64(now) * j.clock / int64(time.Second)
	transit := arrival - int64(ts)
	if j.started {
		d := float64(transit - j.transit)
		if d < 0 {
			d = -d
		}
		if d < float64(10*j.clock) {
			j.jitter += (d - j.jitter) / 16
		}
	}
	j.transit = transit
	if !j.started {
		j.started, j.next, j.maxSeen = true, uint64(seq)+1<<16, uint64(seq)+1<<16
	}
	e := j.extend(seq)
	if e >= j.next+maxDropout || e+maxMisorder < j.next {
		// RFC 3550 §A.1: a jump this large is a restart of the source
		// once the packet after it follows on; until then it is dropped.
		if !j.badValid || seq != j.badSeq {
			j.badSeq, j.badValid = seq+1, true
			return false
		}
		j.reset()
		e = uint64(seq) + 1<<16
		j.started, j.next, j.maxSeen = true, e, e
	}
	j.badValid = false
	if e < j.next {
		j.late++
		// A packet given up on came after all: wait longer next time.
		j.extra = min(j.extra+10*time.Millisecond, j.cfg.Max)
		return false
	}
	for e >= j.next+jbSlots {
		// Too far ahead for the window: the oldest gap is lost for sure.
		if !j.dropHead() {
			j.next++
			j.lost++
		}
	}
	s := &j.slots[e%jbSlots]
	if s.used && s.seq == e {
		j.dups++
		return false
	}
	*s = jbSlot{used: true, seq: e, ts: ts, at: now, n: len(payload)}
	copy(j.data[int(e%jbSlots)*jbSlotCap:], payload)
	j.count++
	if e > j.maxSeen {
		j.maxSeen = e
	}
	if j.extra > 0 {
		j.extra -= j.extra / 64
	}
	return true
}

// dropHead discards the packet at next (window overflow); it reports
// whether there was one.
func (j *jitterBuffer) dropHead() bool {
	s := &j.slots[j.next%jbSlots]
	if !s.used || s.seq != j.next {
		return false
	}
	s.used = false
	j.count--
	j.next++
	return true
}

func (j *jitterBuffer) payload(s *jbSlot) []byte {
	i := int(s.seq%jbSlots) * jbSlotCap
	return j.data[i : i+s.n : i+s.n]
}

// Pop returns the next frame due at now: the packet in turn if it is
// here, a lost frame if the gap before the next buffered packet has been
// open for the whole wait, or frameNone. The payload is valid until the
// next Push.
func (j *jitterBuffer) Pop(now time.Duration) jbFrame {
	if j.count == 0 {
		return jbFrame{}
	}
	s := &j.slots[j.next%jbSlots]
	if s.used && s.seq == j.next {
		s.used = false
		j.count--
		j.next++
		j.lastTS, j.lastSeq, j.played = s.ts, s.seq, true
		hold := now - s.at
		j.maxHold = max(j.maxHold, hold)
		return jbFrame{kind: framePacket, payload: j.payload(s), ts: s.ts, hold: hold}
	}
	// A gap: it opened when the first packet after it arrived.
	var oldest time.Duration = -1
	var head, newest *jbSlot
	for i := uint64(1); i < jbSlots; i++ {
		t := &j.slots[(j.next+i)%jbSlots]
		if !t.used || t.seq != j.next+i {
			continue
		}
		if head == nil {
			head = t
		}
		newest = t
		if oldest < 0 || t.at < oldest {
			oldest = t.at
		}
	}
	if head == nil {
		return jbFrame{}
	}
	j.lastWait = j.wait()
	// The gap is closed as lost when it has been open for the wait, or
	// when the packets behind it already hold more audio than the wait
	// (they came in a burst: the missing one is that late at least).
	if now-oldest < j.lastWait && j.bufferedBehind(head, newest) <= j.lastWait {
		return jbFrame{}
	}
	f := jbFrame{kind: frameLost}
	if j.played && head.seq > j.lastSeq {
		f.ticks = (head.ts - j.lastTS) / uint32(head.seq-j.lastSeq)
		f.ts = j.lastTS + f.ticks
		j.lastTS = f.ts
		j.lastSeq++
	}
	if head.seq == j.next+1 {
		f.payload = j.payload(head)
	}
	j.next++
	j.lost++
	return f
}

// bufferedBehind is the audio held behind the gap, from head to the end
// of newest.
func (j *jitterBuffer) bufferedBehind(head, newest *jbSlot) time.Duration {
	if !j.played || newest.seq <= j.lastSeq {
		return 0
	}
	per := (newest.ts - j.lastTS) / uint32(newest.seq-j.lastSeq)
	return time.Duration(int64(newest.ts-head.ts+per) * int64(time.Second) / j.clock)
}
