package wire

import (
	"errors"
	"fmt"
	"io"
	"math/big"
)

// TelegramPrime is the 2048-bit safe prime Telegram's getDhConfig returns
// (with g = 3). It is tdlib td/telegram/DhCache.cpp built_in_good_prime and
// tdesktop mtproto_dh_utils.cpp GoodPrime; both clients skip the primality
// test for it. Exported so the emulated network serves the same group.
var TelegramPrime = []byte{
	0xc7, 0x1c, 0xae, 0xb9, 0xc6, 0xb1, 0xc9, 0x04, 0x8e, 0x6c, 0x52, 0x2f, 0x70, 0xf1, 0x3f, 0x73,
	0x98, 0x0d, 0x40, 0x23, 0x8e, 0x3e, 0x21, 0xc1, 0x49, 0x34, 0xd0, 0x37, 0x56, 0x3d, 0x93, 0x0f,
	0x48, 0x19, 0x8a, 0x0a, 0xa7, 0xc1, 0x40, 0x58, 0x22, 0x94, 0x93, 0xd2, 0x25, 0x30, 0xf4, 0xdb,
	0xfa, 0x33, 0x6f, 0x6e, 0x0a, 0xc9, 0x25, 0x13, 0x95, 0x43, 0xae, 0xd4, 0x4c, 0xce, 0x7c, 0x37,
	0x20, 0xfd, 0x51, 0xf6, 0x94, 0x58, 0x70, 0x5a, 0xc6, 0x8c, 0xd4, 0xfe, 0x6b, 0x6b, 0x13, 0xab,
	0xdc, 0x97, 0x46, 0x51, 0x29, 0x69, 0x32, 0x84, 0x54, 0xf1, 0x8f, 0xaf, 0x8c, 0x59, 0x5f, 0x64,
	0x24, 0x77, 0xfe, 0x96, 0xbb, 0x2a, 0x94, 0x1d, 0x5b, 0xcd, 0x1d, 0x4a, 0xc8, 0xcc, 0x49, 0x88,
	0x07, 0x08, 0xfa, 0x9b, 0x37, 0x8e, 0x3c, 0x4f, 0x3a, 0x90, 0x60, 0xbe, 0xe6, 0x7c, 0xf9, 0xa4,
	0xa4, 0xa6, 0x95, 0x81, 0x10, 0x51, 0x90, 0x7e, 0x16, 0x27, 0x53, 0xb5, 0x6b, 0x0f, 0x6b, 0x41,
	0x0d, 0xba, 0x74, 0xd8, 0xa8, 0x4b, 0x2a, 0x14, 0xb3, 0x14, 0x4e, 0x0e, 0xf1, 0x28, 0x47, 0x54,
	0xfd, 0x17, 0xed, 0x95, 0x0d, 0x59, 0x65, 0xb4, 0xb9, 0xdd, 0x46, 0x58, 0x2d, 0xb1, 0x17, 0x8d,
	0x16, 0x9c, 0x6b, 0xc4, 0x65, 0xb0, 0xd6, 0xff, 0x9c, 0xa3, 0x92, 0x8f, 0xef, 0x5b, 0x9a, 0xe4,
	0xe4, 0x18, 0xfc, 0x15, 0xe8, 0x3e, 0xbe, 0xa0, 0xf8, 0x7f, 0xa9, 0xff, 0x5e, 0xed, 0x70, 0x05,
	0x0d, 0xed, 0x28, 0x49, 0xf4, 0x7b, 0xf9, 0x59, 0xd9, 0x56, 0x85, 0x0c, 0xe9, 0x29, 0x85, 0x1f,
	0x0d, 0x81, 0x15, 0xf6, 0x35, 0xb1, 0x05, 0xee, 0x2e, 0x4e, 0x15, 0xd0, 0x4b, 0x24, 0x54, 0xbf,
	0x6f, 0x4f, 0xad, 0xf0, 0x34, 0xb1, 0x04, 0x03, 0x11, 0x9c, 0xd8, 0xe3, 0xb9, 0x2f, 0xcc, 0x5b,
}

// telegramPrime is TelegramPrime as a number, for the fast path of
// ParseDHConfig.
var telegramPrime = new(big.Int).SetBytes(TelegramPrime)

// Errors returned by the DH checks. They are wrapped with details; test with
// errors.Is.
var (
	ErrBadPrime    = errors.New("wire: bad DH prime")
	ErrBadG        = errors.New("wire: bad DH generator")
	ErrBadPublic   = errors.New("wire: DH public value out of range")
	ErrBadExponent = errors.New("wire: bad DH exponent input")
)

// primalityRounds is the number of Miller-Rabin rounds with random bases
// for primes other than TelegramPrime; math/big adds a Baillie-PSW test on
// top, so a server-chosen composite passes with probability below 4^-10
// even before Baillie-PSW.
const primalityRounds = 10

// DHConfig is a validated Diffie-Hellman group from messages.getDhConfig.
type DHConfig struct {
	G int
	P *big.Int
}

// ParseDHConfig validates a group as tdlib td/mtproto/DhHandshake.cpp
// check_config does: p is a 2048-bit number, g is in 2..7 and a quadratic
// residue mod p (tested by p mod 4g per quadratic reciprocity), and both p
// and (p-1)/2 are prime. As in tdlib the residue test runs first and the
// primality test is skipped for TelegramPrime (DhCache::is_good_prime).
// Testing another prime costs tens of milliseconds; callers cache configs by
// getDhConfig version.
func ParseDHConfig(g int, p []byte) (DHConfig, error) {
	prime := new(big.Int).SetBytes(p)
	if prime.BitLen() != 2048 {
		return DHConfig{}, fmt.Errorf("%w: %d bits, want 2048", ErrBadPrime, prime.BitLen())
	}
	if !residueOK(g, prime) {
		return DHConfig{}, fmt.Errorf("%w: g=%d is not a quadratic residue mod p", ErrBadG, g)
	}
	if prime.Cmp(telegramPrime) != 0 {
		if !prime.ProbablyPrime(primalityRounds) {
			return DHConfig{}, fmt.Errorf("%w: p is not prime", ErrBadPrime)
		}
		half := new(big.Int).Rsh(prime, 1) // (p-1)/2 for odd p
		if !half.ProbablyPrime(primalityRounds) {
			return DHConfig{}, fmt.Errorf("%w: (p-1)/2 is not prime", ErrBadPrime)
		}
	}
	return DHConfig{G: g, P: prime}, nil
}

// residueOK is the table of tdlib check_config: g generates the subgroup of
// order (p-1)/2 iff it is a quadratic residue, which for g in 2..7 reduces
// to a condition on p mod 4g.
func residueOK(g int, p *big.Int) bool {
	mod := func(m int64) int64 {
		return new(big.Int).Mod(p, big.NewInt(m)).Int64()
	}
	switch g {
	case 2:
		return mod(8) == 7
	case 3:
		return mod(3) == 2
	case 4:
		return true
	case 5:
		r := mod(5)
		return r == 1 || r == 4
	case 6:
		r := mod(24)
		return r == 19 || r == 23
	case 7:
		r := mod(7)
		return r == 3 || r == 5 || r == 6
	default:
		return false
	}
}

// publicMargin is 2^(2048-64), the distance tdlib keeps public values from 0
// and p (DhHandshake.cpp dh_check).
var publicMargin = new(big.Int).Lsh(big.NewInt(1), 2048-64)

// CheckPublic checks a DH public value g_a or g_b against p: 1 < gx < p-1
// (the mandatory check of core.telegram.org/api/end-to-end) and
// 2^(2048-64) <= gx <= p - 2^(2048-64) (tdlib DhHandshake.cpp dh_check,
// which official clients enforce, so a peer outside it fails the call).
func CheckPublic(gx *big.Int, p *big.Int) error {
	if gx == nil || p == nil {
		return fmt.Errorf("%w: missing value", ErrBadPublic)
	}
	one := big.NewInt(1)
	pMinus1 := new(big.Int).Sub(p, one)
	if gx.Cmp(one) <= 0 || gx.Cmp(pMinus1) >= 0 {
		return fmt.Errorf("%w: not in (1, p-1)", ErrBadPublic)
	}
	upper := new(big.Int).Sub(p, publicMargin)
	if gx.Cmp(publicMargin) < 0 || gx.Cmp(upper) > 0 {
		return fmt.Errorf("%w: not in [2^1984, p-2^1984]", ErrBadPublic)
	}
	return nil
}

// NewExponent returns a secret exponent: 256 bytes from rnd XORed with the
// 256-byte random of messages.getDhConfig, read as a big-endian number
// (core.telegram.org/api/end-to-end/video-calls; tdesktop
// mtproto_dh_utils.cpp CreateModExp mixes the server random the same way).
// Like CreateModExp, the caller must check its own public value with
// CheckPublic and draw again if it fails.
func NewExponent(rnd io.Reader, serverRandom []byte) (*big.Int, error) {
	if len(serverRandom) != 256 {
		return nil, fmt.Errorf("%w: server random is %d bytes, want 256", ErrBadExponent, len(serverRandom))
	}
	var buf [256]byte
	if _, err := io.ReadFull(rnd, buf[:]); err != nil {
		return nil, fmt.Errorf("wire: read random exponent: %w", err)
	}
	for i := range buf {
		buf[i] ^= serverRandom[i]
	}
	a := new(big.Int).SetBytes(buf[:])
	if a.Sign() == 0 {
		return nil, fmt.Errorf("%w: zero exponent", ErrBadExponent)
	}
	return a, nil
}

// Public returns g^a mod p in minimal big-endian form, without left padding.
// That is the form tdlib (DhHandshake.cpp get_g_a / get_g_b: BigNum
// to_binary()) and tdesktop (CreateModExp) put on the wire and hash into
// g_a_hash, so the emoji fingerprint agrees with them. The power is taken
// from a table of powers of g made once per group (fixedbase.go): the same
// number as math/big's Exp, in about a fifth of its time.
func Public(cfg DHConfig, a *big.Int) []byte {
	return powG(cfg.G, cfg.P, a).Bytes()
}

// SharedKey checks the peer's public value with CheckPublic and returns the
// call key g^(ab) mod p as 256 big-endian bytes, left-padded with zeros
// (tdlib DhHandshake::gen_key: to_binary(2048 / 8)).
func SharedKey(cfg DHConfig, peerPublic []byte, a *big.Int) (Key, error) {
	gb := new(big.Int).SetBytes(peerPublic)
	if err := CheckPublic(gb, cfg.P); err != nil {
		return Key{}, err
	}
	var k Key
	expInto(k[:], gb, a, cfg.P)
	return k, nil
}

// expIntoBig is expInto with math/big's Exp (modexp_gmp.go has the fast
// path). FillBytes panics when the value does not fit: b^e mod m < m,
// and callers size out to m.
func expIntoBig(out []byte, b, e, m *big.Int) {
	new(big.Int).Exp(b, e, m).FillBytes(out)
}
