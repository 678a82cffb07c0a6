package rtpbridge

import (
	"time"
)

// passDetect finds DTMF in the Telegram leg's Opus on a passthrough bridge
// (Config.DetectDTMF with a Telegram Decoder): each payload is decoded on
// the side only for the detector; while a digit sounds, the audio packets
// toward SIP are replaced one for one by RFC 4733 packets, which keeps the
// relay's sequence and timestamp mapping intact.
type passDetect struct {
	dec   Decoder
	det   *dtmfDetector
	pcm   []int16
	tx    dtmfSender
	clock int // the destination's RTP clock
}

func newPassDetect(b *Bridge, d *direction) *passDetect {
	if !b.cfg.DetectDTMF || d.src.id != LegTelegram || d.src.Decoder == nil || d.out.DTMFPayloadType == 0 {
		return nil
	}
	rate := d.src.Decoder.SampleRate()
	return &passDetect{dec: d.src.Decoder, det: newDTMFDetector(rate),
		pcm: make([]int16, samplesIn(maxFrame, rate)), clock: d.out.ClockRate}
}

// packet runs one source payload through the detector; it reports
// whether the packet went out as an event (and must not be relayed).
func (p *passDetect) packet(d *direction, h *header, now time.Duration) bool {
	n, err := p.dec.Decode(h.payload, p.pcm)
	if err != nil || n <= 0 {
		return false
	}
	digit, _ := p.det.feed(p.pcm[:n])
	code, isDigit := DigitEvent(digit)
	ticks := uint32(int64(n) * int64(p.clock) / int64(p.dec.SampleRate()))
	d.mu.Lock()
	defer d.mu.Unlock()
	held := d.dst.held.Load()
	if p.tx.active && (!isDigit || code != p.tx.event || p.tx.dur+ticks > 0xffff) {
		p.end(d, held, now)
	}
	if !isDigit {
		return false
	}
	// The event packet takes the place of this audio packet.
	seq, ts := d.rel.rewrite(h, now)
	marker := false
	if !p.tx.active {
		p.tx = dtmfSender{active: true, event: code, startTS: ts}
		marker = true
	}
	p.tx.dur = ts + ticks - p.tx.startTS
	if !held {
		p.send(d, seq, marker, false)
	}
	return true
}

// end sends the three end packets (RFC 4733 §2.5.1.4) with sequence
// numbers of their own, shifting the relay's mapping past them, and
// reports the digit. d.mu is held.
func (p *passDetect) end(d *direction, held bool, now time.Duration) {
	if !held {
		for i := 0; i < dtmfEndRepeats; i++ {
			d.stream.seq++
			p.send(d, d.stream.seq, false, true)
			d.rel.seqOff++
		}
	}
	d.stream.at = now
	p.tx.active = false
	d.c.dtmf.Add(1)
	if d.b.cfg.OnDTMF != nil {
		d.b.cfg.OnDTMF(DTMFEvent{Leg: d.src.id, Event: p.tx.event, InBand: true,
			Duration: time.Duration(p.tx.dur) * time.Second / time.Duration(p.clock)})
	}
}

func (p *passDetect) send(d *direction, seq uint16, marker, end bool) {
	te := telephoneEvent{event: p.tx.event, end: end, volume: dtmfVolume, duration: uint16(min(p.tx.dur, 0xffff))}
	te.put(d.obuf[rtpHeaderLen:])
	putHeader(d.obuf, marker, d.out.DTMFPayloadType, seq, p.tx.startTS, d.stream.ssrc, false)
	d.write(d.obuf[:rtpHeaderLen+4], 4)
}

// passRender renders RFC 4733 events from SIP as tones toward Telegram on
// a passthrough bridge (Config.RenderDTMF with a Telegram Encoder): while
// an event lasts, SIP's audio packets are dropped and 20 ms frames of the
// tone, encoded, go to Telegram instead.
type passRender struct {
	enc        Encoder
	tone       toneGen
	frame      []int16
	n          int // samples in frame
	done       int // samples of the tone made
	frameTicks uint32
	inClock    int
	muted      int // audio packets dropped since the last event packet
}

func newPassRender(b *Bridge, d *direction) *passRender {
	if !b.cfg.RenderDTMF || d.dst.id != LegTelegram || d.dst.Encoder == nil {
		return nil
	}
	rate := d.dst.Encoder.SampleRate()
	return &passRender{enc: d.dst.Encoder, tone: toneGen{rate: rate}, frame: make([]int16, rate/50),
		frameTicks: d.out.samples(20 * time.Millisecond), inClock: d.in.ClockRate}
}

// event renders one event packet's worth of tone.
func (r *passRender) event(d *direction, te telephoneEvent, started bool, now time.Duration) {
	if started {
		if !r.tone.start(te.event) {
			return
		}
		r.done, r.n = 0, 0
	}
	if !r.tone.on || te.event != r.tone.event {
		return
	}
	r.muted = 0
	target := int(int64(te.duration) * int64(r.tone.rate) / int64(r.inClock))
	d.mu.Lock()
	defer d.mu.Unlock()
	for r.done < target || (te.end && r.n > 0) {
		c := min(target-r.done, len(r.frame)-r.n)
		if c > 0 {
			r.tone.fill(r.frame[r.n : r.n+c])
			r.n += c
			r.done += c
		} else {
			// The end: pad the last frame with tone.
			r.tone.fill(r.frame[r.n:])
			r.n = len(r.frame)
		}
		if r.n == len(r.frame) {
			r.emit(d, now)
		}
	}
	if te.end {
		r.tone.on = false
		d.rel.reanchor()
	}
}

// emit encodes and sends one tone frame; d.mu is held.
func (r *passRender) emit(d *direction, now time.Duration) {
	r.n = 0
	if d.dst.held.Load() {
		return
	}
	m, err := r.enc.Encode(r.frame, d.obuf[rtpHeaderLen:maxPacket])
	if err != nil || m <= 0 {
		d.c.discarded.Add(1)
		return
	}
	if !d.filled && d.rel.anchored {
		// The first tone frame continues the relayed stream.
		d.stream.resync = true
		d.rel.reanchor()
	}
	d.filled = true
	d.send(d.out.PayloadType, false, r.frameTicks, m, now)
}

// audio says whether an audio packet from SIP is dropped under a tone; a
// tone whose end packets were all lost ends after ten audio packets
// without event packets.
func (r *passRender) audio() bool {
	if !r.tone.on {
		return false
	}
	r.muted++
	if r.muted > 10 {
		r.tone.on = false
		return false
	}
	return true
}
