package rtpbridge

import (
	"math"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// transcodingConfig joins a SIP leg of L16 at 8 kHz (standing in for
// G.711) and a Telegram leg of 8-bit PCM at 16 kHz on a 48 kHz RTP clock
// (standing in for Opus opened at 16 kHz).
func transcodingConfig(sip, tg Endpoint) (Config, *linearCodec, *linearCodec) {
	sipDec := &linearCodec{rate: 8000}
	tgDec := &linearCodec{rate: 16000, narrow: true}
	return Config{
		SIP: Leg{Endpoint: sip, Format: Format{Codec: "L16", ClockRate: 8000, PayloadType: 96, DTMFPayloadType: 101},
			Decoder: sipDec, Encoder: &linearCodec{rate: 8000}, Resampler: &linearResampler{from: 16000, to: 8000}},
		Telegram: Leg{Endpoint: tg, Format: Format{Codec: "L16", ClockRate: 48000, PayloadType: 111, RemotePayloadType: 112},
			Decoder: tgDec, Encoder: &linearCodec{rate: 16000, narrow: true}, Resampler: &linearResampler{from: 8000, to: 16000}},
	}, sipDec, tgDec
}

func checkTone(t *testing.T, pcm []int16, rate int, freq float64) {
	t.Helper()
	got, prom := audiotest.DominantFrequency(pcm, rate, 200, 3000, 5)
	if math.Abs(got-freq) > freq*0.02 || prom < 10 {
		t.Fatalf("dominant %.0f Hz (prominence %.1f), want %.0f Hz", got, prom, freq)
	}
	want := 16000 / math.Sqrt2
	if db := 20 * math.Log10(audiotest.RMS(pcm)/want); math.Abs(db) > 3 {
		t.Fatalf("level %.1f dB off", db)
	}
}

// TestTranscodeToTelegram: SIP 20 ms packets at 8 kHz become 20 ms frames
// at 48 kHz toward Telegram with continuous timestamps, and a 1 kHz tone
// keeps its frequency and level.
func TestTranscodeToTelegram(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, _ := transcodingConfig(sip, tg)
	cfg.SIP.Format.PTime = 30 * time.Millisecond // SIP sends 30 ms, Telegram gets 20 ms
	b, _ := running(t, cfg)
	if b.Passthrough() {
		t.Fatal("L16 is not a passthrough")
	}
	frame := make([]int16, 240)
	for i := 0; i < 20; i++ {
		audiotest.Tone(frame, 1000, 8000, i*240)
		sip.rx <- pkt(96, uint16(i), uint32(i*240), 7, false, l16(frame))
	}
	var got []int16
	var last header
	for i := 0; i < 29; i++ { // 20 × 30 ms = 600 ms = 30 frames; the last may wait
		h, _ := tg.recv(t)
		if h.pt != 111 || len(h.payload) != 320 {
			t.Fatalf("frame %d: pt %d, %d bytes", i, h.pt, len(h.payload))
		}
		if i > 0 && (h.seq != last.seq+1 || h.ts != last.ts+960) {
			t.Fatalf("frame %d: seq %d ts %d after %d %d", i, h.seq, h.ts, last.seq, last.ts)
		}
		last = h
		got = append(got, pcmOf8(h.payload)...)
	}
	checkTone(t, got[320:], 16000, 1000)
}

// TestTranscodeFromTelegram: 60 ms frames from Telegram become 20 ms SIP
// packets; a lost frame is concealed with FEC (the next frame is there)
// and a 440 Hz tone survives.
func TestTranscodeFromTelegram(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, tgDec := transcodingConfig(sip, tg)
	b, stop := running(t, cfg)
	frame := make([]int16, 960)
	for i := 0; i < 10; i++ {
		audiotest.Tone(frame, 440, 16000, i*960)
		if i == 4 {
			continue // lost
		}
		tg.rx <- pkt(112, uint16(100+i), uint32(i*2880), 9, false, l8(frame))
	}
	var got []int16
	var last header
	for i := 0; i < 30; i++ {
		h, _ := sip.recv(t)
		if h.pt != 96 || len(h.payload) != 320 {
			t.Fatalf("packet %d: pt %d, %d bytes", i, h.pt, len(h.payload))
		}
		if i > 0 && (h.seq != last.seq+1 || h.ts != last.ts+160) {
			t.Fatalf("packet %d: seq %d ts %d after %d %d", i, h.seq, h.ts, last.seq, last.ts)
		}
		last = h
		got = append(got, pcmOf(h.payload)...)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if tgDec.fec != 1 {
		t.Fatalf("fec %d plc %d, want one FEC conceal", tgDec.fec, tgDec.plc)
	}
	st := b.Stats().TelegramToSIP
	if st.Concealed != 1 || st.Lost != 1 || st.Packets != 9 {
		t.Fatalf("stats %+v", st)
	}
	checkTone(t, got[:4*480], 8000, 440)
}

// TestTranscodeDTXPause: a timestamp jump with no sequence gap (Opus DTX)
// is a pause, not a loss: nothing is concealed and the SIP stream resumes
// with the marker bit (RFC 3551 §4.1, first packet of a talkspurt).
func TestTranscodeDTXPause(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, tgDec := transcodingConfig(sip, tg)
	b, stop := running(t, cfg)
	frame := l8(make([]int16, 320))
	tg.rx <- pkt(112, 1, 0, 9, false, frame)
	tg.rx <- pkt(112, 2, 960, 9, false, frame)
	tg.rx <- pkt(112, 3, 960+48000, 9, false, frame) // after 1 s of DTX
	for i, wantMarker := range []bool{false, false, true} {
		if h, _ := sip.recv(t); h.marker != wantMarker {
			t.Fatalf("packet %d: marker %v", i, h.marker)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats().TelegramToSIP; st.Concealed != 0 || st.Lost != 0 || tgDec.plc+tgDec.fec != 0 {
		t.Fatalf("a pause was concealed: %+v", st)
	}
}

// BenchmarkTranscodePacket is the pipeline's own cost per 60 ms Telegram
// packet (jitter buffer, resampling, re-framing into three 20 ms SIP
// packets) with the trivial test codec; the real codecs' costs are
// rtpbridge/codec's benchmarks.
func BenchmarkTranscodePacket(b *testing.B) {
	sink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	cfg, _, _ := transcodingConfig(sink, newChanEndpoint())
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	d := br.dirs[LegTelegram]
	frame := make([]int16, 960)
	audiotest.Tone(frame, 440, 16000, 0)
	p := pkt(112, 0, 0, 5, false, l8(frame))
	buf := make([]byte, maxPacket)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := copy(buf, p)
		buf[2], buf[3] = byte(i>>8), byte(i)
		ts := uint32(i) * 2880
		buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		d.packet(buf[:n], br.now())
	}
}
