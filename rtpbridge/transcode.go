package rtpbridge

import (
	"time"
)

// maxFrame is the longest frame the transcoder handles, 120 ms (the
// longest Opus packet, RFC 6716 §3.2.5; the largest SIP ptime accepted).
const maxFrame = 120 * time.Millisecond

// transcoder is the decode → resample → encode pipeline of one direction:
// the source's packets go through the jitter buffer, are decoded (or
// concealed when lost), resampled to the destination encoder's rate,
// gathered into frames of the destination's ptime, and encoded. Toward
// Telegram that is 20 ms Opus frames (no batching latency); toward SIP the
// SIP ptime, whatever frame size Telegram sent (tgcalls sends 60 ms).
type transcoder struct {
	d   *direction
	dec Decoder
	enc Encoder
	rs  Resampler
	jb  *jitterBuffer

	inClock, decRate, encRate int
	ssrc                      SSRC
	started                   bool

	decBuf, rsBuf []int16
	acc           []int16 // samples at encRate waiting for a full frame
	accN          int
	frame         int    // samples per outgoing packet at encRate
	frameTicks    uint32 // RTP ticks per outgoing packet
	lastDecoded   int    // samples of the last decoded frame (PLC length)
	nextTS        uint32 // source timestamp expected next
	haveTS        bool
	resync        bool // the next frame out follows a pause in the source

	// DTMF from SIP rendered as tones toward Telegram.
	render    bool
	tone      toneGen
	toneDone  int // samples of the current tone made
	toneMuted int // audio frames dropped under the tone since its last event packet
	toneBuf   []int16

	// DTMF detected in Telegram's audio, sent as RFC 4733 toward SIP.
	det *dtmfDetector
	tx  dtmfSender
}

func newTranscoder(b *Bridge, d *direction) *transcoder {
	t := &transcoder{
		d: d, dec: d.src.Decoder, enc: d.dst.Encoder, rs: d.dst.Resampler,
		jb:      newJitterBuffer(b.cfg.Jitter, d.in.ClockRate),
		inClock: d.in.ClockRate, decRate: d.src.Decoder.SampleRate(), encRate: d.dst.Encoder.SampleRate(),
	}
	if t.decRate == t.encRate {
		t.rs = nil
	}
	t.frame = t.encRate * int(d.out.ptime()/time.Millisecond) / 1000
	t.frameTicks = d.out.samples(d.out.ptime())
	t.decBuf = make([]int16, samplesIn(maxFrame, t.decRate))
	t.rsBuf = make([]int16, samplesIn(maxFrame, t.encRate)+64)
	t.acc = make([]int16, 2*t.frame+len(t.rsBuf))
	t.lastDecoded = samplesIn(20*time.Millisecond, t.decRate)
	if b.cfg.RenderDTMF && d.dst.id == LegTelegram {
		t.render = true
		t.tone.rate = t.encRate
		t.toneBuf = make([]int16, t.frame)
	}
	if b.cfg.DetectDTMF && d.src.id == LegTelegram && d.out.DTMFPayloadType != 0 {
		t.det = newDTMFDetector(t.encRate)
	}
	return t
}

func samplesIn(d time.Duration, rate int) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// packet takes one audio packet from the source.
func (t *transcoder) packet(h *header, now time.Duration) {
	if t.started && h.ssrc != t.ssrc {
		t.jb.reset() // a new source: its sequence numbers start afresh
	}
	t.ssrc, t.started = h.ssrc, true
	t.jb.Push(h.seq, h.ts, h.payload, now)
	for {
		f := t.jb.Pop(now)
		if f.kind == frameNone {
			break
		}
		t.decode(&f, now)
	}
	t.d.c.late.Store(t.jb.late)
	t.d.c.bufferNS.Store(int64(t.jb.lastWait))
}

// decode decodes or conceals one frame and passes it on.
func (t *transcoder) decode(f *jbFrame, now time.Duration) {
	var n int
	var err error
	if f.kind == framePacket {
		n, err = t.dec.Decode(f.payload, t.decBuf)
	} else {
		want := t.lastDecoded
		if f.ticks > 0 {
			want = int(int64(f.ticks) * int64(t.decRate) / int64(t.inClock))
		}
		want = min(max(want, 1), len(t.decBuf))
		n, err = t.dec.Conceal(f.payload, t.decBuf[:want])
		t.d.c.concealed.Add(1)
	}
	if err != nil || n <= 0 {
		t.d.c.discarded.Add(1)
		return
	}
	n = min(n, len(t.decBuf))
	if f.kind == framePacket {
		t.lastDecoded = n
		// A timestamp jump with no packet missing is a pause in the
		// source (Opus DTX, RFC 7587 §3.1.3; silence suppression): the
		// output jumps by the pause too rather than closing it up. Jumps
		// under 10 ms are rounding, not pauses.
		if jump := f.ts - t.nextTS; t.haveTS && jump > uint32(t.inClock/100) && jump < 1<<31 {
			t.resync = true
		}
		t.haveTS = true
	}
	if f.kind == framePacket || (t.haveTS && f.ticks > 0) {
		t.nextTS = f.ts + uint32(int64(n)*int64(t.inClock)/int64(t.decRate))
	}
	if t.render && t.tone.on {
		// Audio under a rendered tone is dropped (the regenerated tone
		// replaces it, so the far end never hears both); a tone whose end
		// packets were all lost is ended after 200 ms of audio without
		// event packets.
		t.toneMuted += n
		if t.toneMuted < samplesIn(200*time.Millisecond, t.decRate) {
			return
		}
		t.tone.on = false
	}
	pcm := t.decBuf[:n]
	if t.rs != nil {
		pcm = t.rsBuf[:t.rs.Resample(pcm, t.rsBuf)]
	}
	t.push(pcm, now)
}

// push gathers samples at the encoder rate and emits every full frame.
func (t *transcoder) push(pcm []int16, now time.Duration) {
	for len(pcm) > 0 {
		c := copy(t.acc[t.accN:], pcm)
		t.accN += c
		pcm = pcm[c:]
		off := 0
		for t.accN-off >= t.frame {
			t.emit(t.acc[off:off+t.frame], now)
			off += t.frame
		}
		t.accN = copy(t.acc, t.acc[off:t.accN])
	}
}

// emit sends one frame toward the destination: as an RFC 4733 event while
// the detector hears a digit, else encoded audio.
func (t *transcoder) emit(pcm []int16, now time.Duration) {
	d := t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.det != nil {
		digit, _ := t.det.feed(pcm)
		if t.detected(digit, now) {
			return
		}
	}
	if d.dst.held.Load() {
		return
	}
	n, err := t.enc.Encode(pcm, d.obuf[rtpHeaderLen:maxPacket])
	if err != nil || n <= 0 {
		d.c.discarded.Add(1)
		return
	}
	if t.resync {
		d.stream.resync, d.filled, t.resync = true, true, false
	}
	marker := d.filled
	d.filled = false
	d.send(d.out.PayloadType, marker, t.frameTicks, n, now)
}

// telephoneEvent renders an RFC 4733 event from SIP as a tone toward
// Telegram: the tone lasts as long as the event's packets say (§2.5.2).
func (t *transcoder) telephoneEvent(te telephoneEvent, started bool, now time.Duration) {
	if !t.render {
		return
	}
	if started {
		if !t.tone.start(te.event) {
			return
		}
		t.toneDone = 0
	}
	if !t.tone.on || te.event != t.tone.event {
		return
	}
	t.toneMuted = 0
	target := int(int64(te.duration) * int64(t.encRate) / int64(t.inClock))
	for t.toneDone < target {
		n := min(target-t.toneDone, len(t.toneBuf))
		t.tone.fill(t.toneBuf[:n])
		t.toneDone += n
		t.push(t.toneBuf[:n], now)
	}
	if te.end {
		t.tone.on = false
	}
}

// detected drives the RFC 4733 sender from the detector's digit for one
// frame; it reports whether the frame went out as an event (and so not as
// audio). d.mu is held.
func (t *transcoder) detected(digit byte, now time.Duration) bool {
	d := t.d
	code, isDigit := DigitEvent(digit)
	if t.tx.active && (!isDigit || code != t.tx.event || t.tx.dur+t.frameTicks > 0xffff) {
		t.endEvent(now)
	}
	if !isDigit {
		return false
	}
	held := d.dst.held.Load()
	if !t.tx.active {
		// §2.5.1.1: the event's timestamp is where it starts; its first
		// packet has the marker bit.
		t.tx = dtmfSender{active: true, event: code}
		_, t.tx.startTS = d.stream.next(t.frameTicks, now)
		d.stream.seq-- // sendEvent takes the sequence number
		t.tx.dur = t.frameTicks
		if !held {
			t.sendEvent(true, false, now)
		}
		return true
	}
	t.tx.dur += t.frameTicks
	if !held {
		t.sendEvent(false, false, now)
	}
	return true
}

// endEvent sends the three end packets of the current event (§2.5.1.4),
// reports the digit, and moves the audio timestamp past the event.
func (t *transcoder) endEvent(now time.Duration) {
	d := t.d
	if !d.dst.held.Load() {
		for i := 0; i < dtmfEndRepeats; i++ {
			t.sendEvent(false, true, now)
		}
	}
	d.stream.ts = t.tx.startTS + t.tx.dur - t.frameTicks
	d.c.dtmf.Add(1)
	if d.b.cfg.OnDTMF != nil {
		d.b.cfg.OnDTMF(DTMFEvent{Leg: d.src.id, Event: t.tx.event, InBand: true,
			Duration: time.Duration(t.tx.dur) * time.Second / time.Duration(d.out.ClockRate)})
	}
	t.tx.active = false
}

// sendEvent writes one RFC 4733 packet of the current event.
func (t *transcoder) sendEvent(marker, end bool, now time.Duration) {
	d := t.d
	te := telephoneEvent{event: t.tx.event, end: end, volume: dtmfVolume, duration: uint16(t.tx.dur)}
	te.put(d.obuf[rtpHeaderLen:])
	d.stream.seq++
	d.stream.at, d.stream.sent = now, true
	putHeader(d.obuf, marker, d.out.DTMFPayloadType, d.stream.seq, t.tx.startTS, d.stream.ssrc, false)
	d.write(d.obuf[:rtpHeaderLen+4], 4)
}
