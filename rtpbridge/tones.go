package rtpbridge

import (
	"math"
)

// DTMF frequencies (ITU-T Q.23): rows then columns; digit i of
// "123A456B789C*0#D" is row i/4, column i%4.
var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
)

const keypad = "123A456B789C*0#D"

// toneFreqs gives the two frequencies of an event code.
func toneFreqs(event uint8) (lo, hi float64, ok bool) {
	d := eventDigit(event)
	if d == 0 {
		return 0, 0, false
	}
	for i := 0; i < len(keypad); i++ {
		if keypad[i] == d {
			return dtmfRows[i/4], dtmfCols[i%4], true
		}
	}
	return 0, 0, false
}

// toneAmplitude of each of the two sines: about -10 dBFS each, so the pair
// stays clear of clipping (Q.23 asks for -10 dBm0 or so per frequency).
const toneAmplitude = 7000

// toneGen renders DTMF tones sample by sample, phase-continuous across
// calls.
type toneGen struct {
	rate   int
	event  uint8
	lo, hi float64
	n      int // samples made of the current tone
	on     bool
}

func (g *toneGen) start(event uint8) bool {
	lo, hi, ok := toneFreqs(event)
	if !ok {
		return false
	}
	g.event, g.lo, g.hi, g.n, g.on = event, lo, hi, 0, true
	return true
}

func (g *toneGen) fill(pcm []int16) {
	r := float64(g.rate)
	for i := range pcm {
		t := float64(g.n) / r
		pcm[i] = int16(toneAmplitude * (math.Sin(2*math.Pi*g.lo*t) + math.Sin(2*math.Pi*g.hi*t)))
		g.n++
	}
}

// dtmfDetector finds DTMF digits in PCM with the Goertzel algorithm over
// blocks of about 26 ms (205 samples at 8 kHz, the classic choice for a
// resolution that separates Q.23's rows), and applies the checks of
// ITU-T Q.24: both a row and a column tone strong, little energy
// elsewhere, the twist between them bounded, and a digit confirmed over
// two consecutive blocks (Q.24 accepts tones from 40 ms).
type dtmfDetector struct {
	rate   int
	block  int
	coeffs [8]float64
	s1, s2 [8]float64
	energy float64
	n      int

	cand    byte // digit seen in the last block
	current byte // digit considered on, 0 for none
	offRun  int
}

func newDTMFDetector(rate int) *dtmfDetector {
	d := &dtmfDetector{rate: rate, block: rate * 205 / 8000}
	for i := 0; i < 8; i++ {
		f := dtmfRows[i%4]
		if i >= 4 {
			f = dtmfCols[i-4]
		}
		d.coeffs[i] = 2 * math.Cos(2*math.Pi*f/float64(rate))
	}
	return d
}

// Thresholds of the detector.
const (
	dtmfMinRMS      = 300  // about -40 dBFS: quieter is silence
	dtmfMinFraction = 0.6  // row+column hold ≥ 60 % of the block's energy
	dtmfMaxTwist    = 6.3  // ±8 dB between row and column (Q.24 §2.3 allows less; lenient for codecs)
	dtmfMaxOther    = 0.25 // a second row or column ≤ -6 dB of the strongest
)

// feed runs pcm through the detector and returns the digit that is on
// after it (0 for none); changed says whether that differs from before.
func (d *dtmfDetector) feed(pcm []int16) (digit byte, changed bool) {
	prev := d.current
	for _, x := range pcm {
		v := float64(x)
		d.energy += v * v
		for i := range d.coeffs {
			s0 := v + d.coeffs[i]*d.s1[i] - d.s2[i]
			d.s2[i], d.s1[i] = d.s1[i], s0
		}
		d.n++
		if d.n == d.block {
			d.endBlock()
		}
	}
	return d.current, d.current != prev
}

func (d *dtmfDetector) endBlock() {
	var p [8]float64
	n := float64(d.block)
	for i := range p {
		// |X(f)|² of the block, scaled to the fraction of the block's
		// energy a sine at f carries (a full-scale sine alone gives 1).
		p[i] = (d.s1[i]*d.s1[i] + d.s2[i]*d.s2[i] - d.coeffs[i]*d.s1[i]*d.s2[i]) * 2 / n
		d.s1[i], d.s2[i] = 0, 0
	}
	digit := byte(0)
	if e := d.energy; e > 0 && math.Sqrt(e/n) >= dtmfMinRMS {
		r, r2 := strongest(p[:4])
		c, c2 := strongest(p[4:])
		pr, pc := p[r], p[4+c]
		switch {
		case (pr+pc)/e < dtmfMinFraction:
		case pr > pc*dtmfMaxTwist || pc > pr*dtmfMaxTwist:
		case r2 > pr*dtmfMaxOther || c2 > pc*dtmfMaxOther:
		default:
			digit = keypad[r*4+c]
		}
	}
	d.energy, d.n = 0, 0
	switch {
	case digit != 0 && digit == d.current:
		d.offRun = 0
	case digit != 0 && digit == d.cand:
		d.current, d.offRun = digit, 0
	case d.current != 0:
		// Q.24: a pause of 40 ms ends a digit; two blocks without it.
		d.offRun++
		if d.offRun >= 2 {
			d.current = 0
		}
	}
	d.cand = digit
}

// strongest returns the index of the largest of p and the second-largest
// value.
func strongest(p []float64) (int, float64) {
	best, second := 0, 0.0
	for i := 1; i < len(p); i++ {
		if p[i] > p[best] {
			best = i
		}
	}
	for i := range p {
		if i != best && p[i] > second {
			second = p[i]
		}
	}
	return best, second
}
