package rtpbridge

import (
	"errors"
	"net"
	"sync"
	"time"
)

// maxPacket is the largest RTP packet the bridge reads.
const maxPacket = 1500

// direction moves one leg's audio to the other: its goroutine reads the
// source Endpoint and writes the destination Endpoint directly, one packet
// at a time, with no channel or goroutine in between.
type direction struct {
	b        *Bridge
	src, dst *legState
	in, out  Format
	c        *dirCounters

	// Owned by the direction's goroutine, or under pmu by the source's
	// receiving goroutine when it pushes.
	pmu   sync.Mutex
	buf   []byte
	h     header
	rx    rxStream
	dtmf  dtmfReceiver
	tc    *transcoder
	pd    *passDetect     // passthrough: DTMF detection in Telegram's audio
	pr    *passRender     // passthrough: SIP events rendered toward Telegram
	stopC <-chan struct{} // closed when Run ends; set before the goroutines start
	// pushing: the source pushes its packets to deliver (Pusher), and
	// run only waits for the source's end.
	pushing bool

	// mu serialises what is sent toward dst: the direction's goroutine and
	// the supervisor's silence filler both write there.
	mu     sync.Mutex
	stream outStream
	rel    relay
	obuf   []byte
	filled bool
}

func newDirection(b *Bridge, src, dst *legState) (*direction, error) {
	d := &direction{
		b: b, src: src, dst: dst, in: src.Format, out: dst.Format, c: src.counters,
		buf:  make([]byte, maxPacket),
		obuf: make([]byte, maxPacket+maxExtBlock),
	}
	d.rx.clock = int64(d.in.ClockRate)
	d.dtmf = dtmfReceiver{leg: src.id, clock: d.in.ClockRate}
	d.stream = newOutStream(d.out)
	d.rel.out = &d.stream
	if !b.passthrough {
		d.tc = newTranscoder(b, d)
	} else {
		d.pd, d.pr = newPassDetect(b, d), newPassRender(b, d)
	}
	return d, nil
}

// run reads the source until it fails or done is closed. While the
// source pushes, the read only waits for the source's end (a packet it
// returns all the same is handled as a pushed one).
func (d *direction) run(done <-chan struct{}) error {
	buf := d.buf
	if d.pushing {
		buf = make([]byte, maxPacket)
	}
	for {
		n, err := d.src.Endpoint.ReadRTP(buf)
		if err != nil {
			select {
			case <-done:
				return nil
			default:
			}
			if errors.Is(err, ErrPushStopped) {
				return nil
			}
			return &EndpointError{Leg: d.src.id, Err: err}
		}
		if d.pushing {
			d.deliver(buf[:n])
			continue
		}
		d.packet(buf[:n], d.b.now())
	}
}

// pusher is the source's Pusher when this direction relays by push: a
// passthrough whose packets need no decoding on the way (DTMF detection
// decodes every packet, which would hold up the source's receiving
// goroutine, on the Telegram leg shared by every call).
func (d *direction) pusher() Pusher {
	if !d.b.passthrough || d.pd != nil {
		return nil
	}
	p, _ := d.src.Endpoint.(Pusher)
	return p
}

// deliver is the Pusher's callback: one packet of the source, handled to
// the end (rewrite, the destination's WriteRTP) on the source's receiving
// goroutine. It is copied first, so the source's buffer is neither
// modified nor kept; pmu keeps it single-file should a source deliver
// from more than one goroutine or its ReadRTP return a packet meanwhile.
func (d *direction) deliver(b []byte) {
	if len(b) > len(d.buf) {
		d.c.discarded.Add(1)
		return
	}
	d.pmu.Lock()
	n := copy(d.buf, b)
	d.packet(d.buf[:n], d.b.now())
	d.pmu.Unlock()
}

// packet handles one packet from the source, received at now.
func (d *direction) packet(pkt []byte, now time.Duration) {
	h := &d.h
	if err := parseRTP(pkt, h); err != nil {
		d.c.discarded.Add(1)
		return
	}
	dtmf := d.in.DTMFPayloadType != 0 && h.pt == d.in.DTMFPayloadType
	if !dtmf && h.pt != d.in.remotePT() {
		d.c.discarded.Add(1)
		return
	}
	d.src.lastRx.Store(int64(now))
	d.c.packets.Add(1)
	d.c.bytes.Add(uint64(len(h.payload)))
	d.rx.packet(h, now, d.c)
	if dtmf {
		d.telephoneEvent(pkt, h, now)
		return
	}
	if d.tc != nil {
		d.tc.packet(h, now)
		return
	}
	if d.pd != nil && d.pd.packet(d, h, now) {
		return
	}
	if d.pr != nil && d.pr.audio() {
		return
	}
	d.relayPacket(pkt, h, d.out.PayloadType, now)
}

// telephoneEvent handles an RFC 4733 packet from the source: reported to
// the owner, relayed where the destination takes telephone-event, or
// rendered as tones by a transcoder.
func (d *direction) telephoneEvent(pkt []byte, h *header, now time.Duration) {
	te, err := parseTelephoneEvent(h.payload)
	if err != nil {
		d.c.discarded.Add(1)
		return
	}
	ev, report, started := d.dtmf.packet(h.ts, te)
	if report {
		d.c.dtmf.Add(1)
		if d.b.cfg.OnDTMF != nil {
			d.b.cfg.OnDTMF(ev)
		}
	}
	switch {
	case d.tc != nil:
		d.tc.telephoneEvent(te, started, now)
	case d.pr != nil:
		d.pr.event(d, te, started, now)
	case d.out.DTMFPayloadType != 0:
		d.relayPacket(pkt, h, d.out.DTMFPayloadType, now)
	}
}

// relayPacket sends a source packet on toward the destination with its
// payload untouched: new SSRC, sequence number and timestamp, payload type
// pt, and only the header extensions the destination maps. A bare packet
// is rewritten in place; others are rebuilt in obuf.
func (d *direction) relayPacket(pkt []byte, h *header, pt PayloadType, now time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dst.held.Load() {
		return
	}
	seq, ts := d.rel.rewrite(h, now)
	marker := h.marker || d.filled
	d.filled = false
	out := pkt
	if h.plain() {
		putHeader(pkt, marker, pt, seq, ts, d.stream.ssrc, false)
	} else {
		n := writeExtensions(d.obuf[rtpHeaderLen:], h, d.out.Extensions)
		putHeader(d.obuf, marker, pt, seq, ts, d.stream.ssrc, n > 0)
		m := rtpHeaderLen + n
		m += copy(d.obuf[m:], h.payload)
		out = d.obuf[:m]
	}
	d.write(out, len(h.payload))
}

// write sends one packet toward the destination; d.mu is held. A failed
// write is counted, not fatal: a send error on UDP (ICMP unreachable, a
// full buffer) is transient, and a leg that ended fails its reads too.
// A write to a leg whose endpoint has closed (net.ErrClosed: the call is
// ending and Run learns of it from that leg's read) is not a warning.
func (d *direction) write(pkt []byte, payload int) {
	if err := d.dst.Endpoint.WriteRTP(pkt); err != nil {
		if d.c.writeErrors.Add(1) == 1 && !d.stopping() {
			if errors.Is(err, net.ErrClosed) {
				d.b.log.Debug("rtpbridge: write to a closed leg", "leg", d.dst.id, "err", err)
			} else {
				d.b.log.Warn("rtpbridge: write failed", "leg", d.dst.id, "err", err)
			}
		}
		return
	}
	d.c.sent.Add(1)
	d.c.sentBytes.Add(uint64(payload))
}

// stopping says whether Run is ending (writes then fail as endpoints close).
func (d *direction) stopping() bool {
	select {
	case <-d.stopC:
		return true
	default:
		return false
	}
}

// send writes a packet the bridge made (transcoded audio, an event) with
// the next sequence number, advance ticks after the previous packet; d.mu
// is held.
func (d *direction) send(pt PayloadType, marker bool, advance uint32, payload int, now time.Duration) {
	seq, ts := d.stream.next(advance, now)
	putHeader(d.obuf, marker, pt, seq, ts, d.stream.ssrc, false)
	d.write(d.obuf[:rtpHeaderLen+payload], payload)
}

// resync makes the next packet toward the destination continue the
// stream after a break (hold, silence fill): its timestamp then jumps by
// the wall time of the break.
func (d *direction) resync() {
	d.mu.Lock()
	d.rel.reanchor()
	d.stream.resync = true
	d.filled = true
	d.mu.Unlock()
}

// fill sends silence toward a NeedsPackets destination while the source
// is silent, one packet per frame up to now; it says whether it is
// filling.
func (d *direction) fill(now time.Duration) bool {
	if !d.dst.NeedsPackets || d.dst.silence == nil || d.dst.held.Load() {
		return false
	}
	if now-time.Duration(d.src.lastRx.Load()) < d.b.fillAfter {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	frame := time.Duration(d.dst.silenceTicks) * time.Second / time.Duration(d.out.ClockRate)
	from := d.stream.at
	if !d.stream.sent || now-from > 5*frame {
		from = now - frame // after a long break, restart the cadence now
	}
	for t := from + frame; t <= now; t += frame {
		marker := !d.filled
		if !d.filled {
			d.stream.resync = true
		}
		d.filled = true
		n := copy(d.obuf[rtpHeaderLen:], d.dst.silence)
		d.send(d.out.PayloadType, marker, d.dst.silenceTicks, n, t)
	}
	d.rel.reanchor()
	d.stream.resync = true
	return true
}
