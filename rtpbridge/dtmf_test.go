package rtpbridge

import (
	"sync"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
)

func TestTelephoneEventParse(t *testing.T) {
	te, err := parseTelephoneEvent([]byte{11, 0x8a, 0x03, 0x20})
	if err != nil || te != (telephoneEvent{event: 11, end: true, volume: 10, duration: 800}) {
		t.Fatalf("%+v %v", te, err)
	}
	if _, err := parseTelephoneEvent([]byte{1, 2, 3}); err == nil {
		t.Fatal("3-byte payload accepted")
	}
	b := make([]byte, 4)
	te.put(b)
	if back, _ := parseTelephoneEvent(b); back != te {
		t.Fatalf("round trip %+v", back)
	}
}

func FuzzTelephoneEvent(f *testing.F) {
	f.Add([]byte{1, 0x8a, 0, 160}, uint32(0))
	f.Add([]byte{1, 0x0a, 0, 160, 1, 0x0a, 0, 80}, uint32(5))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, p []byte, ts uint32) {
		te, err := parseTelephoneEvent(p)
		if err != nil {
			return
		}
		b := make([]byte, 4)
		te.put(b)
		if back, _ := parseTelephoneEvent(b); back != te {
			t.Fatalf("round trip %+v -> %+v", te, back)
		}
		r := dtmfReceiver{clock: 8000}
		ev, report, _ := r.packet(ts, te)
		if report != te.end || (report && ev.Event != te.event) {
			t.Fatalf("report %v for %+v", report, te)
		}
		if _, again, _ := r.packet(ts, te); again {
			t.Fatal("a retransmission reported again")
		}
	})
}

// TestDTMFReceiver: one report per event, on its end; an event whose end
// packets were lost is reported when the next one starts.
func TestDTMFReceiver(t *testing.T) {
	r := dtmfReceiver{leg: LegSIP, clock: 8000}
	var got []DTMFEvent
	feed := func(ts uint32, ev uint8, end bool, dur uint16) {
		if e, ok, _ := r.packet(ts, telephoneEvent{event: ev, end: end, duration: dur}); ok {
			got = append(got, e)
		}
	}
	feed(100, 5, false, 160)
	feed(100, 5, false, 320)
	feed(100, 5, true, 800)
	feed(100, 5, true, 800)
	feed(100, 5, true, 800)
	feed(2000, 10, false, 160) // end lost
	feed(4000, 11, false, 160)
	feed(4000, 11, true, 400)
	want := []DTMFEvent{{Leg: LegSIP, Event: 5, Duration: 100 * time.Millisecond}, {Leg: LegSIP, Event: 10, Duration: 20 * time.Millisecond}, {Leg: LegSIP, Event: 11, Duration: 50 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[1].Digit() != '*' || got[2].Digit() != '#' {
		t.Fatal("digits")
	}
}

// TestDTMFDetector: every keypad digit rendered by toneGen is detected at
// 8 and 16 kHz; speech-band single tones and silence are not digits.
func TestDTMFDetector(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		for code := uint8(0); code < 16; code++ {
			det := newDTMFDetector(rate)
			g := toneGen{rate: rate}
			g.start(code)
			pcm := make([]int16, rate/10) // 100 ms
			g.fill(pcm)
			digit, _ := det.feed(pcm)
			if digit != eventDigit(code) {
				t.Fatalf("%d Hz: event %d detected as %q", rate, code, digit)
			}
			digit, _ = det.feed(make([]int16, rate/10))
			if digit != 0 {
				t.Fatalf("%d Hz: digit %q stays on in silence", rate, digit)
			}
		}
		det := newDTMFDetector(rate)
		pcm := make([]int16, rate)
		for _, f := range []float64{440, 697, 1000, 1209} {
			audiotest.Tone(pcm, f, rate, 0)
			if d, _ := det.feed(pcm); d != 0 {
				t.Fatalf("%d Hz: a %v Hz tone detected as %q", rate, f, d)
			}
		}
	}
}

// TestDTMFRoundTrip: digits sent by the SIP leg as RFC 4733 are rendered
// in-band toward Telegram, come back in Telegram's audio (an echoing peer),
// are detected and reach the SIP leg as RFC 4733 events again.
func TestDTMFRoundTrip(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, _ := transcodingConfig(sip, tg)
	cfg.RenderDTMF, cfg.DetectDTMF = true, true
	var mu sync.Mutex
	var reported []DTMFEvent
	cfg.OnDTMF = func(e DTMFEvent) {
		mu.Lock()
		reported = append(reported, e)
		mu.Unlock()
	}
	_, stop := running(t, cfg)
	// The Telegram peer echoes what it hears.
	stopEcho := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var seq uint16
		for {
			select {
			case p := <-tg.tx:
				var h header
				if parseRTP(p, &h) != nil {
					continue
				}
				seq++
				tg.rx <- pkt(112, seq, h.ts, 0xecc0, false, h.payload)
			case <-stopEcho:
				return
			}
		}
	})
	defer func() { close(stopEcho); wg.Wait() }()

	digits := "1#9"
	seq, ts := uint16(1), uint32(0)
	silence := l16(make([]int16, 160))
	audio := func(n int) {
		for i := 0; i < n; i++ {
			sip.rx <- pkt(96, seq, ts, 42, false, silence)
			seq++
			ts += 160
		}
	}
	audio(10)
	for _, d := range []byte(digits) {
		code, _ := DigitEvent(d)
		start := ts
		for dur := uint16(160); dur <= 1280; dur += 160 { // 160 ms
			b := make([]byte, 4)
			telephoneEvent{event: code, volume: 10, duration: dur}.put(b)
			sip.rx <- pkt(101, seq, start, 42, dur == 160, b)
			seq++
		}
		for i := 0; i < 3; i++ {
			b := make([]byte, 4)
			telephoneEvent{event: code, end: true, volume: 10, duration: 1280}.put(b)
			sip.rx <- pkt(101, seq, start, 42, false, b)
			seq++
		}
		ts += 1280
		audio(10)
	}
	audio(10)

	// Collect the RFC 4733 events the SIP leg receives.
	var got []byte
	var lastTS uint32
	var ends int
	for len(got) < len(digits) || ends < 3 {
		h, _ := sip.recv(t)
		if h.pt != 101 {
			continue
		}
		te, err := parseTelephoneEvent(h.payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || h.ts != lastTS {
			if len(got) > 0 && ends != 3 {
				t.Fatalf("digit %q had %d end packets", got[len(got)-1], ends)
			}
			if !h.marker {
				t.Fatal("first packet of an event without marker")
			}
			got, lastTS, ends = append(got, eventDigit(te.event)), h.ts, 0
		}
		if te.end {
			ends++
			if d := time.Duration(te.duration) * time.Second / 8000; d < 100*time.Millisecond || d > 220*time.Millisecond {
				t.Fatalf("detected duration %v", d)
			}
		}
	}
	if string(got) != digits {
		t.Fatalf("digits %q came back as %q", digits, got)
	}
	// A detected digit is reported after its end packets went out
	// (endEvent): stop the bridge, then read the reports.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var fromSIP, inBand []byte
	for _, e := range reported {
		if e.InBand {
			inBand = append(inBand, e.Digit())
		} else {
			fromSIP = append(fromSIP, e.Digit())
		}
	}
	if string(fromSIP) != digits || string(inBand) != digits {
		t.Fatalf("reported: from SIP %q, in-band %q", fromSIP, inBand)
	}
}
