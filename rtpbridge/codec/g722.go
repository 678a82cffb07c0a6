package codec

// G.722 (ITU-T Rec. G.722, 7 kHz audio coding within 64 kbit/s), mode 1
// (64 kbit/s): 16 kHz PCM is split by a 24-tap quadrature mirror filter
// into a lower and a higher sub-band at 8 kHz each; the lower band is coded
// with 6-bit and the higher band with 2-bit sub-band ADPCM, one octet per
// pair of input samples (the higher band's 2 bits on top). The block names
// in the comments (QMF, 2L/2H INVQAL/INVQAH, 3L/3H LOGSCL/SCALEL, 4 RECONS/
// PARREC/UPPOL1/UPPOL2/UPZERO/DELAYA/FILTEP/FILTEZ/PREDIC, 5L/5H, 6L/6H)
// follow the functional description in G.722 §3 and §4; the tables are
// those of G.722 Tables 6–9 and 11–14. Arithmetic is 16-bit with
// saturation, as specified, so the bitstream is bit-exact.
//
// Level convention: 16-bit PCM goes through the QMF with a gain of 1/2
// (sub-band signals in the 15-bit range the codec limits to) and comes back
// with a gain of 2, as Asterisk and FreeSWITCH (spandsp) and FFmpeg do, so
// our G.722 interoperates with theirs at the same level.

// qmfCoeffs are the QMF coefficients h0..h11 (Table 11); h23-i = h i.
var qmfCoeffs = [12]int32{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}

// Lower sub-band tables.
var (
	// q6up holds the upper decision levels of the 6-bit quantiser's
	// intervals 1..29 (Table 6), compared with the scaled magnitude of the
	// prediction error; padded to 32 entries for the encoder's search
	// (still increasing, and small enough not to overflow when scaled).
	q6up = [32]int32{35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714,
		786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
		32767, 32767, 32767}
	// iln and ilp map a quantiser interval to the negative and positive
	// 6-bit code.
	iln = [32]int32{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
		18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0}
	ilp = [32]int32{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47,
		46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0}
	// qm6 is the 6-bit inverse quantiser (output levels) used by the
	// decoder for mode 1.
	qm6 = [64]int32{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
	// qm4 is the 4-bit inverse quantiser that drives the predictor (the
	// code without its two least significant bits).
	qm4 = [16]int32{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
		20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	// rl42 and wl give the log scale factor multiplier per 4-bit code.
	rl42 = [16]int32{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	wl   = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
	// ilb is 2^(i/32) in Q11, the inverse log base 2 for SCALEL/SCALEH.
	ilb = [32]int32{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
		2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520,
		3597, 3676, 3756, 3838, 3922, 4008}
)

// Higher sub-band tables.
var (
	ihn = [3]int32{0, 1, 0}
	ihp = [3]int32{0, 3, 2}
	qm2 = [4]int32{-7408, -1616, 7408, 1616}
	rh2 = [4]int32{2, 1, 2, 1}
	wh  = [3]int32{0, -214, 798}
)

// g722Band is the ADPCM state of one sub-band.
type g722Band struct {
	s, sp, sz int32    // predictor outputs (total, pole part, zero part)
	r         [3]int32 // reconstructed signal, r[0] newest
	a, ap     [3]int32 // pole coefficients and their update
	b         [7]int32 // zero coefficients
	d         [7]int32 // quantised difference signal, d[0] newest
	p         [3]int32 // partial reconstructed signal
	nb, det   int32    // log scale factor and scale factor
}

func sat(v int32) int32 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return v
}

// scale turns the log scale factor into the linear one (SCALEL/SCALEH);
// shift is 8 for the lower band and 10 for the higher.
func (s *g722Band) scale(shift int32) {
	i := (s.nb >> 6) & 31
	sh := shift - (s.nb >> 11)
	var v int32
	if sh < 0 {
		v = ilb[i] << -sh
	} else {
		v = ilb[i] >> sh
	}
	s.det = v << 2
}

// adapt runs block 4: reconstruct, update the pole and zero predictor
// coefficients by sign-sign adaptation and predict the next sample.
func (s *g722Band) adapt(dx int32) {
	// RECONS, PARREC
	s.d[0] = dx
	s.r[0] = sat(s.s + dx)
	s.p[0] = sat(s.sz + dx)

	// UPPOL2
	var sg [3]int32
	for i := range 3 {
		sg[i] = s.p[i] >> 15
	}
	wd1 := sat(s.a[1] << 2)
	wd2 := wd1
	if sg[0] == sg[1] {
		wd2 = -wd1
	}
	if wd2 > 32767 {
		wd2 = 32767
	}
	wd3 := int32(-128)
	if sg[0] == sg[2] {
		wd3 = 128
	}
	wd3 += wd2 >> 7
	wd3 += (s.a[2] * 32512) >> 15
	s.ap[2] = min(max(wd3, -12288), 12288)

	// UPPOL1
	wd1 = -192
	if sg[0] == sg[1] {
		wd1 = 192
	}
	wd2 = (s.a[1] * 32640) >> 15
	s.ap[1] = sat(wd1 + wd2)
	lim := sat(15360 - s.ap[2])
	s.ap[1] = min(max(s.ap[1], -lim), lim)

	// UPZERO, DELAYA and FILTEZ for the zero section in one pass, from the
	// oldest tap down so each old value is read before it is shifted: the
	// update of b[i] uses the old d[i]; the prediction uses the new b[i]
	// and the shifted d (new d[i] = old d[i-1], new d[1] = dx).
	wd1 = 128
	if dx == 0 {
		wd1 = 0
	}
	sg0 := dx >> 15
	var sz int32
	for i := 6; i > 0; i-- {
		up := -wd1
		if s.d[i]>>15 == sg0 {
			up = wd1
		}
		b := sat(up + (s.b[i]*32640)>>15)
		s.b[i] = b
		d := s.d[i-1]
		s.d[i] = d
		sz += (b * sat(d+d)) >> 15
	}

	// DELAYA for the pole section, then FILTEP.
	s.r[2], s.r[1] = s.r[1], s.r[0]
	s.p[2], s.p[1] = s.p[1], s.p[0]
	s.a[1], s.a[2] = s.ap[1], s.ap[2]
	wd1 = (s.a[1] * sat(s.r[1]+s.r[1])) >> 15
	wd2 = (s.a[2] * sat(s.r[2]+s.r[2])) >> 15
	s.sp = sat(wd1 + wd2)
	s.sz = sat(sz)

	// PREDIC
	s.s = sat(s.sp + s.sz)
}

// lowerUpdate runs INVQAL, LOGSCL, SCALEL and block 4 for a lower-band
// 6-bit code; it is shared by encoder and decoder.
func (s *g722Band) lowerUpdate(ilow int32) {
	ril := ilow >> 2
	dlow := (s.det * qm4[ril]) >> 15
	s.nb = min(max((s.nb*127)>>7+wl[rl42[ril]], 0), 18432)
	s.scale(8)
	s.adapt(dlow)
}

// higherUpdate is the higher-band counterpart (INVQAH, LOGSCH, SCALEH,
// block 4) for a 2-bit code; it returns the quantised difference.
func (s *g722Band) higherUpdate(ihigh int32) int32 {
	dhigh := (s.det * qm2[ihigh]) >> 15
	s.nb = min(max((s.nb*127)>>7+wh[rh2[ihigh]], 0), 22528)
	s.scale(10)
	s.adapt(dhigh)
	return dhigh
}

// g722State is the state shared by the encoder and the decoder layout.
type g722State struct {
	band [2]g722Band
	// The QMF delay line: the last 24 samples are x[p:p+24], oldest
	// first; every sample is stored twice (x[i] == x[i+24]) so that window
	// is contiguous without shifting the line for each new pair.
	x [48]int32
	p int
}

// push appends a pair of samples to the QMF delay line and returns the
// window of the last 24.
func (st *g722State) push(a, b int32) *[24]int32 {
	st.p += 2
	if st.p == 24 {
		st.p = 0
	}
	i := st.p + 22 // window positions 22 and 23
	st.x[i], st.x[i+1] = a, b
	if i >= 24 {
		st.x[i-24], st.x[i-23] = a, b
	} else {
		st.x[i+24], st.x[i+25] = a, b
	}
	return (*[24]int32)(st.x[st.p : st.p+24])
}

func (st *g722State) reset() {
	*st = g722State{}
	st.band[0].det = 32
	st.band[1].det = 8
}

// G722Encoder is a G.722 64 kbit/s encoder: Encode takes an even number of
// 16 kHz samples and writes one octet per two.
type G722Encoder struct{ st g722State }

// NewG722Encoder returns a G.722 encoder in its initial state.
func NewG722Encoder() *G722Encoder {
	e := &G722Encoder{}
	e.st.reset()
	return e
}

// SampleRate is 16000: G.722 codes 16 kHz audio (its RTP clock rate is
// 8000 nonetheless, RFC 3551 §4.5.2).
func (e *G722Encoder) SampleRate() int { return 16000 }

// Encode codes pcm (an even number of samples) into len(pcm)/2 octets.
func (e *G722Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm)%2 != 0 {
		return 0, ErrBadFrame
	}
	n := len(pcm) / 2
	if len(out) < n {
		return 0, ErrShortBuffer
	}
	st := &e.st
	lo, hi := &st.band[0], &st.band[1]
	for j := range n {
		// Transmit QMF: shift in two samples, keep every other output.
		x := st.push(int32(pcm[2*j]), int32(pcm[2*j+1]))
		var even, odd int32
		for i := range 12 {
			odd += x[2*i] * qmfCoeffs[i]
			even += x[2*i+1] * qmfCoeffs[11-i]
		}
		xlow := (even + odd) >> 14
		xhigh := (even - odd) >> 14

		// Lower band: subtract the prediction, quantise to 6 bits
		// (block 1L), then update the state.
		el := sat(xlow - lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1)
		}
		// The first interval i in 1..29 with wd below its scaled upper
		// decision level, or 30: one more than the number of levels
		// in q6up[0..28] at or below wd (at most 30), counted by a branch-free
		// binary search (the levels increase).
		var pos int32
		for step := int32(16); step > 0; step >>= 1 {
			if wd >= (q6up[pos+step-1]*lo.det)>>12 {
				pos += step
			}
		}
		i := min(pos+1, 30)
		ilow := ilp[i]
		if el < 0 {
			ilow = iln[i]
		}
		lo.lowerUpdate(ilow)

		// Higher band: 2-bit quantiser (block 1H).
		eh := sat(xhigh - hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := 1
		if wd >= (564*hi.det)>>12 {
			mih = 2
		}
		ihigh := ihp[mih]
		if eh < 0 {
			ihigh = ihn[mih]
		}
		hi.higherUpdate(ihigh)

		out[j] = byte(ihigh<<6 | ilow)
	}
	return n, nil
}

// G722Decoder is a G.722 64 kbit/s decoder: each octet gives two 16 kHz
// samples. It conceals lost frames by waveform repetition.
type G722Decoder struct {
	st  g722State
	plc plc
}

// NewG722Decoder returns a G.722 decoder in its initial state.
func NewG722Decoder() *G722Decoder {
	d := &G722Decoder{}
	d.st.reset()
	d.plc.init(16000)
	return d
}

// SampleRate is 16000.
func (d *G722Decoder) SampleRate() int { return 16000 }

// Decode decodes payload into 2*len(payload) samples.
func (d *G722Decoder) Decode(payload []byte, pcm []int16) (int, error) {
	if len(payload) == 0 {
		return 0, ErrEmptyPayload
	}
	n := 2 * len(payload)
	if len(pcm) < n {
		return 0, ErrShortBuffer
	}
	pcm = pcm[:n]
	st := &d.st
	lo, hi := &st.band[0], &st.band[1]
	for j, code := range payload {
		ilow := int32(code & 0x3F)
		ihigh := int32(code>>6) & 3

		// Lower band: 6-bit inverse quantiser (5L), RECONS, LIMIT (6L).
		rlow := lo.s + (lo.det*qm6[ilow])>>15
		rlow = min(max(rlow, -16384), 16383)
		lo.lowerUpdate(ilow)

		// Higher band: INVQAH, RECONS (5H), LIMIT (6H).
		shigh := hi.s
		dhigh := hi.higherUpdate(ihigh)
		rhigh := min(max(dhigh+shigh, -16384), 16383)

		// Receive QMF.
		x := st.push(rlow+rhigh, rlow-rhigh)
		var out1, out2 int32
		for i := range 12 {
			out2 += x[2*i] * qmfCoeffs[i]
			out1 += x[2*i+1] * qmfCoeffs[11-i]
		}
		pcm[2*j] = int16(sat(out1 >> 11))
		pcm[2*j+1] = int16(sat(out2 >> 11))
	}
	d.plc.good(pcm)
	return n, nil
}

// Conceal ignores next: G.722 has no redundancy to recover from. len(pcm)
// should be even (whole octets).
func (d *G722Decoder) Conceal(_ []byte, pcm []int16) (int, error) {
	d.plc.conceal(pcm)
	return len(pcm), nil
}
