package codec

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(name) == ".gz" {
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(z); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func readS16(t testing.TB, name string) []int16 {
	b := readTestdata(t, name)
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

// TestG711Vectors checks every 16-bit sample and every code against
// spandsp's G.711 (testdata/README.md).
func TestG711Vectors(t *testing.T) {
	all := make([]int16, 65536)
	for i := range all {
		all[i] = int16(uint16(i))
	}
	for _, c := range []struct {
		name string
		enc  Encoder
		want string
	}{{"PCMU", NewPCMUEncoder(), "pcmu_enc.bin.gz"}, {"PCMA", NewPCMAEncoder(), "pcma_enc.bin.gz"}} {
		want := readTestdata(t, c.want)
		got := make([]byte, len(all))
		if n, err := c.enc.Encode(all, got); err != nil || n != len(all) {
			t.Fatalf("%s encode: %d, %v", c.name, n, err)
		}
		bad := 0
		for i := range got {
			w := want[i]
			if c.name == "PCMU" && all[i] < 0 {
				// spandsp takes the two's complement magnitude of a
				// negative sample, G.191 (and we) the one's complement:
				// our code for x is spandsp's for x+1, and -1 is "-0".
				if all[i] == -1 {
					w = 0x7F
				} else {
					w = want[uint16(all[i]+1)]
				}
			}
			if got[i] != w {
				if bad < 5 {
					t.Errorf("%s encode(%d) = %#02x, want %#02x", c.name, all[i], got[i], w)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of 65536 samples differ", c.name, bad)
		}
	}

	f := readTestdata(t, "g711_decode.txt")
	sc := bufio.NewScanner(bytes.NewReader(f))
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	u, a := make([]int16, 256), make([]int16, 256)
	if _, err := NewPCMUDecoder().Decode(codes, u); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPCMADecoder().Decode(codes, a); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("#")) {
			continue
		}
		var c, wu, wa int
		if _, err := fmt.Sscan(sc.Text(), &c, &wu, &wa); err != nil {
			t.Fatal(err)
		}
		if int(u[c]) != wu || int(a[c]) != wa {
			t.Errorf("code %#02x: ulaw %d alaw %d, want %d %d", c, u[c], a[c], wu, wa)
		}
		lines++
	}
	if lines != 256 {
		t.Fatalf("%d vectors", lines)
	}
}

// TestG711RoundTrip: decoding a code and encoding the result gives the code
// back (except µ-law's negative zero, 0x7F, which decodes to 0 = 0xFF).
func TestG711RoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  Encoder
		dec  Decoder
	}{{"PCMU", NewPCMUEncoder(), NewPCMUDecoder()}, {"PCMA", NewPCMAEncoder(), NewPCMADecoder()}} {
		codes := make([]byte, 256)
		for i := range codes {
			codes[i] = byte(i)
		}
		pcm := make([]int16, 256)
		back := make([]byte, 256)
		c.dec.Decode(codes, pcm)
		c.enc.Encode(pcm, back)
		for i := range codes {
			if back[i] != codes[i] && !(c.name == "PCMU" && i == 0x7F) {
				t.Errorf("%s: code %#02x -> %d -> %#02x", c.name, i, pcm[i], back[i])
			}
		}
	}
}

// TestG722Vectors checks the encoder and decoder bit for bit against
// spandsp's G.722 on a sweep with noise and clipping, and the decoder on
// random octets.
func TestG722Vectors(t *testing.T) {
	in := readS16(t, "g722_in.s16")
	wantEnc := readTestdata(t, "g722_enc.bin")
	wantDec := readS16(t, "g722_dec.s16")

	enc := NewG722Encoder()
	got := make([]byte, len(in)/2)
	// Encode in 20 ms frames to exercise state across calls.
	for off := 0; off < len(in); off += 320 {
		end := min(off+320, len(in))
		if _, err := enc.Encode(in[off:end], got[off/2:]); err != nil {
			t.Fatal(err)
		}
	}
	if i := firstDiff(got, wantEnc); i >= 0 {
		t.Fatalf("encode differs first at octet %d: %#02x, want %#02x", i, got[i], wantEnc[i])
	}

	check := func(name string, payload []byte, want []int16) {
		dec := NewG722Decoder()
		pcm := make([]int16, 2*len(payload))
		for off := 0; off < len(payload); off += 160 {
			end := min(off+160, len(payload))
			if n, err := dec.Decode(payload[off:end], pcm[2*off:]); err != nil || n != 2*(end-off) {
				t.Fatalf("%s: decode %d, %v", name, n, err)
			}
		}
		wraps := 0
		for i := range pcm {
			if pcm[i] != want[i] {
				// spandsp truncates the receive QMF's output to 16 bits
				// (a clipped peak wraps to the other sign); we saturate.
				if (pcm[i] == 32767 && want[i] < 0) || (pcm[i] == -32768 && want[i] >= 0) {
					wraps++
					continue
				}
				t.Fatalf("%s: sample %d = %d, want %d", name, i, pcm[i], want[i])
			}
		}
		if wraps > len(pcm)/20 { // the sweep clips hard near its end
			t.Fatalf("%s: %d samples saturated where spandsp wrapped", name, wraps)
		}
	}
	check("sweep", wantEnc, wantDec)
	check("random", readTestdata(t, "g722_rand.bin"), readS16(t, "g722_rand_dec.s16"))
}

func firstDiff[T comparable](a, b []T) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(b) != len(a) {
		return len(a)
	}
	return -1
}
