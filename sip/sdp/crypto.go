package sdp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// SRTPPolicy says whether the SIP leg's media must, may or must not be
// encrypted with SRTP keyed by SDES (RFC 4568).
type SRTPPolicy int

const (
	// SRTPOff never uses SRTP: RTP/SAVP offers are rejected and a=crypto
	// lines in RTP/AVP offers are ignored.
	SRTPOff SRTPPolicy = iota
	// SRTPOptional encrypts whenever the peer offers or accepts a=crypto,
	// including "optimistic" RTP/AVP offers that carry crypto lines (what
	// Asterisk calls media_encryption_optimistic), and falls back to RTP.
	SRTPOptional
	// SRTPRequired refuses any stream without SDES keys (488).
	SRTPRequired
)

// String returns the policy's configuration spelling.
func (p SRTPPolicy) String() string {
	switch p {
	case SRTPOff:
		return "off"
	case SRTPOptional:
		return "optional"
	case SRTPRequired:
		return "required"
	}
	return "SRTPPolicy(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText returns String(), so the policy reads well in YAML.
func (p SRTPPolicy) MarshalText() ([]byte, error) {
	if p < SRTPOff || p > SRTPRequired {
		return nil, fmt.Errorf("sdp: unknown SRTP policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText accepts "off", "optional" or "required" (any case).
func (p *SRTPPolicy) UnmarshalText(b []byte) error {
	for _, v := range []SRTPPolicy{SRTPOff, SRTPOptional, SRTPRequired} {
		if strings.EqualFold(string(b), v.String()) {
			*p = v
			return nil
		}
	}
	return fmt.Errorf("sdp: SRTP policy %q: use off, optional or required", clip(string(b)))
}

// Suite is an SDES crypto-suite name as it appears in an a=crypto line.
type Suite string

// The crypto suites the trunk can key (every one pion/srtp implements).
const (
	// RFC 4568 §6.2.1, the mandatory-to-implement suite.
	AESCM128HMACSHA180 Suite = "AES_CM_128_HMAC_SHA1_80"
	// RFC 4568 §6.2.2.
	AESCM128HMACSHA132 Suite = "AES_CM_128_HMAC_SHA1_32"
	// RFC 6188 §7.1.
	AES256CMHMACSHA180 Suite = "AES_256_CM_HMAC_SHA1_80"
	// RFC 6188 §7.1.
	AES256CMHMACSHA132 Suite = "AES_256_CM_HMAC_SHA1_32"
	// RFC 7714 §12 (16-octet tag).
	AEADAES128GCM Suite = "AEAD_AES_128_GCM"
	// RFC 7714 §12 (16-octet tag).
	AEADAES256GCM Suite = "AEAD_AES_256_GCM"
)

// DefaultSuites is the offer order used when Config.Suites is empty: the
// universally deployed 80-bit-tag suite first, then the stronger ones, the
// short-tag variants last.
var DefaultSuites = []Suite{
	AESCM128HMACSHA180, AES256CMHMACSHA180, AEADAES128GCM, AEADAES256GCM,
	AESCM128HMACSHA132, AES256CMHMACSHA132,
}

// Profile maps the suite to pion/srtp's protection profile; ok is false for
// a suite the trunk does not implement.
func (s Suite) Profile() (srtp.ProtectionProfile, bool) {
	switch s {
	case AESCM128HMACSHA180:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case AESCM128HMACSHA132:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	case AES256CMHMACSHA180:
		return srtp.ProtectionProfileAes256CmHmacSha1_80, true
	case AES256CMHMACSHA132:
		return srtp.ProtectionProfileAes256CmHmacSha1_32, true
	case AEADAES128GCM:
		return srtp.ProtectionProfileAeadAes128Gcm, true
	case AEADAES256GCM:
		return srtp.ProtectionProfileAeadAes256Gcm, true
	}
	return 0, false
}

// KeyLen and SaltLen return the master key and master salt sizes in bytes:
// 16+14 for AES_CM_128 (RFC 4568 §6.2), 32+14 for AES_256_CM (RFC 6188 §7.1),
// 16+12 and 32+12 for the GCM suites (RFC 7714 §12). Both are 0 for an
// unknown suite.
func (s Suite) KeyLen() int {
	p, ok := s.Profile()
	if !ok {
		return 0
	}
	n, err := p.KeyLen()
	if err != nil {
		return 0
	}
	return n
}

// SaltLen returns the master salt size in bytes (see KeyLen).
func (s Suite) SaltLen() int {
	p, ok := s.Profile()
	if !ok {
		return 0
	}
	n, err := p.SaltLen()
	if err != nil {
		return 0
	}
	return n
}

// Crypto is one parsed a=crypto attribute (RFC 4568 §4, §9.1):
//
//	a=crypto:<tag> <crypto-suite> inline:<key||salt>[|<lifetime>][|<MKI>:<length>] [<session-params>]
//
// When a line carries several inline keys (RFC 4568 §6.1 allows it, each
// with its own MKI), Key, Salt, Lifetime and MKI describe the first one; the
// others are checked but not kept.
type Crypto struct {
	// Tag identifies the line; the answer repeats the tag of the line it
	// accepts (RFC 4568 §5.1, §7.1.2).
	Tag int
	// Suite is the crypto-suite; ParseCrypto only returns suites the trunk
	// implements.
	Suite Suite
	// Key and Salt are the master key and master salt (RFC 3711 §8.2).
	Key, Salt []byte
	// Lifetime is the master key lifetime in packets, 0 when the line does
	// not say (RFC 4568 §6.1: the default is the transform's maximum).
	Lifetime uint64
	// MKI is the master key identifier value encoded big-endian in
	// MKILength bytes, nil when the line has none (RFC 4568 §6.1).
	MKI []byte
	// MKILength is the MKI field length in bytes (1..128), 0 without MKI.
	MKILength int
	// SessionParams holds the session parameters after the key parameters
	// (KDR=, UNENCRYPTED_SRTP, WSH=, …) verbatim; ParseCrypto does not
	// interpret them, Session.Answer refuses lines whose parameters it
	// cannot honour (RFC 4568 §6.3).
	SessionParams []string
}

// Errors returned (wrapped) by ParseCrypto. None of them carries key
// material.
var (
	// ErrCryptoSyntax: the line does not follow the RFC 4568 §9.1 grammar.
	ErrCryptoSyntax = errors.New("sdp: malformed a=crypto")
	// ErrUnsupportedSuite: a syntactically valid line for a suite the
	// trunk does not implement (F8_128_HMAC_SHA1_80, AES_192_CM_…, …).
	ErrUnsupportedSuite = errors.New("sdp: unsupported SRTP crypto-suite")
	// ErrCryptoKeyLength: the decoded key||salt has the wrong length for
	// its suite.
	ErrCryptoKeyLength = errors.New("sdp: wrong SRTP master key length")
)

const maxMKILength = 128 // RFC 4568 §9.1: mki-length = 1*3DIGIT ; range 1..128

// ParseCrypto parses the value of an a=crypto attribute (the text after
// "a=crypto:"). Keys may be base64 with or without padding; the decoded
// key||salt must have exactly the suite's length. Lifetimes are "2^N" or
// decimal; an MKI is "value:length". Session parameters are kept verbatim in
// SessionParams. Errors wrap ErrCryptoSyntax, ErrUnsupportedSuite or
// ErrCryptoKeyLength and never contain key material.
func ParseCrypto(attrValue string) (Crypto, error) {
	var c Crypto
	fields := strings.Fields(attrValue)
	if len(fields) < 3 {
		return c, fmt.Errorf("%w: want \"<tag> <suite> inline:<key>\"", ErrCryptoSyntax)
	}
	// RFC 4568 §9.1: tag = 1*9DIGIT
	if len(fields[0]) > 9 || !allDigits(fields[0]) {
		return c, fmt.Errorf("%w: tag %q is not 1 to 9 digits", ErrCryptoSyntax, clip(fields[0]))
	}
	c.Tag, _ = strconv.Atoi(fields[0]) // cannot fail: at most 9 digits
	c.Suite = Suite(fields[1])
	if _, ok := c.Suite.Profile(); !ok {
		return Crypto{}, fmt.Errorf("%w %q", ErrUnsupportedSuite, clip(fields[1]))
	}
	// RFC 4568 §9.1: key-params = key-param *(";" key-param)
	for i, param := range strings.Split(fields[2], ";") {
		key, salt, lifetime, mki, err := parseKeyParam(param, c.Suite)
		if err != nil {
			return Crypto{}, fmt.Errorf("crypto tag %d key %d: %w", c.Tag, i+1, err)
		}
		if i == 0 {
			c.Key, c.Salt, c.Lifetime, c.MKI, c.MKILength = key, salt, lifetime, mki, len(mki)
		}
	}
	if len(fields) > 3 {
		c.SessionParams = append([]string(nil), fields[3:]...)
	}
	return c, nil
}

// parseKeyParam parses one "inline:<key||salt>[|lifetime][|mki:len]".
func parseKeyParam(param string, suite Suite) (key, salt []byte, lifetime uint64, mki []byte, err error) {
	// RFC 4568 §9.1: key-method = "inline"; SDP grammar literals are
	// case-insensitive (RFC 5234 §2.3).
	method, info, ok := strings.Cut(param, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return nil, nil, 0, nil, fmt.Errorf("%w: key method is not inline", ErrCryptoSyntax)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return nil, nil, 0, nil, fmt.Errorf("%w: too many '|' fields in key", ErrCryptoSyntax)
	}
	raw, err := decodeBase64(parts[0])
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("%w: key is not base64", ErrCryptoSyntax)
	}
	kl, sl := suite.KeyLen(), suite.SaltLen()
	if len(raw) != kl+sl {
		return nil, nil, 0, nil, fmt.Errorf("%w: %s needs %d bytes of key||salt, got %d",
			ErrCryptoKeyLength, suite, kl+sl, len(raw))
	}
	key, salt = raw[:kl:kl], raw[kl:]
	// RFC 4568 §6.1: both the lifetime and the MKI are optional, lifetime
	// first; the MKI is the one with a colon, so either may stand alone.
	seenLifetime := false
	for _, p := range parts[1:] {
		if v, l, isMKI := strings.Cut(p, ":"); isMKI {
			if mki != nil {
				return nil, nil, 0, nil, fmt.Errorf("%w: two MKI fields", ErrCryptoSyntax)
			}
			if mki, err = parseMKI(v, l); err != nil {
				return nil, nil, 0, nil, err
			}
			continue
		}
		if seenLifetime || mki != nil {
			return nil, nil, 0, nil, fmt.Errorf("%w: lifetime out of place", ErrCryptoSyntax)
		}
		seenLifetime = true
		if lifetime, err = parseLifetime(p); err != nil {
			return nil, nil, 0, nil, err
		}
	}
	return key, salt, lifetime, mki, nil
}

// decodeBase64 accepts padded (RFC 4648 §4, which RFC 4568 §9.1 refers to
// as RFC 3548 §3) and unpadded base64: both are seen from real PBXs.
func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// parseLifetime parses RFC 4568 §9.1 lifetime = ["2^"] 1*(DIGIT).
func parseLifetime(s string) (uint64, error) {
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		if exp == "" || len(exp) > 2 || !allDigits(exp) {
			return 0, fmt.Errorf("%w: lifetime %q", ErrCryptoSyntax, clip(s))
		}
		n, _ := strconv.Atoi(exp) // at most two digits
		if n > 63 {
			return 0, fmt.Errorf("%w: lifetime 2^%d overflows", ErrCryptoSyntax, n)
		}
		return 1 << n, nil
	}
	if !allDigits(s) || s == "" {
		return 0, fmt.Errorf("%w: lifetime %q", ErrCryptoSyntax, clip(s))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: lifetime %q", ErrCryptoSyntax, clip(s))
	}
	return v, nil
}

// parseMKI parses RFC 4568 §9.1 mki = mki-value ":" mki-length, a decimal
// value carried in mki-length (1..128) bytes on the wire.
func parseMKI(value, length string) ([]byte, error) {
	if value == "" || !allDigits(value) || length == "" || len(length) > 3 || !allDigits(length) {
		return nil, fmt.Errorf("%w: MKI must be <value>:<length>", ErrCryptoSyntax)
	}
	n, _ := strconv.Atoi(length) // at most three digits
	if n < 1 || n > maxMKILength {
		return nil, fmt.Errorf("%w: MKI length %d outside 1..%d", ErrCryptoSyntax, n, maxMKILength)
	}
	if len(value) > 3*maxMKILength { // more digits than 128 bytes can hold
		return nil, fmt.Errorf("%w: MKI value does not fit %d bytes", ErrCryptoSyntax, n)
	}
	v, ok := new(big.Int).SetString(value, 10)
	if !ok || (v.BitLen()+7)/8 > n {
		return nil, fmt.Errorf("%w: MKI value does not fit %d bytes", ErrCryptoSyntax, n)
	}
	return v.FillBytes(make([]byte, n)), nil
}

// String renders the attribute value (without "a=crypto:"), keys included:
// it is meant for the SDP body only. Loggers get the redacted LogValue.
func (c Crypto) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(string(c.Suite))
	b.WriteString(" inline:")
	keySalt := make([]byte, 0, len(c.Key)+len(c.Salt))
	keySalt = append(append(keySalt, c.Key...), c.Salt...)
	b.WriteString(base64.StdEncoding.EncodeToString(keySalt))
	if c.Lifetime != 0 {
		b.WriteByte('|')
		if c.Lifetime&(c.Lifetime-1) == 0 {
			b.WriteString("2^")
			b.WriteString(strconv.Itoa(bits.Len64(c.Lifetime) - 1))
		} else {
			b.WriteString(strconv.FormatUint(c.Lifetime, 10))
		}
	}
	if len(c.MKI) > 0 {
		b.WriteByte('|')
		b.WriteString(new(big.Int).SetBytes(c.MKI).String())
		b.WriteByte(':')
		n := c.MKILength
		if n == 0 {
			n = len(c.MKI)
		}
		b.WriteString(strconv.Itoa(n))
	}
	for _, p := range c.SessionParams {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	return b.String()
}

// LogValue keeps keys out of structured logs: only tag and suite are shown.
func (c Crypto) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("tag", c.Tag), slog.String("suite", string(c.Suite)))
}

// newCrypto draws a fresh master key and salt for suite from rnd. A failing
// rnd (only possible with an injected reader) falls back to crypto/rand,
// which cannot fail, so an offer never goes out without keys.
func newCrypto(tag int, suite Suite, rnd io.Reader) Crypto {
	kl, sl := suite.KeyLen(), suite.SaltLen()
	buf := make([]byte, kl+sl)
	if _, err := io.ReadFull(rnd, buf); err != nil {
		rand.Read(buf) //nolint:errcheck // documented never to return an error
	}
	return Crypto{Tag: tag, Suite: suite, Key: buf[:kl:kl], Salt: buf[kl:]}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip bounds peer-supplied text quoted in an error message.
func clip(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
