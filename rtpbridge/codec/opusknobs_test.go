//go:build opusknobs

package codec

import (
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// BenchmarkOpusKnobs measures what each libopus encoder setting costs
// the encoder toward Telegram as the bridge runs it for a G.711 call
// (opened at 8 kHz, complexity 5, VoIP, 32 kbit/s VBR, 20 ms frames, FEC
// allowed with no loss expected), one setting changed at a time. It
// reports the CPU per 20 ms frame, the bytes per packet and the share of
// SILK-only packets (TOC configs 0–11, RFC 6716 §3.1). Run with
// -tags opusknobs (docs/codecs.md).
func BenchmarkOpusKnobs(b *testing.B) {
	base := opusKnobs{rate: 8000, app: opusAppVoIP, complexity: 5, bitrate: 32000, vbr: true, fec: true}
	for _, c := range []struct {
		name   string
		change func(*opusKnobs)
		bursts bool // the load harness's content instead of speech
	}{
		{"bridge", func(*opusKnobs) {}, false},
		{"loss1", func(k *opusKnobs) { k.loss = 1 }, false},
		{"loss10", func(k *opusKnobs) { k.loss = 10 }, false},
		{"fecoff", func(k *opusKnobs) { k.fec = false }, false},
		{"cbr", func(k *opusKnobs) { k.vbr = false }, false},
		{"signalvoice", func(k *opusKnobs) { k.signal = opusSignalVoice }, false},
		{"lsb16", func(k *opusKnobs) { k.lsbDepth = 16 }, false},
		{"maxbwNB", func(k *opusKnobs) { k.maxBW = opusBandwidthNB }, false},
		{"dtx", func(k *opusKnobs) { k.dtx = true }, false},
		{"bridge-bursts", func(*opusKnobs) {}, true},
		{"dtx-bursts", func(k *opusKnobs) { k.dtx = true }, true},
		{"16kbps", func(k *opusKnobs) { k.bitrate = 16000 }, false},
		{"24kbps", func(k *opusKnobs) { k.bitrate = 24000 }, false},
		{"cx4", func(k *opusKnobs) { k.complexity = 4 }, false},
		{"cx3", func(k *opusKnobs) { k.complexity = 3 }, false},
		{"cx2", func(k *opusKnobs) { k.complexity = 2 }, false},
		{"cx0", func(k *opusKnobs) { k.complexity = 0 }, false},
		{"appaudio", func(k *opusKnobs) { k.app = opusAppAudio }, false},
	} {
		k := base
		c.change(&k)
		b.Run(c.name, func(b *testing.B) {
			enc, err := newKnobEncoder(k)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.close()
			frames := benchFrames(k.rate, 20)
			if c.bursts {
				frames = burstFrames(k.rate)
			}
			out := make([]byte, 1500)
			var bytes, silk int
			cpu := startCPU(b)
			for i := 0; b.Loop(); i++ {
				n, err := enc.encode(frames[i%len(frames)], out)
				if err != nil {
					b.Fatal(err)
				}
				bytes += n
				if out[0]>>3 < 12 {
					silk++
				}
			}
			cpu.stop(b)
			b.ReportMetric(float64(bytes)/float64(b.N), "B/packet")
			b.ReportMetric(100*float64(silk)/float64(b.N), "%silk")
		})
	}
}

// burstFrames is 1 s of what the load harness sends (internal/perfrelay):
// a 20 ms 1 kHz burst, then digital silence, in 20 ms frames.
func burstFrames(rate int) [][]int16 {
	frames := make([][]int16, 50)
	for i := range frames {
		frames[i] = make([]int16, rate/50)
	}
	audiotest.Tone(frames[0], 1000, rate, 0)
	return frames
}
