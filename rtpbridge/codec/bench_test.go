package codec

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/cputime"
)

// cpuClock measures the CPU time of the benchmark loop's own thread, which
// stays meaningful on a machine loaded by other work, where ns/op (wall
// time) is not: it reports cpu-ns/op beside ns/op.
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start, _ := cputime.Thread() // 0 off Linux: cpu-ns/op then reads 0
	return &cpuClock{start: start}
}

// stop reports cpu-ns/op and returns it.
func (c *cpuClock) stop(b *testing.B) float64 {
	now, _ := cputime.Thread()
	d := now - c.start
	runtime.UnlockOSThread()
	perOp := float64(d.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	return perOp
}

// Benchmarks: per-frame cost of each codec and of the bridge's two
// transcoding directions at complexity 5. docs/codecs.md has the commands
// and the numbers. Input is speechLike (changing pitch and harmonics).

func benchFrames(rate, ms int) [][]int16 {
	frame := rate * ms / 1000
	sig := speechLike(rate, rate) // 1 s
	var frames [][]int16
	for off := 0; off+frame <= len(sig); off += frame {
		frames = append(frames, sig[off:off+frame])
	}
	return frames
}

func benchEncode(b *testing.B, enc Encoder, ms int) {
	frames := benchFrames(enc.SampleRate(), ms)
	out := make([]byte, 1500)
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		if _, err := enc.Encode(frames[i%len(frames)], out); err != nil {
			b.Fatal(err)
		}
	}
	c.stop(b)
}

// encodedFrames encodes 1 s of speechLike with enc in ms frames.
func encodedFrames(b *testing.B, enc Encoder, ms int) [][]byte {
	var pkts [][]byte
	out := make([]byte, 1500)
	for _, f := range benchFrames(enc.SampleRate(), ms) {
		n, err := enc.Encode(f, out)
		if err != nil {
			b.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), out[:n]...))
	}
	return pkts
}

func benchDecode(b *testing.B, dec Decoder, pkts [][]byte) {
	pcm := make([]int16, 5760)
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		if _, err := dec.Decode(pkts[i%len(pkts)], pcm); err != nil {
			b.Fatal(err)
		}
	}
	c.stop(b)
}

func BenchmarkG711(b *testing.B) {
	b.Run("PCMU/encode20ms", func(b *testing.B) { benchEncode(b, NewPCMUEncoder(), 20) })
	b.Run("PCMA/encode20ms", func(b *testing.B) { benchEncode(b, NewPCMAEncoder(), 20) })
	b.Run("PCMU/decode20ms", func(b *testing.B) { benchDecode(b, NewPCMUDecoder(), encodedFrames(b, NewPCMUEncoder(), 20)) })
	b.Run("PCMA/decode20ms", func(b *testing.B) { benchDecode(b, NewPCMADecoder(), encodedFrames(b, NewPCMAEncoder(), 20)) })
}

func BenchmarkG722(b *testing.B) {
	b.Run("encode20ms", func(b *testing.B) { benchEncode(b, NewG722Encoder(), 20) })
	b.Run("decode20ms", func(b *testing.B) { benchDecode(b, NewG722Decoder(), encodedFrames(b, NewG722Encoder(), 20)) })
}

// telegramStream is what tgcalls sends: Opus from a 48 kHz encoder at 32
// kbit/s in 60 ms frames (tgcalls/v2/InstanceV2Impl.cpp).
func telegramStream(b *testing.B) [][]byte {
	enc, err := NewOpusEncoder(Options{SampleRate: 48000, Bitrate: 32000})
	if err != nil {
		b.Fatal(err)
	}
	return encodedFrames(b, enc, 60)
}

func BenchmarkOpus(b *testing.B) {
	for _, rate := range []int{8000, 16000, 48000} {
		for _, cx := range []int{-1, 5, 10} {
			b.Run(fmt.Sprintf("encode20ms/%dk/cx%d", rate/1000, max(cx, 0)), func(b *testing.B) {
				enc, err := NewOpusEncoder(Options{SampleRate: rate, Complexity: cx})
				if err != nil {
					b.Fatal(err)
				}
				benchEncode(b, enc, 20)
			})
		}
	}
	for _, rate := range []int{8000, 16000, 48000} {
		b.Run(fmt.Sprintf("decode60ms/%dk", rate/1000), func(b *testing.B) {
			dec, _ := NewOpusDecoder(rate)
			benchDecode(b, dec, telegramStream(b))
		})
	}
	// A loss after a good packet: one op decodes a 20 ms packet and
	// conceals the next 20 ms with PLC or with FEC from the packet after.
	// (PLC on a decoder that decoded nothing, or after PLC, is a cheap
	// fade to silence and would mislead.)
	for _, mode := range []string{"plc", "fec"} {
		b.Run("decode20ms+"+mode+"20ms/48k", func(b *testing.B) {
			enc, _ := NewOpusEncoder(Options{SampleRate: 48000, PacketLossPercent: 20})
			pkts := encodedFrames(b, enc, 20)
			dec, _ := NewOpusDecoder(48000)
			pcm := make([]int16, 960)
			c := startCPU(b)
			for i := 0; b.Loop(); i++ {
				k := (2 * i) % (len(pkts) - 2)
				if _, err := dec.Decode(pkts[k], pcm); err != nil {
					b.Fatal(err)
				}
				var next []byte
				if mode == "fec" {
					next = pkts[k+2]
				}
				if _, err := dec.Conceal(next, pcm); err != nil {
					b.Fatal(err)
				}
			}
			c.stop(b)
		})
	}
}

func BenchmarkResample(b *testing.B) {
	for _, c := range [][2]int{{8000, 48000}, {48000, 8000}, {16000, 48000}, {48000, 16000}, {8000, 16000}, {16000, 8000}} {
		b.Run(fmt.Sprintf("%dk-%dk/20ms", c[0]/1000, c[1]/1000), func(b *testing.B) {
			r, _ := NewResampler(c[0], c[1])
			in := benchFrames(c[0], 20)[3]
			out := make([]int16, r.OutLen(len(in))+1)
			c := startCPU(b)
			for b.Loop() {
				r.Resample(in, out)
			}
			c.stop(b)
		})
	}
}

// transcoder is one call's codec chain, both directions, as the bridge
// runs it.
type transcoder struct {
	sipDec, tgDec Decoder
	sipEnc, tgEnc Encoder
	up, down      *PolyResampler // nil when Opus runs at the SIP rate
	pcm, mid, enc []int16
	payload       []byte
}

func newTranscoder(b *testing.B, sip string, opusRate int) *transcoder {
	sipDec, _ := NewDecoder(sip, 8000, Options{})
	sipEnc, _ := NewEncoder(sip, 8000, Options{})
	tgEnc, err := NewEncoder(Opus, 48000, Options{SampleRate: opusRate, Complexity: 5})
	if err != nil {
		b.Fatal(err)
	}
	tgDec, _ := NewDecoder(Opus, 48000, Options{SampleRate: opusRate})
	t := &transcoder{sipDec: sipDec, sipEnc: sipEnc, tgEnc: tgEnc, tgDec: tgDec,
		pcm: make([]int16, 5760), mid: make([]int16, 5760), enc: make([]int16, 5760), payload: make([]byte, 1500)}
	if rate := sipDec.SampleRate(); rate != opusRate {
		t.up, _ = NewResampler(rate, opusRate)
		t.down, _ = NewResampler(opusRate, rate)
	}
	return t
}

// toTelegram: one SIP packet (20 ms) in, one 20 ms Opus packet out.
func (t *transcoder) toTelegram(sipPayload []byte) error {
	n, err := t.sipDec.Decode(sipPayload, t.pcm)
	if err != nil {
		return err
	}
	in := t.pcm[:n]
	if t.up != nil {
		in = t.mid[:t.up.Resample(in, t.mid)]
	}
	_, err = t.tgEnc.Encode(in, t.payload)
	return err
}

// fromTelegram: one Opus packet (60 ms from tgcalls) in, three 20 ms SIP
// packets out.
func (t *transcoder) fromTelegram(opusPayload []byte) error {
	n, err := t.tgDec.Decode(opusPayload, t.pcm)
	if err != nil {
		return err
	}
	out := t.pcm[:n]
	if t.down != nil {
		out = t.mid[:t.down.Resample(out, t.mid)]
	}
	frame := t.sipEnc.SampleRate() / 50
	for off := 0; off+frame <= len(out); off += frame {
		if _, err := t.sipEnc.Encode(out[off:off+frame], t.payload); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkTranscode measures the two directions of a transcoded call at
// complexity 5, with Opus at the SIP rate ("native") and at 48 kHz through
// the resampler, and BenchmarkTranscode/call/... one 60 ms slice of a whole
// call (3 packets toward Telegram, 1 from it), from which it reports how
// many concurrent calls fit in 70 % of 2 cores.
func BenchmarkTranscode(b *testing.B) {
	for _, sip := range []string{PCMU, G722} {
		for _, mode := range []string{"native", "via48k"} {
			opusRate := OpusRateFor(sip)
			if mode == "via48k" {
				opusRate = 48000
			}
			sipEnc, _ := NewEncoder(sip, 8000, Options{})
			sipPkts := encodedFrames(b, sipEnc, 20)
			tg := telegramStream(b)
			b.Run(fmt.Sprintf("%s20ms-opus20ms/%s", sip, mode), func(b *testing.B) {
				t := newTranscoder(b, sip, opusRate)
				c := startCPU(b)
				for i := 0; b.Loop(); i++ {
					if err := t.toTelegram(sipPkts[i%len(sipPkts)]); err != nil {
						b.Fatal(err)
					}
				}
				c.stop(b)
			})
			b.Run(fmt.Sprintf("opus60ms-3x%s20ms/%s", sip, mode), func(b *testing.B) {
				t := newTranscoder(b, sip, opusRate)
				c := startCPU(b)
				for i := 0; b.Loop(); i++ {
					if err := t.fromTelegram(tg[i%len(tg)]); err != nil {
						b.Fatal(err)
					}
				}
				c.stop(b)
			})
			b.Run(fmt.Sprintf("call/%s/%s", sip, mode), func(b *testing.B) {
				t := newTranscoder(b, sip, opusRate)
				c := startCPU(b)
				for i := 0; b.Loop(); i++ {
					for k := range 3 {
						if err := t.toTelegram(sipPkts[(3*i+k)%len(sipPkts)]); err != nil {
							b.Fatal(err)
						}
					}
					if err := t.fromTelegram(tg[i%len(tg)]); err != nil {
						b.Fatal(err)
					}
				}
				// One op is 60 ms of a call, so a call needs cpu/0.06 s of
				// CPU per second; 70 % of 2 cores is 1.4 CPU-s per second.
				perCall := c.stop(b) / 1e9 / 0.060
				b.ReportMetric(0.7*2/perCall, "calls/70%of2cores")
			})
		}
	}
}

// BenchmarkOpusSettings shows what the bitrate and the FEC data cost the
// 8 kHz encoder at complexity 5.
func BenchmarkOpusSettings(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"32kbps-fec10", Options{SampleRate: 8000, Bitrate: 32000}},
		{"24kbps-fec10", Options{SampleRate: 8000, Bitrate: 24000}},
		{"16kbps-fec10", Options{SampleRate: 8000, Bitrate: 16000}},
		{"24kbps-nofec", Options{SampleRate: 8000, Bitrate: 24000, PacketLossPercent: -1}},
		{"16kbps-nofec", Options{SampleRate: 8000, Bitrate: 16000, PacketLossPercent: -1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			enc, err := NewOpusEncoder(c.opts)
			if err != nil {
				b.Fatal(err)
			}
			benchEncode(b, enc, 20)
		})
	}
}

// BenchmarkCallCodecsMemory reports the heap one call's codecs take (B/op:
// a SIP decoder and encoder, an Opus encoder and decoder, and resamplers
// when Opus runs at 48 kHz), for the memory-per-call budget.
func BenchmarkCallCodecsMemory(b *testing.B) {
	for _, c := range []struct {
		sip      string
		opusRate int
	}{{PCMU, 8000}, {PCMU, 48000}, {G722, 16000}} {
		b.Run(fmt.Sprintf("%s/opus%dk", c.sip, c.opusRate/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sd, _ := NewDecoder(c.sip, 8000, Options{})
				se, _ := NewEncoder(c.sip, 8000, Options{})
				od, _ := NewDecoder(Opus, 48000, Options{SampleRate: c.opusRate})
				oe, _ := NewEncoder(Opus, 48000, Options{SampleRate: c.opusRate})
				if r := sd.SampleRate(); r != c.opusRate {
					NewResampler(r, c.opusRate)
					NewResampler(c.opusRate, r)
				}
				_, _, _, _ = sd, se, od, oe
			}
		})
	}
}
