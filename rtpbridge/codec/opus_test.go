package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// speechLike is a test signal that changes every 20 ms like speech does: a
// voiced sound whose pitch and formant-ish harmonics jump from frame to
// frame, so concealment that only extends the past sounds wrong.
func speechLike(n, rate int) []int16 {
	out := make([]int16, n)
	frame := rate / 50
	pitches := []float64{140, 210, 120, 260, 180, 150, 230, 110}
	var ph float64
	for i := range out {
		k := i / frame
		p := pitches[k%len(pitches)]
		ph += 2 * math.Pi * p / float64(rate)
		v := 0.0
		for h := 1; h <= 8; h++ {
			v += math.Sin(float64(h)*ph+float64(k*h)) / float64(h)
		}
		out[i] = int16(6000 * v)
	}
	return out
}

// TestOpusFECBeatsPLC drops single packets of a 20 ms and a 60 ms Opus
// stream and conceals each once with in-band FEC from the next packet and
// once with PLC only: FEC must come much closer to the loss-free decode.
//
// A 60 ms packet at 48 kHz and 32 kbit/s is hybrid (SILK+CELT) and so
// three 20 ms frames (RFC 6716 §3.2.5, code 3); libopus then recovers only
// the last 20 ms of a lost 60 ms from FEC and runs PLC for the rest, so FEC
// gains little there (the "limited" row). At 24 kbit/s the packet is one
// 60 ms SILK frame and FEC restores all of it.
func TestOpusFECBeatsPLC(t *testing.T) {
	for _, c := range []struct {
		rate, ms, bitrate int
		factor            float64 // FEC distance must be below factor × PLC's
	}{
		{8000, 20, 32000, 0.75}, {8000, 60, 32000, 0.75}, {16000, 20, 32000, 0.75},
		{48000, 20, 32000, 0.75}, {48000, 60, 24000, 0.75}, {48000, 60, 32000, 1}, // limited
	} {
		frame := c.rate * c.ms / 1000
		enc, err := NewOpusEncoder(Options{SampleRate: c.rate, PacketLossPercent: 20, Bitrate: c.bitrate})
		if err != nil {
			t.Fatal(err)
		}
		sig := speechLike(c.rate*3, c.rate)
		var pkts [][]byte
		buf := make([]byte, 1500)
		for off := 0; off+frame <= len(sig); off += frame {
			n, err := enc.Encode(sig[off:off+frame], buf)
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, append([]byte(nil), buf[:n]...))
		}
		lost := func(i int) bool { return i >= 5 && i%7 == 5 && i+1 < len(pkts) }
		decodeAll := func(mode string) []int16 {
			dec, _ := NewOpusDecoder(c.rate)
			out := make([]int16, len(pkts)*frame)
			for i, p := range pkts {
				pcm := out[i*frame : (i+1)*frame]
				var n int
				var err error
				switch {
				case mode == "none" || !lost(i):
					n, err = dec.Decode(p, pcm)
				case mode == "fec":
					n, err = dec.Conceal(pkts[i+1], pcm)
				default:
					n, err = dec.Conceal(nil, pcm)
				}
				if err != nil || n != frame {
					t.Fatalf("%s packet %d: %d, %v", mode, i, n, err)
				}
			}
			return out
		}
		ref, fec, plc := decodeAll("none"), decodeAll("fec"), decodeAll("plc")
		// Compare each lost 20 ms with the loss-free decode by log-spectral
		// distance (SILK's FEC is a low-rate re-encoding: its spectrum and
		// pitch are right, its waveform is not, so sample-wise SNR says
		// little).
		sub := c.rate / 50
		var dFEC, dPLC float64
		var n int
		for i := range pkts {
			if !lost(i) {
				continue
			}
			for j := i * frame; j < (i+1)*frame; j += sub {
				dFEC += spectralDistance(fec[j:j+sub], ref[j:j+sub], c.rate)
				dPLC += spectralDistance(plc[j:j+sub], ref[j:j+sub], c.rate)
				n++
			}
		}
		dFEC /= float64(n)
		dPLC /= float64(n)
		t.Logf("%d Hz %d ms %d bit/s: log-spectral distance of the lost frames to the loss-free decode: FEC %.1f dB, PLC %.1f dB", c.rate, c.ms, c.bitrate, dFEC, dPLC)
		if dFEC > c.factor*dPLC {
			t.Errorf("%d Hz %d ms %d bit/s: FEC (%.1f dB) is not closer than %.2f × PLC (%.1f dB)", c.rate, c.ms, c.bitrate, dFEC, c.factor, dPLC)
		}
	}
}

// spectralDistance is the RMS difference in dB of the power spectra of a
// and b, sampled every 25 Hz from 50 Hz to 3.95 kHz.
func spectralDistance(a, b []int16, rate int) float64 {
	var sum float64
	var n int
	for f := 50.0; f < 3950; f += 25 {
		pa := audiotest.Power(a, f, rate) + 1
		pb := audiotest.Power(b, f, rate) + 1
		d := 10 * math.Log10(pa/pb)
		sum += d * d
		n++
	}
	return math.Sqrt(sum / float64(n))
}

func TestOpusErrors(t *testing.T) {
	if _, err := NewOpusEncoder(Options{SampleRate: 44100}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("44.1 kHz encoder: %v", err)
	}
	if _, err := NewOpusDecoder(11025); !errors.Is(err, ErrUnsupported) {
		t.Errorf("11.025 kHz decoder: %v", err)
	}
	enc, _ := NewOpusEncoder(Options{SampleRate: 8000})
	out := make([]byte, 1500)
	if _, err := enc.Encode(make([]int16, 100), out); !errors.Is(err, ErrBadFrame) {
		t.Errorf("100-sample frame: %v", err)
	}
	if _, err := enc.Encode(make([]int16, 160), nil); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("no out: %v", err)
	}
	dec, _ := NewOpusDecoder(8000)
	pcm := make([]int16, 960)
	if _, err := dec.Decode(nil, pcm); !errors.Is(err, ErrEmptyPayload) {
		t.Errorf("empty payload: %v", err)
	}
	if _, err := dec.Conceal(nil, nil); !errors.Is(err, ErrBadFrame) {
		t.Errorf("empty conceal: %v", err)
	}
	// Gaps measured from timestamps need not be whole 2.5 ms units or fit
	// one Opus packet: 7 samples, 21.3 ms, 250 ms at 8 kHz.
	long := make([]int16, 2000)
	for _, n := range []int{7, 170, 2000} {
		if m, err := dec.Conceal(nil, long[:n]); err != nil || m != n {
			t.Errorf("%d-sample conceal: %d, %v", n, m, err)
		}
	}
	if a := testing.AllocsPerRun(10, func() { dec.Conceal(nil, long[:170]) }); a != 0 {
		t.Errorf("unaligned conceal: %v allocs", a)
	}
	// A malformed next packet still gets the lost frame concealed (PLC).
	if n, err := dec.Conceal([]byte{0xFF, 0xFF, 0xFF}, pcm[:160]); err != nil || n != 160 {
		t.Errorf("conceal with a malformed next packet: %d, %v", n, err)
	}
	// A 60 ms packet does not fit 20 ms of room: an error, not a crash.
	n, _ := enc.Encode(make([]int16, 480), out)
	if _, err := dec.Decode(out[:n], pcm[:160]); err == nil {
		t.Error("60 ms packet into 20 ms of room: no error")
	}
	// Options are clamped into Telegram's range.
	e2, err := NewOpusEncoder(Options{Bitrate: 100000, Complexity: 42, PacketLossPercent: -1})
	if err != nil {
		t.Fatal(err)
	}
	if br, _ := e2.enc.Bitrate(); br != MaxOpusBitrate {
		t.Errorf("bitrate %d, want %d", br, MaxOpusBitrate)
	}
	if cx, _ := e2.enc.Complexity(); cx != 10 {
		t.Errorf("complexity %d", cx)
	}
	if fec, _ := e2.enc.InBandFEC(); !fec {
		t.Error("in-band FEC off")
	}
	e3, _ := NewOpusEncoder(Options{})
	if cx, _ := e3.enc.Complexity(); cx != DefaultComplexity {
		t.Errorf("default complexity %d", cx)
	}
	if lp, _ := e3.enc.PacketLossPerc(); lp != DefaultPacketLossPercent {
		t.Errorf("default loss %d", lp)
	}
}

func TestConstructors(t *testing.T) {
	for _, c := range []struct {
		name       string
		clock, pcm int
	}{{"PCMU", 8000, 8000}, {"pcma", 8000, 8000}, {"G722", 8000, 16000}, {"OPUS", 48000, 48000}} {
		d, err := NewDecoder(c.name, c.clock, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		e, err := NewEncoder(c.name, c.clock, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d.SampleRate() != c.pcm || e.SampleRate() != c.pcm {
			t.Errorf("%s: rates %d/%d, want %d", c.name, d.SampleRate(), e.SampleRate(), c.pcm)
		}
	}
	if _, err := NewDecoder("G722", 16000, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("G722/16000: %v", err)
	}
	if _, err := NewEncoder("G729", 8000, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("G729: %v", err)
	}
	if OpusRateFor("pcmu") != 8000 || OpusRateFor("G722") != 16000 || OpusRateFor("x") != 48000 {
		t.Error("OpusRateFor")
	}
}
