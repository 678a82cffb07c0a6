// This test joins rtpbridge with the real codecs of rtpbridge/codec: PCMU
// and G.722 on the SIP leg, Opus opened at the SIP rate on the Telegram
// leg, tones both ways and 60 ms Opus frames from Telegram with one lost
// (concealed by FEC).

package rtpbridge

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"

	"github.com/tgsip/tgsip/internal/cputime"
)

func TestRealCodecs(t *testing.T) {
	for _, sipCodec := range []string{"PCMU", "G722"} {
		t.Run(sipCodec, func(t *testing.T) {
			sip, tg := newChanEndpoint(), newChanEndpoint()
			rate := codec.OpusRateFor(sipCodec)
			sipDec, _ := codec.NewDecoder(sipCodec, 8000, codec.Options{})
			sipEnc, _ := codec.NewEncoder(sipCodec, 8000, codec.Options{})
			tgDec, err := codec.NewDecoder("opus", 48000, codec.Options{SampleRate: rate})
			if err != nil {
				t.Fatal(err)
			}
			tgEnc, err := codec.NewEncoder("opus", 48000, codec.Options{SampleRate: rate})
			if err != nil {
				t.Fatal(err)
			}
			pt := PayloadType(0)
			if sipCodec == "G722" {
				pt = 9
			}
			b, stop := running(t, Config{
				SIP:      Leg{Endpoint: sip, Format: Format{Codec: sipCodec, ClockRate: 8000, PayloadType: pt}, Decoder: sipDec, Encoder: sipEnc},
				Telegram: Leg{Endpoint: tg, Format: Format{Codec: "opus", ClockRate: 48000, PayloadType: 111}, Decoder: tgDec, Encoder: tgEnc},
			})
			// SIP -> Telegram
			enc, _ := codec.NewEncoder(sipCodec, 8000, codec.Options{})
			n := enc.SampleRate() / 50
			pcm := make([]int16, n)
			out := make([]byte, 1500)
			for i := 0; i < 50; i++ {
				audiotest.Tone(pcm, 1000, enc.SampleRate(), i*n)
				m, _ := enc.Encode(pcm, out)
				sip.rx <- pkt(pt, uint16(i), uint32(i*160), 3, false, out[:m])
			}
			odec, _ := codec.NewOpusDecoder(48000)
			var got []int16
			buf := make([]int16, 5760)
			for i := 0; i < 50; i++ {
				h, _ := tg.recv(t)
				m, err := odec.Decode(h.payload, buf)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, buf[:m]...)
			}
			checkTone(t, got[48000/5:], 48000, 1000)
			// Telegram 60 ms -> SIP
			oenc, _ := codec.NewOpusEncoder(codec.Options{})
			frame := make([]int16, 2880)
			for i := 0; i < 20; i++ {
				audiotest.Tone(frame, 440, 48000, i*2880)
				m, err := oenc.Encode(frame, out)
				if err != nil {
					t.Fatal(err)
				}
				if i == 8 {
					continue
				}
				tg.rx <- pkt(111, uint16(i), uint32(i*2880), 4, false, out[:m])
			}
			dec, _ := codec.NewDecoder(sipCodec, 8000, codec.Options{})
			got = got[:0]
			buf2 := make([]int16, 2000)
			for i := 0; i < 57; i++ {
				h, _ := sip.recv(t)
				m, err := dec.Decode(h.payload, buf2)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, buf2[:m]...)
			}
			checkTone(t, got[dec.SampleRate()/5:], dec.SampleRate(), 440)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if st := b.Stats().TelegramToSIP; st.Concealed != 1 || st.Lost != 1 {
				t.Fatalf("%+v", st)
			}
		})
	}
}

// benchSpeech is a voiced signal whose pitch (and harmonics' phases)
// change every 20 ms, so that the Opus encoder works as on speech rather
// than on a steady tone.
func benchSpeech(n, rate int) []int16 {
	out := make([]int16, n)
	pitches := []float64{140, 210, 120, 260, 180, 150, 230, 110}
	var ph float64
	for i := range out {
		k := i / (rate / 50)
		ph += 2 * math.Pi * pitches[k%len(pitches)] / float64(rate)
		v := 0.0
		for h := 1; h <= 8; h++ {
			v += math.Sin(float64(h)*ph+float64(k*h)) / float64(h)
		}
		out[i] = int16(6000 * v)
	}
	return out
}

// BenchmarkTranscodeCall is one PCMU ⇄ Opus call through the bridge with
// the real codecs as b2bua.NewCodecs makes them (Opus at 8 kHz,
// complexity 5), I/O left out (in-memory endpoints): one op is 20 ms of
// the call, both directions — a 20 ms PCMU packet decoded and encoded to
// Opus toward Telegram, and 20 ms of Telegram's Opus (a 48 kHz, 32 kbit/s
// stream, as tgcalls sends it) decoded and encoded to PCMU. It reports
// the CPU of the bridge's thread per op, per call-second, and the calls
// whose codecs alone fit in 70 % of 2 cores. Cases:
//   - speech / bursts: what both far ends send — a voiced signal with a
//     pitch changing every 20 ms, or what the load harness
//     (scripts/perf/transcode) sends, a 20 ms 1 kHz burst once a second
//     and digital silence between;
//   - tg20ms / tg60ms: Telegram's packet size (the harness sends 20 ms,
//     tgcalls 60 ms);
//   - nofec / fec1 / fec10: the encoder toward Telegram expecting no
//     loss (the default, and the bridge after a clean RTCP report from
//     the Telegram peer), 1 % (tgcalls' v1 floor) or 10 % (the config's
//     default floor before 2026-12-07): in-band FEC data coded in every
//     frame;
//   - cxN: Opus complexity N toward Telegram (5 when not named).
func BenchmarkTranscodeCall(b *testing.B) {
	for _, c := range []struct {
		content       string
		tgMs, fec, cx int
	}{
		{"speech", 60, -1, 5}, {"speech", 60, 10, 5}, {"speech", 60, 1, 5}, {"speech", 20, -1, 5}, {"bursts", 20, -1, 5},
		{"speech", 60, -1, 3}, {"speech", 60, -1, 2}, {"speech", 60, -1, 0}, {"speech", 60, 1, 3},
	} {
		name := fmt.Sprintf("%s/tg%dms/nofec", c.content, c.tgMs)
		if c.fec > 0 {
			name = fmt.Sprintf("%s/tg%dms/fec%d", c.content, c.tgMs, c.fec)
		}
		if c.cx != 5 {
			name += fmt.Sprintf("/cx%d", c.cx)
		}
		b.Run(name, func(b *testing.B) { benchTranscodeCall(b, c.content, c.tgMs, c.fec, c.cx) })
	}
}

// benchBursts is what the load harness's far ends send: a 20 ms 1 kHz tone
// once a second, digital silence between.
func benchBursts(n, rate int) []int16 {
	out := make([]int16, n)
	for off := 0; off < n; off += rate {
		audiotest.Tone(out[off:min(off+rate/50, n)], 1000, rate, 0)
	}
	return out
}

func benchTranscodeCall(b *testing.B, content string, tgMs, loss, cx int) {
	signal := benchSpeech
	if content == "bursts" {
		signal = benchBursts
	}
	const sipPT, tgPT = 0, 111
	sipDec, _ := codec.NewDecoder("PCMU", 8000, codec.Options{})
	sipEnc, _ := codec.NewEncoder("PCMU", 8000, codec.Options{})
	if cx == 0 {
		cx = -1 // codec.Options' spelling of libopus complexity 0
	}
	opts := codec.Options{SampleRate: codec.OpusRateFor("PCMU"), Complexity: cx, PacketLossPercent: loss}
	tgDec, err := codec.NewDecoder("opus", 48000, opts)
	if err != nil {
		b.Fatal(err)
	}
	tgEnc, err := codec.NewEncoder("opus", 48000, opts)
	if err != nil {
		b.Fatal(err)
	}
	sipSink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	tgSink := &sinkEndpoint{all: make(chan struct{}), done: make(chan struct{}), want: -1}
	br, err := New(Config{
		SIP:      Leg{Endpoint: sipSink, Format: Format{Codec: "PCMU", ClockRate: 8000, PayloadType: sipPT}, Decoder: sipDec, Encoder: sipEnc},
		Telegram: Leg{Endpoint: tgSink, Format: Format{Codec: "opus", ClockRate: 48000, PayloadType: tgPT}, Decoder: tgDec, Encoder: tgEnc},
	})
	if err != nil {
		b.Fatal(err)
	}
	// 2 s of what the far ends send: PCMU from the SIP peer, Opus from a
	// 48 kHz encoder at 32 kbit/s for the Telegram user.
	const seconds = 2
	var sipPkts, tgPkts [][]byte
	sig8 := signal(seconds*8000, 8000)
	out := make([]byte, 1500)
	ue := codec.NewPCMUEncoder()
	for off := 0; off < len(sig8); off += 160 {
		n, _ := ue.Encode(sig8[off:off+160], out)
		sipPkts = append(sipPkts, append([]byte(nil), out[:n]...))
	}
	oe, err := codec.NewOpusEncoder(codec.Options{SampleRate: 48000, Bitrate: 32000})
	if err != nil {
		b.Fatal(err)
	}
	sig48, frame := signal(seconds*48000, 48000), 48*tgMs
	for off := 0; off+frame <= len(sig48); off += frame {
		n, err := oe.Encode(sig48[off:off+frame], out)
		if err != nil {
			b.Fatal(err)
		}
		tgPkts = append(tgPkts, append([]byte(nil), out[:n]...))
	}
	sipDir, tgDir := br.dirs[LegSIP], br.dirs[LegTelegram]
	buf := make([]byte, maxPacket)
	every := tgMs / 20 // ops per Telegram packet
	var tgSeq uint16
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start, _ := cputime.Thread() // 0 off Linux: cpu-ns/op then reads 0
	for i := 0; b.Loop(); i++ {
		p := sipPkts[i%len(sipPkts)]
		putHeader(buf, false, sipPT, uint16(i), uint32(i*160), 7, false)
		n := rtpHeaderLen + copy(buf[rtpHeaderLen:], p)
		sipDir.packet(buf[:n], br.now())
		if i%every == 0 {
			p := tgPkts[int(tgSeq)%len(tgPkts)]
			putHeader(buf, false, tgPT, tgSeq, uint32(tgSeq)*uint32(48*tgMs), 9, false)
			n := rtpHeaderLen + copy(buf[rtpHeaderLen:], p)
			tgDir.packet(buf[:n], br.now())
			tgSeq++
		}
	}
	end, _ := cputime.Thread()
	perOp := float64(end-start) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	perCallSecond := perOp * 50 / 1e6 // ms of CPU per second of call
	b.ReportMetric(perCallSecond, "cpu-ms/call-s")
	if perCallSecond > 0 {
		b.ReportMetric(0.7*2*1000/perCallSecond, "calls/70%of2cores")
	}
	if st := br.Stats(); st.SIPToTelegram.Discarded+st.TelegramToSIP.Discarded > 0 {
		b.Fatalf("discarded packets: %+v", st)
	}
}
