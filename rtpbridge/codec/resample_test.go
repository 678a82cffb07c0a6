package codec

import (
	"math"
	"math/cmplx"
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// TestResamplerFilterResponse checks the designed prototype against the
// documented specification: passband 0..0.425·fl within ±0.01 dB, stopband
// from fl/2 at least 70 dB down (fl = the lower rate).
func TestResamplerFilterResponse(t *testing.T) {
	for _, ratio := range []int{2, 3, 4, 6, 12} {
		h := designLowPass(ratio)
		resp := func(f float64) float64 { // f as a fraction of the higher rate
			var s complex128
			for k, v := range h {
				s += complex(v, 0) * cmplx.Exp(complex(0, -2*math.Pi*f*float64(k)))
			}
			return 20 * math.Log10(cmplx.Abs(s))
		}
		fl := 1 / float64(ratio)
		var ripple, stop float64
		stop = -1000
		for f := 0.0; f <= rsPassFraction*fl; f += fl / 400 {
			ripple = max(ripple, math.Abs(resp(f)))
		}
		for f := 0.5 * fl; f <= 0.5; f += fl / 400 {
			stop = max(stop, resp(f))
		}
		t.Logf("ratio %d: %d taps, passband ripple %.4f dB, stopband %.1f dB", ratio, len(h), ripple, stop)
		// (ratio 2 sits at 70.0 dB; allow rounding across platforms.)
		if ripple > 0.01 || stop > -rsStopbandDB+0.1 {
			t.Errorf("ratio %d: ripple %.4f dB, stopband %.1f dB", ratio, ripple, stop)
		}
	}
}

// resampleAll runs in through r in frames of frame samples.
func resampleAll(r *PolyResampler, in []int16, frame int) []int16 {
	var out []int16
	buf := make([]int16, r.OutLen(frame)+1)
	for off := 0; off < len(in); off += frame {
		end := min(off+frame, len(in))
		n := r.Resample(in[off:end], buf)
		out = append(out, buf[:n]...)
	}
	return out
}

// TestResamplerTones: tones in the passband keep frequency and level
// through every supported ratio, with frames that are not a multiple of
// the ratio, and a tone above the lower rate's Nyquist frequency does not
// alias into the band on the way down.
func TestResamplerTones(t *testing.T) {
	for _, c := range []struct{ from, to int }{{8000, 16000}, {16000, 8000}, {8000, 48000}, {48000, 8000}, {16000, 48000}, {48000, 16000}, {8000, 8000}} {
		for _, f := range []float64{440, 1000, 3000} {
			r, err := NewResampler(c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			in := make([]int16, c.from/2) // 0.5 s
			audiotest.Tone(in, f, c.from, 0)
			out := resampleAll(r, in, 317)
			if want := len(in) * c.to / c.from; len(out) != want {
				t.Fatalf("%d->%d: %d samples out, want %d", c.from, c.to, len(out), want)
			}
			tail := out[len(out)/4:] // past the filter's delay
			got, prom := audiotest.DominantFrequency(tail, c.to, 100, 3900, 2)
			ratio := audiotest.RMS(tail) / audiotest.RMS(in[len(in)/4:])
			if math.Abs(got-f) > 4 || prom < 20 || math.Abs(20*math.Log10(ratio)) > 0.1 {
				t.Errorf("%d->%d %v Hz: got %v Hz (prominence %.0f), level %+.2f dB", c.from, c.to, f, got, prom, 20*math.Log10(ratio))
			}
		}
	}
	// 5 kHz at 16 kHz would alias to 3 kHz at 8 kHz without the filter.
	for _, from := range []int{16000, 48000} {
		r, _ := NewResampler(from, 8000)
		in := make([]int16, from/2)
		audiotest.Tone(in, 5000, from, 0)
		out := resampleAll(r, in, 320)
		tail := out[len(out)/4:]
		if db := 20 * math.Log10(audiotest.RMS(tail)/audiotest.RMS(in)); db > -60 {
			t.Errorf("%d->8000: 5 kHz leaks at %.1f dB", from, db)
		}
	}
}

func TestResamplerErrors(t *testing.T) {
	for _, c := range [][2]int{{8000, 12000}, {0, 8000}, {8000, 8000 * 13}, {44100, 48000}} {
		if _, err := NewResampler(c[0], c[1]); err == nil {
			t.Errorf("%d->%d: no error", c[0], c[1])
		}
	}
	// A short out buffer drops samples but never overruns.
	r, _ := NewResampler(8000, 48000)
	out := make([]int16, 10)
	if n := r.Resample(make([]int16, 160), out); n != 10 {
		t.Errorf("short out: %d", n)
	}
}

func TestResamplerAllocs(t *testing.T) {
	r, _ := NewResampler(8000, 48000)
	d, _ := NewResampler(48000, 8000)
	in := make([]int16, 160)
	mid := make([]int16, 960)
	out := make([]int16, 160)
	if a := testing.AllocsPerRun(100, func() {
		r.Resample(in, mid)
		d.Resample(mid, out)
	}); a != 0 {
		t.Errorf("%v allocs per frame", a)
	}
}
