//go:build opusknobs

package codec

import "testing"

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
	}{
		{"bridge", func(*opusKnobs) {}},
		{"loss1", func(k *opusKnobs) { k.loss = 1 }},
		{"loss10", func(k *opusKnobs) { k.loss = 10 }},
		{"fecoff", func(k *opusKnobs) { k.fec = false }},
		{"cbr", func(k *opusKnobs) { k.vbr = false }},
		{"signalvoice", func(k *opusKnobs) { k.signal = opusSignalVoice }},
		{"lsb16", func(k *opusKnobs) { k.lsbDepth = 16 }},
		{"maxbwNB", func(k *opusKnobs) { k.maxBW = opusBandwidthNB }},
		{"dtx", func(k *opusKnobs) { k.dtx = true }},
		{"16kbps", func(k *opusKnobs) { k.bitrate = 16000 }},
		{"24kbps", func(k *opusKnobs) { k.bitrate = 24000 }},
		{"cx4", func(k *opusKnobs) { k.complexity = 4 }},
		{"cx3", func(k *opusKnobs) { k.complexity = 3 }},
		{"cx2", func(k *opusKnobs) { k.complexity = 2 }},
		{"cx0", func(k *opusKnobs) { k.complexity = 0 }},
		{"appaudio", func(k *opusKnobs) { k.app = opusAppAudio }},
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
