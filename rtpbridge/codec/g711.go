package codec

// G.711 (ITU-T Rec. G.711, 11/88) µ-law and A-law, table driven.
//
// The tables are built once from the reference algorithm: the segment
// (chord) search and quantisation of G.711 Tables 1a/2a, with negative
// samples handled as in the ITU-T G.191 software tools library (g711.c,
// one's complement magnitudes). µ-law codes a 14-bit magnitude
// (the two least significant bits of a 16-bit sample never matter), A-law a
// 13-bit one, so the encode tables are indexed by the sample shifted right
// by 2 (µ-law, 16384 entries) or 3 (A-law, 8192 entries); the decode tables
// have 256 entries. testdata/g711.txt holds known-answer vectors from an
// independent implementation.

var (
	ulawEncode [1 << 14]byte
	alawEncode [1 << 13]byte
	ulawDecode [256]int16
	alawDecode [256]int16
)

func init() {
	for i := range ulawEncode {
		ulawEncode[i] = linearToULaw(int16(uint16(i << 2)))
	}
	for i := range alawEncode {
		alawEncode[i] = linearToALaw(int16(uint16(i << 3)))
	}
	for i := range 256 {
		ulawDecode[i] = ulawToLinear(byte(i))
		alawDecode[i] = alawToLinear(byte(i))
	}
}

// segment returns the first segment whose end is >= v, or 8 when v is above
// all of them.
func segment(v int, ends *[8]int) int {
	for s, e := range ends {
		if v <= e {
			return s
		}
	}
	return 8
}

var (
	ulawSegEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	alawSegEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

// linearToULaw is G.711 µ-law compression of a 16-bit sample: 14-bit
// magnitude, bias 33, clip at 8159, eight segments of 16 steps, all bits
// inverted on the line.
func linearToULaw(x int16) byte {
	// The magnitude of a negative sample is its one's complement, as in
	// G.191's ulaw_compress, so x and -x-1 get mirror codes (-1 is "-0").
	v := int(x)
	mask := byte(0xFF)
	if v < 0 {
		v = ^v
		mask = 0x7F
	}
	v >>= 2
	if v > 8159 {
		v = 8159
	}
	v += 0x84 >> 2
	seg := segment(v, &ulawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	return (byte(seg<<4) | byte((v>>(seg+1))&0xF)) ^ mask
}

// ulawToLinear expands a µ-law code to a 16-bit sample.
func ulawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// linearToALaw is G.711 A-law compression of a 16-bit sample: 13-bit
// magnitude (one's complement for negatives), eight segments of 16 steps,
// even bits inverted on the line (XOR 0x55).
func linearToALaw(x int16) byte {
	v := int(x) >> 3
	var mask byte
	if v >= 0 {
		mask = 0xD5
	} else {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &alawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte((v >> 1) & 0xF)
	} else {
		a |= byte((v >> seg) & 0xF)
	}
	return a ^ mask
}

// alawToLinear expands an A-law code to a 16-bit sample.
func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// g711Encoder encodes one byte per sample through a table.
type g711Encoder struct {
	table []byte
	shift uint
}

// NewPCMUEncoder returns a G.711 µ-law encoder (8 kHz).
func NewPCMUEncoder() Encoder { return &g711Encoder{table: ulawEncode[:], shift: 2} }

// NewPCMAEncoder returns a G.711 A-law encoder (8 kHz).
func NewPCMAEncoder() Encoder { return &g711Encoder{table: alawEncode[:], shift: 3} }

func (e *g711Encoder) SampleRate() int { return 8000 }

func (e *g711Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(out) < len(pcm) {
		return 0, ErrShortBuffer
	}
	out = out[:len(pcm)]
	t := e.table
	for i, x := range pcm {
		out[i] = t[uint16(x)>>e.shift]
	}
	return len(pcm), nil
}

// g711Decoder expands one byte per sample and conceals losses.
type g711Decoder struct {
	table *[256]int16
	plc   plc
}

// NewPCMUDecoder returns a G.711 µ-law decoder (8 kHz) with packet loss
// concealment.
func NewPCMUDecoder() Decoder { return newG711Decoder(&ulawDecode) }

// NewPCMADecoder returns a G.711 A-law decoder (8 kHz) with packet loss
// concealment.
func NewPCMADecoder() Decoder { return newG711Decoder(&alawDecode) }

func newG711Decoder(t *[256]int16) *g711Decoder {
	d := &g711Decoder{table: t}
	d.plc.init(8000)
	return d
}

func (d *g711Decoder) SampleRate() int { return 8000 }

func (d *g711Decoder) Decode(payload []byte, pcm []int16) (int, error) {
	if len(payload) == 0 {
		return 0, ErrEmptyPayload
	}
	if len(pcm) < len(payload) {
		return 0, ErrShortBuffer
	}
	pcm = pcm[:len(payload)]
	t := d.table
	for i, b := range payload {
		pcm[i] = t[b]
	}
	d.plc.good(pcm)
	return len(pcm), nil
}

// Conceal ignores next: G.711 has no redundancy to recover from.
func (d *g711Decoder) Conceal(_ []byte, pcm []int16) (int, error) {
	d.plc.conceal(pcm)
	return len(pcm), nil
}
