package codec

import (
	"fmt"
	"math"
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// stage runs a whole signal through one encoder and decoder in frames of
// frame samples, as the bridge does packet by packet.
func stage(t *testing.T, enc Encoder, dec Decoder, in []int16, frame int) []int16 {
	t.Helper()
	if enc.SampleRate() != dec.SampleRate() {
		t.Fatalf("encoder at %d Hz, decoder at %d Hz", enc.SampleRate(), dec.SampleRate())
	}
	payload := make([]byte, 1500)
	pcm := make([]int16, 5760)
	out := make([]int16, 0, len(in))
	for off := 0; off+frame <= len(in); off += frame {
		n, err := enc.Encode(in[off:off+frame], payload)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		m, err := dec.Decode(payload[:n], pcm)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if m != frame {
			t.Fatalf("decoded %d samples of a %d-sample frame", m, frame)
		}
		out = append(out, pcm[:m]...)
	}
	return out
}

func resampleSignal(t *testing.T, in []int16, from, to int) []int16 {
	r, err := NewResampler(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return resampleAll(r, in, 160)
}

// TestToneRoundTrip sends a 440 Hz and a 1 kHz tone SIP codec -> Opus ->
// SIP codec, as a call through the bridge does both ways, with Opus at the
// SIP codec's rate and at 48 kHz (through the resampler), with 20 and 60 ms
// Opus frames, and checks frequency within ±2 % and level within ±3 dB.
func TestToneRoundTrip(t *testing.T) {
	for _, sip := range []string{PCMU, PCMA, G722} {
		for _, opusRate := range []int{OpusRateFor(sip), 48000} {
			for _, ms := range []int{20, 60} {
				for _, f := range []float64{440, 1000} {
					name := fmt.Sprintf("%s/opus%dk/%dms/%vHz", sip, opusRate/1000, ms, f)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						toneRoundTrip(t, sip, opusRate, ms, f)
					})
				}
			}
		}
	}
}

func toneRoundTrip(t *testing.T, sip string, opusRate, ms int, f float64) {
	sipEnc, err := NewEncoder(sip, 8000, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sipDec, _ := NewDecoder(sip, 8000, Options{})
	sipEnc2, _ := NewEncoder(sip, 8000, Options{})
	sipDec2, _ := NewDecoder(sip, 8000, Options{})
	opusEnc, err := NewEncoder(Opus, 48000, Options{SampleRate: opusRate})
	if err != nil {
		t.Fatal(err)
	}
	opusDec, err := NewDecoder(Opus, 48000, Options{SampleRate: opusRate})
	if err != nil {
		t.Fatal(err)
	}
	rate := sipEnc.SampleRate()
	in := make([]int16, rate*6/5) // 1.2 s: whole 20 and 60 ms frames
	audiotest.Tone(in, f, rate, 0)

	a := stage(t, sipEnc, sipDec, in, rate/50) // the PBX -> bridge
	if opusRate != rate {
		a = resampleSignal(t, a, rate, opusRate)
	}
	b := stage(t, opusEnc, opusDec, a, opusRate*ms/1000) // bridge -> Telegram -> bridge
	if opusRate != rate {
		b = resampleSignal(t, b, opusRate, rate)
	}
	out := stage(t, sipEnc2, sipDec2, b, rate/50) // bridge -> the PBX

	tail := out[len(out)/2:] // past the codecs' start-up
	got, prom := audiotest.DominantFrequency(tail, rate, 100, 3900, 1)
	db := 20 * math.Log10(audiotest.RMS(tail)/audiotest.RMS(in))
	t.Logf("%.0f Hz (prominence %.0f), level %+.2f dB", got, prom, db)
	if math.Abs(got-f) > 0.02*f || prom < 20 {
		t.Errorf("tone %v Hz came back at %v Hz (prominence %.1f)", f, got, prom)
	}
	if math.Abs(db) > 3 {
		t.Errorf("level changed by %+.2f dB", db)
	}
}
