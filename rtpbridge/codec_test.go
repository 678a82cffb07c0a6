package rtpbridge

import (
	"encoding/binary"
	"errors"
)

// linearCodec is a trivial codec for tests: 16-bit big-endian PCM (L16)
// at rate, one channel, or with narrow set the top 8 bits of each sample
// (to keep 48 kHz-clock frames of 60 ms within a packet). Conceal repeats the last frame at half level
// (a crude PLC) and counts FEC uses.
type linearCodec struct {
	rate   int
	last   []int16
	fec    int
	plc    int
	narrow bool
}

func (c *linearCodec) SampleRate() int { return c.rate }

func (c *linearCodec) Decode(p []byte, pcm []int16) (int, error) {
	if c.narrow {
		n := min(len(p), len(pcm))
		for i := 0; i < n; i++ {
			pcm[i] = int16(int8(p[i])) << 8
		}
		c.last = append(c.last[:0], pcm[:n]...)
		return n, nil
	}
	if len(p)%2 != 0 {
		return 0, errors.New("odd l16 payload")
	}
	n := min(len(p)/2, len(pcm))
	for i := 0; i < n; i++ {
		pcm[i] = int16(binary.BigEndian.Uint16(p[2*i:]))
	}
	c.last = append(c.last[:0], pcm[:n]...)
	return n, nil
}

func (c *linearCodec) Conceal(next []byte, pcm []int16) (int, error) {
	if next != nil {
		c.fec++
	} else {
		c.plc++
	}
	for i := range pcm {
		if len(c.last) > 0 {
			pcm[i] = c.last[i%len(c.last)] / 2
		} else {
			pcm[i] = 0
		}
	}
	return len(pcm), nil
}

func (c *linearCodec) Encode(pcm []int16, out []byte) (int, error) {
	if c.narrow {
		if len(out) < len(pcm) {
			return 0, errors.New("short buffer")
		}
		for i, v := range pcm {
			out[i] = byte(v >> 8)
		}
		return len(pcm), nil
	}
	if len(out) < 2*len(pcm) {
		return 0, errors.New("short buffer")
	}
	for i, v := range pcm {
		binary.BigEndian.PutUint16(out[2*i:], uint16(v))
	}
	return 2 * len(pcm), nil
}

// linearResampler converts between integer-ratio rates: up by linear
// interpolation, down by averaging (good enough for tones well below the
// lower Nyquist rate).
type linearResampler struct {
	from, to int
	prev     int16
}

func (r *linearResampler) Resample(in, out []int16) int {
	n := 0
	if r.to > r.from {
		k := r.to / r.from
		for _, x := range in {
			for j := 1; j <= k && n < len(out); j++ {
				out[n] = int16(int(r.prev) + (int(x)-int(r.prev))*j/k)
				n++
			}
			r.prev = x
		}
		return n
	}
	k := r.from / r.to
	for i := 0; i+k <= len(in) && n < len(out); i += k {
		s := 0
		for _, x := range in[i : i+k] {
			s += int(x)
		}
		out[n] = int16(s / k)
		n++
	}
	return n
}

// l16 encodes pcm as an L16 payload.
func l16(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.BigEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func pcmOf(p []byte) []int16 {
	out := make([]int16, len(p)/2)
	for i := range out {
		out[i] = int16(binary.BigEndian.Uint16(p[2*i:]))
	}
	return out
}

// l8 encodes pcm as the narrow payload.
func l8(pcm []int16) []byte {
	b := make([]byte, len(pcm))
	for i, v := range pcm {
		b[i] = byte(v >> 8)
	}
	return b
}

func pcmOf8(p []byte) []int16 {
	out := make([]int16, len(p))
	for i := range out {
		out[i] = int16(int8(p[i])) << 8
	}
	return out
}
