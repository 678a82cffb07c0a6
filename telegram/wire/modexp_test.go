package wire

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"
)

// TestExpIntoMatches: expInto (GMP's mpz_powm_sec in a cgo build,
// math/big otherwise) gives math/big's b^e mod m, left-padded, for random
// full-size keys of Telegram's group and RFC 3526's, for the bases and
// exponents at the edges (0, 1, p-1, a base above p, exponent 1, all
// ones), for the inputs the GMP path hands to math/big (even modulus,
// zero exponent) and for an output wider than the modulus.
func TestExpIntoMatches(t *testing.T) {
	tg := new(big.Int).SetBytes(TelegramPrime)
	rfc, _ := new(big.Int).SetString(rfc3526Group14, 16)
	rnd := func(bits int) *big.Int {
		v, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	one := big.NewInt(1)
	allOnes := new(big.Int).Sub(new(big.Int).Lsh(one, 2048), one)
	type tc struct{ b, e, m *big.Int }
	var cases []tc
	for _, p := range []*big.Int{tg, rfc} {
		for range 8 {
			cases = append(cases, tc{new(big.Int).Mod(rnd(2048), p), rnd(2048), p})
		}
		pm1 := new(big.Int).Sub(p, one)
		cases = append(cases,
			tc{big.NewInt(0), rnd(2048), p},
			tc{big.NewInt(1), rnd(2048), p},
			tc{pm1, rnd(2048), p},
			tc{pm1, big.NewInt(2), p},
			tc{new(big.Int).Add(p, big.NewInt(5)), rnd(2048), p}, // base above p
			tc{rnd(2047), big.NewInt(1), p},
			tc{rnd(2047), allOnes, p},
			tc{rnd(2047), big.NewInt(0), p}, // zero exponent: math/big
		)
	}
	cases = append(cases,
		tc{big.NewInt(7), big.NewInt(13), big.NewInt(101)},
		tc{rnd(300), rnd(300), new(big.Int).Lsh(rnd(255), 1)}, // even modulus: math/big
	)
	for i, c := range cases {
		size := (c.m.BitLen() + 7) / 8
		for _, width := range []int{size, size + 3} {
			want := make([]byte, width)
			new(big.Int).Exp(c.b, c.e, c.m).FillBytes(want)
			got := make([]byte, width)
			for j := range got {
				got[j] = 0xee // left padding must be written
			}
			expInto(got, c.b, c.e, c.m)
			if !bytes.Equal(got, want) {
				t.Errorf("case %d, width %d (GMP build %v): b^e mod m differs from math/big\n got %x\nwant %x", i, width, modexpGMP, got, want)
			}
		}
	}
}
