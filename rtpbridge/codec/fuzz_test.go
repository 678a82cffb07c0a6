package codec

import (
	"testing"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// Payloads come from the network: no input may crash a decoder. These fuzz
// targets feed arbitrary bytes to Decode and to Conceal (as the next
// packet, for Opus FEC).

func fuzzSeeds(f *testing.F, enc Encoder) {
	rate := enc.SampleRate()
	pcm := make([]int16, rate/50)
	audiotest.Tone(pcm, 1000, rate, 0)
	out := make([]byte, 1500)
	n, err := enc.Encode(pcm, out)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(out[:n])
	f.Add([]byte{0})
	f.Add([]byte{0xFF, 0xFF, 0xFF})
	f.Add(make([]byte, 1500))
}

func fuzzDecoder(f *testing.F, newDec func() Decoder) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		dec := newDec()
		pcm := make([]int16, 5760*2) // 120 ms at 48 kHz, 2 samples per G.722 octet
		if n, err := dec.Decode(payload, pcm); err == nil && (n < 0 || n > len(pcm)) {
			t.Fatalf("decode wrote %d samples", n)
		}
		frame := pcm[:dec.SampleRate()/50]
		if n, err := dec.Conceal(payload, frame); err == nil && n != len(frame) {
			t.Fatalf("conceal wrote %d of %d", n, len(frame))
		}
		if _, err := dec.Decode(payload, pcm); err == nil {
			// A decoder stays usable after any input.
			if _, err := dec.Conceal(nil, frame); err != nil {
				t.Fatalf("conceal after decode: %v", err)
			}
		}
	})
}

func FuzzDecodePCMU(f *testing.F) {
	fuzzSeeds(f, NewPCMUEncoder())
	fuzzDecoder(f, NewPCMUDecoder)
}

func FuzzDecodePCMA(f *testing.F) {
	fuzzSeeds(f, NewPCMAEncoder())
	fuzzDecoder(f, NewPCMADecoder)
}

func FuzzDecodeG722(f *testing.F) {
	fuzzSeeds(f, NewG722Encoder())
	fuzzDecoder(f, func() Decoder { return NewG722Decoder() })
}

func FuzzDecodeOpus(f *testing.F) {
	enc, err := NewOpusEncoder(Options{})
	if err != nil {
		f.Fatal(err)
	}
	fuzzSeeds(f, enc)
	// TOC codes 0..3 (RFC 6716 §3.2): one, two equal, two sized and an
	// arbitrary number of frames, with padding and VBR flags.
	f.Add([]byte{0x78, 0x01, 0x02})
	f.Add([]byte{0x79, 0xAA, 0xBB})
	f.Add([]byte{0x7A, 0xFC, 0xFF, 0x00})
	f.Add([]byte{0x7B, 0xC3, 0xFF, 0xFF, 0x10})
	f.Add([]byte{0x03, 0x30})
	fuzzDecoder(f, func() Decoder {
		d, err := NewOpusDecoder(48000)
		if err != nil {
			panic(err)
		}
		return d
	})
}
