// Package audiotest makes and checks test audio: sine tones in, the dominant
// frequency out. Tests use it to prove that audio survived a trip through
// the trunk by its content, not by packet counts.
package audiotest

import (
	"math"
)

// Tone fills pcm with a sine of freq Hz at sampleRate, continuing from
// sample index start (so consecutive frames join without clicks), at about
// -6 dBFS.
func Tone(pcm []int16, freq float64, sampleRate int, start int) {
	for i := range pcm {
		t := float64(start+i) / float64(sampleRate)
		pcm[i] = int16(16000 * math.Sin(2*math.Pi*freq*t))
	}
}

// Power is the power of pcm at freq Hz (the Goertzel algorithm), normalised
// by the number of samples.
func Power(pcm []int16, freq float64, sampleRate int) float64 {
	w := 2 * math.Pi * freq / float64(sampleRate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(pcm))
	return p / (n * n)
}

// DominantFrequency scans lo..hi Hz in step Hz and returns the frequency of
// greatest power and how much it stands out: its power divided by the mean
// power over the scan (a pure tone gives a large ratio, noise about 1).
func DominantFrequency(pcm []int16, sampleRate int, lo, hi, step float64) (freq, prominence float64) {
	var best, sum float64
	var n int
	for f := lo; f <= hi; f += step {
		p := Power(pcm, f, sampleRate)
		sum += p
		n++
		if p > best {
			best, freq = p, f
		}
	}
	if sum == 0 {
		return 0, 0
	}
	return freq, best / (sum / float64(n))
}

// RMS is the root mean square level of pcm.
func RMS(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var s float64
	for _, x := range pcm {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s / float64(len(pcm)))
}
