package emu

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"

	"github.com/gotd/td/tg"
)

// telegramPrimeHex is the 2048-bit safe prime Telegram hands out in
// messages.getDhConfig and in the 2FA SRP algorithm (tdlib
// td/telegram/DhCache.cpp hard-codes it as the known-good prime).
const telegramPrimeHex = "" +
	"c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f" +
	"48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c37" +
	"20fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64" +
	"2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4" +
	"a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754" +
	"fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4" +
	"e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f" +
	"0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b"

// dhG is the generator for the prime above (p mod 3 == 2 holds).
const dhG = 3

var telegramPrime = func() []byte {
	b, err := hex.DecodeString(telegramPrimeHex)
	if err != nil {
		panic(err)
	}
	return b
}()

// dhConfig is what messages.getDhConfig serves.
type dhConfig struct {
	version int
	p       []byte
}

func newDHConfig() dhConfig {
	return dhConfig{version: 1, p: telegramPrime}
}

// srpVerifier is the server's record of a 2FA password: the salts and the
// verifier v = g^x mod p, x = PH2(password, salt1, salt2)
// (core.telegram.org/api/srp). The password itself is not kept.
type srpVerifier struct {
	salt1, salt2 []byte
	v            *big.Int
}

// srpSession is one account.getPassword answer awaiting auth.checkPassword.
type srpSession struct {
	b     *big.Int
	gb    []byte // B, 256 bytes
	srpID int64
}

func sha(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func pad256(x *big.Int) []byte {
	out := make([]byte, 256)
	x.FillBytes(out)
	return out
}

// passwordX computes x = PH2(password, salt1, salt2) where
// SH(data, salt) = H(salt|data|salt), PH1 = SH(SH(password, salt1), salt2),
// PH2 = SH(pbkdf2(sha512, PH1, salt1, 100000), salt2).
func passwordX(password string, salt1, salt2 []byte) (*big.Int, error) {
	sh := func(data, salt []byte) []byte { return sha(salt, data, salt) }
	ph1 := sh(sh([]byte(password), salt1), salt2)
	k, err := pbkdf2.Key(sha512.New, string(ph1), salt1, 100000, 64)
	if err != nil {
		return nil, fmt.Errorf("emu: pbkdf2: %w", err)
	}
	return new(big.Int).SetBytes(sh(k, salt2)), nil
}

func newSRPVerifier(r io.Reader, password string) (*srpVerifier, error) {
	salt1 := make([]byte, 40)
	salt2 := make([]byte, 16)
	if _, err := io.ReadFull(r, salt1); err != nil {
		return nil, fmt.Errorf("emu: random: %w", err)
	}
	if _, err := io.ReadFull(r, salt2); err != nil {
		return nil, fmt.Errorf("emu: random: %w", err)
	}
	x, err := passwordX(password, salt1, salt2)
	if err != nil {
		return nil, err
	}
	p := new(big.Int).SetBytes(telegramPrime)
	v := new(big.Int).Exp(big.NewInt(dhG), x, p)
	return &srpVerifier{salt1: salt1, salt2: salt2, v: v}, nil
}

func (s *srpVerifier) algo() *tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
	return &tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow{
		Salt1: s.salt1, Salt2: s.salt2, G: dhG, P: telegramPrime,
	}
}

// srpK is k = H(p | pad(g)).
func srpK() *big.Int {
	return new(big.Int).SetBytes(sha(telegramPrime, pad256(big.NewInt(dhG))))
}

// begin picks the server's secret b and B = (k*v + g^b) mod p.
func (s *srpVerifier) begin(r io.Reader) (*srpSession, error) {
	p := new(big.Int).SetBytes(telegramPrime)
	buf := make([]byte, 256)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("emu: random: %w", err)
	}
	b := new(big.Int).SetBytes(buf)
	gb := new(big.Int).Exp(big.NewInt(dhG), b, p)
	kv := new(big.Int).Mul(srpK(), s.v)
	B := kv.Add(kv, gb).Mod(kv, p)
	id, err := randomInt63(r)
	if err != nil {
		return nil, err
	}
	return &srpSession{srpID: id, b: b, gb: pad256(B)}, nil
}

// check verifies the client's A and M1 against session ss:
// u = H(A|B), S = (A * v^u)^b mod p, K = H(S),
// M1 = H(H(p) xor H(g) | H(salt1) | H(salt2) | A | B | K).
func (s *srpVerifier) check(ss *srpSession, a, m1 []byte) bool {
	p := new(big.Int).SetBytes(telegramPrime)
	A := new(big.Int).SetBytes(a)
	if A.Sign() <= 0 || A.Cmp(p) >= 0 || len(a) > 256 {
		return false
	}
	aPad := pad256(A)
	u := new(big.Int).SetBytes(sha(aPad, ss.gb))
	if u.Sign() == 0 {
		return false
	}
	vu := new(big.Int).Exp(s.v, u, p)
	base := vu.Mul(vu, A).Mod(vu, p)
	S := new(big.Int).Exp(base, ss.b, p)
	K := sha(pad256(S))
	hp := sha(telegramPrime)
	hg := sha(pad256(big.NewInt(dhG)))
	x := make([]byte, len(hp))
	for i := range x {
		x[i] = hp[i] ^ hg[i]
	}
	want := sha(x, sha(s.salt1), sha(s.salt2), aPad, ss.gb, K)
	return subtle.ConstantTimeCompare(want, m1) == 1
}
