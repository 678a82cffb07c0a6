package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// rfc3526Group14 is the 2048-bit MODP prime of RFC 3526 section 3, a safe
// prime with p mod 8 = 7, mod 5 = 4, mod 24 = 23 (every g in 2..7 passes
// the residue test): it exercises the slow path of ParseDHConfig.
const rfc3526Group14 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D" +
	"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
	"83655D23DCA3AD961C62F356208552BB9ED529077096966D" +
	"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
	"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9" +
	"DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
	"15728E5A8AACAA68FFFFFFFFFFFFFFFF"

func TestParseDHConfig(t *testing.T) {
	hexBytes := func(s string) []byte {
		b, err := hex.DecodeString(strings.TrimSpace(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	notSafe, err := os.ReadFile("testdata/prime_not_safe.hex")
	if err != nil {
		t.Fatal(err)
	}
	plus := func(d int64) []byte {
		return new(big.Int).Add(new(big.Int).SetBytes(TelegramPrime), big.NewInt(d)).Bytes()
	}
	short := new(big.Int).Rsh(new(big.Int).SetBytes(TelegramPrime), 1).Bytes()
	long := new(big.Int).Lsh(new(big.Int).SetBytes(TelegramPrime), 1).Bytes()
	padded := append([]byte{0}, TelegramPrime...)

	// TelegramPrime mod 8 = 3, mod 3 = 2, mod 5 = 3, mod 24 = 11, mod 7 = 6.
	tests := []struct {
		name string
		g    int
		p    []byte
		want error
	}{
		{"telegram g=3", 3, TelegramPrime, nil},
		{"telegram g=4", 4, TelegramPrime, nil},
		{"telegram g=7", 7, TelegramPrime, nil},
		{"telegram g=2 needs p mod 8 = 7", 2, TelegramPrime, ErrBadG},
		{"telegram g=5 needs p mod 5 in {1,4}", 5, TelegramPrime, ErrBadG},
		{"telegram g=6 needs p mod 24 in {19,23}", 6, TelegramPrime, ErrBadG},
		{"g=1", 1, TelegramPrime, ErrBadG},
		{"g=8", 8, TelegramPrime, ErrBadG},
		{"g=0", 0, TelegramPrime, ErrBadG},
		{"leading zero byte is still 2048 bits", 3, padded, nil},
		{"2047-bit p", 3, short, ErrBadPrime},
		{"2049-bit p", 4, long, ErrBadPrime},
		{"empty p", 3, nil, ErrBadPrime},
		{"composite p passing the residue test", 3, plus(6), ErrBadPrime},
		{"prime but not safe", 3, hexBytes(string(notSafe)), ErrBadPrime},
		{"RFC 3526 group 14, g=2", 2, hexBytes(rfc3526Group14), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseDHConfig(tt.g, tt.p)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseDHConfig: %v, want %v", err, tt.want)
			}
			if err == nil && (cfg.G != tt.g || cfg.P.Cmp(new(big.Int).SetBytes(tt.p)) != 0) {
				t.Fatalf("config = %+v", cfg)
			}
		})
	}
}

// TestResidueAcceptingBranches covers g = 2, 5 and 6 accepting, which
// TelegramPrime cannot (the slow path above runs once to keep tests fast).
func TestResidueAcceptingBranches(t *testing.T) {
	p, _ := new(big.Int).SetString(rfc3526Group14, 16)
	for g := 2; g <= 7; g++ {
		if !residueOK(g, p) {
			t.Errorf("g=%d rejected for RFC 3526 group 14", g)
		}
	}
	// Small numbers with the listed residues: p mod 24 = 19 (g=6), p mod 5
	// = 1 (g=5), p mod 7 = 3 (g=7); and one failing residue each.
	for _, tt := range []struct {
		g  int
		p  int64
		ok bool
	}{{6, 19, true}, {6, 23, true}, {6, 7, false}, {5, 11, true}, {5, 19, true}, {5, 7, false},
		{7, 3, true}, {7, 5, true}, {7, 13, true}, {7, 11, false}, {2, 23, true}, {2, 11, false}, {3, 11, true}, {3, 7, false}} {
		if got := residueOK(tt.g, big.NewInt(tt.p)); got != tt.ok {
			t.Errorf("residueOK(%d, %d) = %v", tt.g, tt.p, got)
		}
	}
}

func TestCheckPublic(t *testing.T) {
	p := new(big.Int).SetBytes(TelegramPrime)
	pow := func(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }
	add := func(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }
	sub := func(a, b *big.Int) *big.Int { return new(big.Int).Sub(a, b) }
	one := big.NewInt(1)
	margin := pow(1984)
	tests := []struct {
		name string
		gx   *big.Int
		ok   bool
	}{
		{"nil", nil, false},
		{"negative", big.NewInt(-5), false},
		{"zero", big.NewInt(0), false},
		{"one", one, false},
		{"two (passes 1 < g_x only)", big.NewInt(2), false},
		{"2^1984 - 1", sub(margin, one), false},
		{"2^1984", margin, true},
		{"2^2000", pow(2000), true},
		{"p - 2^1984", sub(p, margin), true},
		{"p - 2^1984 + 1", add(sub(p, margin), one), false},
		{"p - 2", sub(p, big.NewInt(2)), false},
		{"p - 1", sub(p, one), false},
		{"p", p, false},
		{"p + 1", add(p, one), false},
		{"2^2048", pow(2048), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPublic(tt.gx, p)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadPublic)) {
				t.Fatalf("CheckPublic: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if err := CheckPublic(margin, nil); !errors.Is(err, ErrBadPublic) {
		t.Errorf("nil p: %v", err)
	}
}

func TestNewExponent(t *testing.T) {
	server := bytes.Repeat([]byte{0x5a}, 256)
	if _, err := NewExponent(bytes.NewReader(make([]byte, 256)), server[:255]); !errors.Is(err, ErrBadExponent) {
		t.Errorf("short server random: %v", err)
	}
	if _, err := NewExponent(bytes.NewReader(make([]byte, 100)), server); err == nil {
		t.Error("short reader accepted")
	}
	if _, err := NewExponent(iotest.ErrReader(errors.New("boom")), server); err == nil {
		t.Error("reader error ignored")
	}
	if _, err := NewExponent(bytes.NewReader(server), server); !errors.Is(err, ErrBadExponent) {
		t.Errorf("zero exponent: %v", err)
	}
	a, err := NewExponent(bytes.NewReader(make([]byte, 256)), server)
	if err != nil || a.Cmp(new(big.Int).SetBytes(server)) != 0 {
		t.Errorf("zero random XOR server random = %x, %v", a, err)
	}
}

func TestSharedKeyRejectsBadPublic(t *testing.T) {
	cfg, err := ParseDHConfig(3, TelegramPrime)
	if err != nil {
		t.Fatal(err)
	}
	a := big.NewInt(12345)
	for _, peer := range [][]byte{nil, {1}, {2}, new(big.Int).Sub(cfg.P, big.NewInt(1)).Bytes(), TelegramPrime} {
		if _, err := SharedKey(cfg, peer, a); !errors.Is(err, ErrBadPublic) {
			t.Errorf("SharedKey(%x…): %v, want ErrBadPublic", peer[:min(len(peer), 4)], err)
		}
	}
}

func TestPublicIsMinimal(t *testing.T) {
	cfg, err := ParseDHConfig(3, TelegramPrime)
	if err != nil {
		t.Fatal(err)
	}
	// 3^1 = 3: one byte, no padding.
	if got := Public(cfg, big.NewInt(1)); !bytes.Equal(got, []byte{3}) {
		t.Errorf("Public(a=1) = %x", got)
	}
}
