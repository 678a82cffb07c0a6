package codec

import (
	"math"
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// TestWaveformPLC: a lost 20 ms frame of a steady tone is concealed with
// the tone (frequency kept, level within 1 dB, much closer to the truth
// than silence), a long loss fades to silence by 60 ms, and audio comes
// back when packets do.
func TestWaveformPLC(t *testing.T) {
	for _, c := range []struct {
		name string
		f    float64
	}{{PCMU, 440}, {PCMA, 1000}, {G722, 440}, {G722, 1000}} {
		enc, _ := NewEncoder(c.name, 8000, Options{})
		dec, _ := NewDecoder(c.name, 8000, Options{})
		rate := enc.SampleRate()
		frame := rate / 50
		in := make([]int16, rate) // 1 s
		audiotest.Tone(in, c.f, rate, 0)
		payload := make([]byte, frame)
		out := make([]int16, len(in))
		lostFrom, lostTo := 20, 21 // frame 20 lost
		longFrom, longTo := 30, 36 // 120 ms lost
		for k := 0; k < len(in)/frame; k++ {
			pcm := out[k*frame : (k+1)*frame]
			n, _ := enc.Encode(in[k*frame:(k+1)*frame], payload)
			if (k >= lostFrom && k < lostTo) || (k >= longFrom && k < longTo) {
				if m, err := dec.Conceal(nil, pcm); err != nil || m != frame {
					t.Fatalf("%s: conceal %d, %v", c.name, m, err)
				}
				continue
			}
			if _, err := dec.Decode(payload[:n], pcm); err != nil {
				t.Fatal(err)
			}
		}
		lost := out[lostFrom*frame : lostTo*frame]
		ref := out[(lostFrom-1)*frame : lostFrom*frame]
		f, prom := audiotest.DominantFrequency(lost, rate, 100, 3900, 2)
		db := 20 * math.Log10(audiotest.RMS(lost)/audiotest.RMS(ref))
		if math.Abs(f-c.f) > 0.02*c.f || prom < 10 || math.Abs(db) > 1 {
			t.Errorf("%s %v Hz: concealed frame at %v Hz (prominence %.0f), %+.2f dB", c.name, c.f, f, prom, db)
		}
		// Sample-wise error against the original signal (the codecs add
		// under 2 ms of delay at these frequencies, so compare with a lag
		// search) is far below the signal itself.
		best := math.Inf(1)
		for lag := 0; lag < rate/250; lag++ {
			var e float64
			for i := range lost {
				d := float64(lost[i]) - float64(in[lostFrom*frame+i-lag])
				e += d * d
			}
			best = min(best, e)
		}
		var sig float64
		for _, v := range in[lostFrom*frame : lostTo*frame] {
			sig += float64(v) * float64(v)
		}
		if snr := 10 * math.Log10(sig/best); snr < 10 {
			t.Errorf("%s %v Hz: concealment SNR %.1f dB", c.name, c.f, snr)
		}
		// The long loss is silent after 60 ms.
		tail := out[(longFrom*frame + rate*60/1000):(longTo * frame)]
		if r := audiotest.RMS(tail); r != 0 {
			t.Errorf("%s: RMS %.1f after 60 ms of loss", c.name, r)
		}
		after := out[(longTo+1)*frame : (longTo+3)*frame]
		if db := 20 * math.Log10(audiotest.RMS(after)/audiotest.RMS(ref)); math.Abs(db) > 1 {
			t.Errorf("%s: level %+.2f dB after the loss", c.name, db)
		}
	}
}
