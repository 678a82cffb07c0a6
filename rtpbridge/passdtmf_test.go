package rtpbridge

import (
	"sync"
	"testing"
)

// passDTMFConfig is a passthrough bridge (both legs say opus) whose
// Telegram leg has the narrow test codec as its Decoder and Encoder.
func passDTMFConfig(sip, tg Endpoint) Config {
	sipF, tgF := opusFormats()
	sipF.DTMFPayloadType = 101
	return Config{
		SIP: Leg{Endpoint: sip, Format: sipF},
		Telegram: Leg{Endpoint: tg, Format: tgF,
			Decoder: &linearCodec{rate: 16000, narrow: true}, Encoder: &linearCodec{rate: 16000, narrow: true}},
	}
}

// TestPassthroughDetectDTMF: a digit in Telegram's audio reaches the SIP
// leg as RFC 4733 packets that take the place of the audio packets, and
// the relayed stream around them stays continuous.
func TestPassthroughDetectDTMF(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg := passDTMFConfig(sip, tg)
	cfg.DetectDTMF = true
	var mu sync.Mutex
	var got []DTMFEvent
	cfg.OnDTMF = func(e DTMFEvent) { mu.Lock(); got = append(got, e); mu.Unlock() }
	b, stop := running(t, cfg)
	if !b.Passthrough() {
		t.Fatal("not a passthrough")
	}
	g := toneGen{rate: 16000}
	g.start(5)
	silence := l8(make([]int16, 320))
	tone := make([]int16, 320)
	for i := 0; i < 30; i++ {
		payload := silence
		if i >= 10 && i < 20 {
			g.fill(tone)
			payload = l8(tone)
		}
		tg.rx <- pkt(112, uint16(i), uint32(i*960), 9, false, payload)
	}
	var last header
	var events, ends int
	var eventTS uint32
	var audioAfter bool
	for i := 0; i < 33; i++ { // 30 packets, 3 of them end packets added
		h, _ := sip.recv(t)
		if i > 0 && h.seq != last.seq+1 {
			t.Fatalf("packet %d: seq %d after %d", i, h.seq, last.seq)
		}
		last = h
		switch h.pt {
		case 101:
			te, _ := parseTelephoneEvent(h.payload)
			if te.event != 5 || audioAfter {
				t.Fatalf("event %+v", te)
			}
			if events == 0 {
				eventTS = h.ts
				if !h.marker {
					t.Fatal("first event packet without marker")
				}
			} else if h.ts != eventTS {
				t.Fatal("event timestamp changed")
			}
			events++
			if te.end {
				ends++
			}
		case 107:
			if events > 0 {
				if !audioAfter && h.ts-eventTS < 960*5 {
					t.Fatalf("audio after the event at ts +%d", h.ts-eventTS)
				}
				audioAfter = true
			}
		default:
			t.Fatalf("payload type %d", h.pt)
		}
	}
	if events < 8 || ends != 3 || !audioAfter {
		t.Fatalf("%d event packets, %d ends, audio after: %v", events, ends, audioAfter)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Digit() != '5' || !got[0].InBand {
		t.Fatalf("reported %+v", got)
	}
}

// TestPassthroughRenderDTMF: an RFC 4733 digit from SIP reaches Telegram
// as tone frames made by the Telegram Encoder, between relayed audio.
func TestPassthroughRenderDTMF(t *testing.T) {
	bothModes(t, func(t *testing.T, ep func(*chanEndpoint) Endpoint) {
		sip, tg := newChanEndpoint(), newChanEndpoint()
		cfg := passDTMFConfig(ep(sip), ep(tg))
		cfg.RenderDTMF = true
		running(t, cfg)
		seq, ts := uint16(1), uint32(0)
		audio := func(n int) {
			for i := 0; i < n; i++ {
				sip.rx <- pkt(107, seq, ts, 3, false, []byte{0xa0, byte(i)})
				seq++
				ts += 960
			}
		}
		audio(5)
		for dur := uint16(960); dur <= 7680; dur += 960 { // 160 ms
			b := make([]byte, 4)
			telephoneEvent{event: 7, volume: 10, duration: dur}.put(b)
			sip.rx <- pkt(101, seq, ts, 3, dur == 960, b)
			seq++
			sip.rx <- pkt(107, seq, ts, 3, false, []byte{0xee}) // audio under the tone: dropped
			seq++
		}
		for i := 0; i < 3; i++ {
			b := make([]byte, 4)
			telephoneEvent{event: 7, end: true, volume: 10, duration: 7680}.put(b)
			sip.rx <- pkt(101, seq, ts, 3, false, b)
			seq++
		}
		ts += 7680
		audio(5)
		det := newDTMFDetector(16000)
		var last header
		var tonePackets int
		var heard byte
		for i := 0; i < 5+8+5; i++ {
			h, _ := tg.recv(t)
			if h.pt != 111 {
				t.Fatalf("payload type %d", h.pt)
			}
			if i > 0 && (h.seq != last.seq+1 || h.ts-last.ts < 960 || h.ts-last.ts > 48000) {
				t.Fatalf("packet %d: seq %d ts %d after %d %d", i, h.seq, h.ts, last.seq, last.ts)
			}
			last = h
			if len(h.payload) == 320 {
				tonePackets++
				if d, _ := det.feed(pcmOf8(h.payload)); d != 0 {
					heard = d
				}
			} else if h.payload[0] != 0xa0 {
				t.Fatalf("audio under the tone passed: %x", h.payload)
			}
		}
		if tonePackets != 8 || heard != '7' {
			t.Fatalf("%d tone frames, heard %q", tonePackets, heard)
		}
	})
}
