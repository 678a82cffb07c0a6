package codec

// Packet loss concealment for the waveform codecs (G.711, G.722), after the
// method of ITU-T G.711 Appendix I: find the pitch period of the recent
// output by normalised cross-correlation, repeat the last period (its end
// blended into the period before it so the loop has no click), hold the
// level for 10 ms, then fade 20 % per 10 ms to silence at 60 ms; when audio
// returns, cross-fade from the concealment into it over a quarter period.
// Unlike Appendix I it never changes output already handed out (the bridge
// plays each frame at once), so it adds no delay.

const (
	plcHistoryMs = 40 // >= correlation window + max pitch, and >= 2 periods
	plcWindowMs  = 20 // correlation window
	plcHoldMs    = 10
	plcFadeMs    = 50 // from full level to silence after the hold
)

type plc struct {
	rate   int
	hist   []int16 // the last plcHistoryMs of output, oldest first
	cycle  []int16 // one pitch period to repeat, looped smoothly
	pitch  int     // length of cycle in use
	pos    int     // next index into cycle
	lost   int     // samples concealed in the current burst (0: none)
	minLag int
	maxLag int
}

func (p *plc) init(rate int) {
	p.rate = rate
	p.hist = make([]int16, rate*plcHistoryMs/1000)
	p.minLag = rate * 25 / 10000 // 2.5 ms (400 Hz)
	p.maxLag = rate * 15 / 1000  // 15 ms (67 Hz)
	p.cycle = make([]int16, p.maxLag)
}

// remember appends pcm to the history.
func (p *plc) remember(pcm []int16) {
	h := p.hist
	if len(pcm) >= len(h) {
		copy(h, pcm[len(pcm)-len(h):])
		return
	}
	copy(h, h[len(pcm):])
	copy(h[len(h)-len(pcm):], pcm)
}

// good takes a decoded frame: after a loss it cross-fades from the
// concealment into the frame's start, then records the frame.
func (p *plc) good(pcm []int16) {
	if p.lost > 0 {
		n := min(p.pitch/4, len(pcm))
		for i := range n {
			w := float32(i+1) / float32(n+1)
			c := float32(p.next())
			pcm[i] = sat16(int32(w*float32(pcm[i]) + (1-w)*c))
		}
		p.lost = 0
	}
	p.remember(pcm)
}

// conceal fills pcm with a continuation of the recent output.
func (p *plc) conceal(pcm []int16) {
	if p.lost == 0 {
		p.start()
	}
	for i := range pcm {
		pcm[i] = p.next()
	}
	p.remember(pcm)
}

// next returns the next concealment sample with the fade applied and
// advances the burst.
func (p *plc) next() int16 {
	hold := p.rate * plcHoldMs / 1000
	fade := p.rate * plcFadeMs / 1000
	var g float32 = 1
	if p.lost >= hold+fade {
		g = 0
	} else if p.lost > hold {
		g = 1 - float32(p.lost-hold)/float32(fade)
	}
	v := p.cycle[p.pos]
	p.pos++
	if p.pos == p.pitch {
		p.pos = 0
	}
	p.lost++
	return int16(g * float32(v))
}

// start picks the pitch and builds the cycle at the beginning of a loss.
func (p *plc) start() {
	h := p.hist
	p.pitch = p.findPitch()
	p.pos = 0
	t := len(h) - p.pitch
	ola := p.pitch / 4
	for k := range p.pitch {
		v := float32(h[t+k])
		if j := k - (p.pitch - ola); j >= 0 && t-p.pitch+k >= 0 {
			// Blend the period's end into the samples one period earlier,
			// which lead continuously into the period's start.
			w := float32(j+1) / float32(ola+1)
			v = (1-w)*v + w*float32(h[t-p.pitch+k])
		}
		p.cycle[k] = int16(v)
	}
}

// findPitch returns the lag in [minLag, maxLag] that best predicts the
// last plcWindowMs of history from the samples lag earlier (largest
// normalised correlation), searched on every other lag and sample first
// and refined at full resolution.
func (p *plc) findPitch() int {
	h := p.hist
	win := p.rate * plcWindowMs / 1000
	end := len(h)
	score := func(lag, step int) float64 {
		var c, e float64
		for n := end - win; n < end; n += step {
			a, b := float64(h[n]), float64(h[n-lag])
			c += a * b
			e += b * b
		}
		if c <= 0 || e == 0 {
			return 0
		}
		return c * c / e
	}
	best, bestLag := -1.0, p.maxLag
	for lag := p.minLag; lag <= p.maxLag; lag += 2 {
		if s := score(lag, 2); s > best {
			best, bestLag = s, lag
		}
	}
	coarse := bestLag
	best = -1
	for lag := max(p.minLag, coarse-1); lag <= min(p.maxLag, coarse+1); lag++ {
		if s := score(lag, 1); s > best {
			best, bestLag = s, lag
		}
	}
	return bestLag
}

func sat16(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
