package sdp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"
)

// keyBytes returns n recognisable key||salt bytes.
func keyBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func padded(n int) string { return base64.StdEncoding.EncodeToString(keyBytes(n)) }
func raw(n int) string    { return base64.RawStdEncoding.EncodeToString(keyBytes(n)) }

func TestParseCrypto(t *testing.T) {
	type want struct {
		tag      int
		suite    Suite
		keyLen   int
		saltLen  int
		lifetime uint64
		mki      []byte
		params   []string
	}
	tests := []struct {
		name  string
		value string
		want  want
		err   error
	}{
		{"aes128 80", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30), want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14}, nil},
		{"aes128 32", "2 AES_CM_128_HMAC_SHA1_32 inline:" + padded(30), want{tag: 2, suite: AESCM128HMACSHA132, keyLen: 16, saltLen: 14}, nil},
		{"aes256 80 padded", "1 AES_256_CM_HMAC_SHA1_80 inline:" + padded(46), want{tag: 1, suite: AES256CMHMACSHA180, keyLen: 32, saltLen: 14}, nil},
		{"aes256 80 raw", "1 AES_256_CM_HMAC_SHA1_80 inline:" + raw(46), want{tag: 1, suite: AES256CMHMACSHA180, keyLen: 32, saltLen: 14}, nil},
		{"aes256 32", "3 AES_256_CM_HMAC_SHA1_32 inline:" + padded(46), want{tag: 3, suite: AES256CMHMACSHA132, keyLen: 32, saltLen: 14}, nil},
		{"gcm128 padded", "4 AEAD_AES_128_GCM inline:" + padded(28), want{tag: 4, suite: AEADAES128GCM, keyLen: 16, saltLen: 12}, nil},
		{"gcm128 raw", "4 AEAD_AES_128_GCM inline:" + raw(28), want{tag: 4, suite: AEADAES128GCM, keyLen: 16, saltLen: 12}, nil},
		{"gcm256 padded", "5 AEAD_AES_256_GCM inline:" + padded(44), want{tag: 5, suite: AEADAES256GCM, keyLen: 32, saltLen: 12}, nil},
		{"gcm256 raw", "5 AEAD_AES_256_GCM inline:" + raw(44), want{tag: 5, suite: AEADAES256GCM, keyLen: 32, saltLen: 12}, nil},
		{"lifetime power", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^31", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, lifetime: 1 << 31}, nil},
		{"lifetime 2^48", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^48", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, lifetime: 1 << 48}, nil},
		{"lifetime decimal", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1048576", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, lifetime: 1048576}, nil},
		{"lifetime and mki", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^20|1:4", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, lifetime: 1 << 20, mki: []byte{0, 0, 0, 1}}, nil},
		{"mki only", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|258:2", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, mki: []byte{1, 2}}, nil},
		{"mki one byte max", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|255:1", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, mki: []byte{255}}, nil},
		{"session params kept", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + " KDR=1 UNENCRYPTED_SRTCP", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, params: []string{"KDR=1", "UNENCRYPTED_SRTCP"}}, nil},
		{"two keys keep first", "7 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^20|1:1;inline:" + raw(30) + "|2^20|2:1", want{tag: 7, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14, lifetime: 1 << 20, mki: []byte{1}}, nil},
		{"extra spaces", "  1   AES_CM_128_HMAC_SHA1_80\tinline:" + padded(30) + "  ", want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14}, nil},
		{"INLINE uppercase", "1 AES_CM_128_HMAC_SHA1_80 INLINE:" + padded(30), want{tag: 1, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14}, nil},
		{"tag 9 digits", "123456789 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30), want{tag: 123456789, suite: AESCM128HMACSHA180, keyLen: 16, saltLen: 14}, nil},

		{"aes128 with aes256 key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(46), want{}, ErrCryptoKeyLength},
		{"aes256 with aes128 key", "1 AES_256_CM_HMAC_SHA1_80 inline:" + padded(30), want{}, ErrCryptoKeyLength},
		{"gcm128 with 30 bytes", "1 AEAD_AES_128_GCM inline:" + padded(30), want{}, ErrCryptoKeyLength},
		{"second key wrong length", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1:1;inline:" + padded(29) + "|2:1", want{}, ErrCryptoKeyLength},
		{"unknown suite", "1 F8_128_HMAC_SHA1_80 inline:" + padded(30), want{}, ErrUnsupportedSuite},
		{"aes192 unsupported", "1 AES_192_CM_HMAC_SHA1_80 inline:" + padded(38), want{}, ErrUnsupportedSuite},
		{"lowercase suite", "1 aes_cm_128_hmac_sha1_80 inline:" + padded(30), want{}, ErrUnsupportedSuite},
		{"empty", "", want{}, ErrCryptoSyntax},
		{"tag only", "1", want{}, ErrCryptoSyntax},
		{"no key", "1 AES_CM_128_HMAC_SHA1_80", want{}, ErrCryptoSyntax},
		{"tag not digits", "x AES_CM_128_HMAC_SHA1_80 inline:" + padded(30), want{}, ErrCryptoSyntax},
		{"tag 10 digits", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30), want{}, ErrCryptoSyntax},
		{"negative tag", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30), want{}, ErrCryptoSyntax},
		{"not inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + padded(30), want{}, ErrCryptoSyntax},
		{"no method", "1 AES_CM_128_HMAC_SHA1_80 " + padded(30), want{}, ErrCryptoSyntax},
		{"bad base64", "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!" + padded(27), want{}, ErrCryptoSyntax},
		{"empty key", "1 AES_CM_128_HMAC_SHA1_80 inline:|2^31", want{}, ErrCryptoSyntax},
		{"bad padding", "1 AES_256_CM_HMAC_SHA1_80 inline:" + raw(46) + "=", want{}, ErrCryptoSyntax},
		{"lifetime empty power", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^", want{}, ErrCryptoSyntax},
		{"lifetime 2^64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^64", want{}, ErrCryptoSyntax},
		{"lifetime zero", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|0", want{}, ErrCryptoSyntax},
		{"lifetime junk", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|forever", want{}, ErrCryptoSyntax},
		{"lifetime overflow", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|99999999999999999999", want{}, ErrCryptoSyntax},
		{"lifetime after mki", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1:4|2^20", want{}, ErrCryptoSyntax},
		{"two lifetimes", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^20|2^30", want{}, ErrCryptoSyntax},
		{"too many fields", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^20|1:4|5", want{}, ErrCryptoSyntax},
		{"mki length zero", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1:0", want{}, ErrCryptoSyntax},
		{"mki length 129", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1:129", want{}, ErrCryptoSyntax},
		{"mki value too big", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|256:1", want{}, ErrCryptoSyntax},
		{"mki not numeric", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|a:1", want{}, ErrCryptoSyntax},
		{"mki missing length", "1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|1:", want{}, ErrCryptoSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.value)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				// Errors must not echo key material.
				for _, n := range []int{28, 29, 30, 44, 46} {
					for _, k := range []string{padded(n), raw(n)} {
						if strings.Contains(err.Error(), k[:20]) {
							t.Fatalf("error %q leaks the key", err)
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			w := tc.want
			if c.Tag != w.tag || c.Suite != w.suite || c.Lifetime != w.lifetime {
				t.Fatalf("got tag %d suite %s lifetime %d, want %d %s %d", c.Tag, c.Suite, c.Lifetime, w.tag, w.suite, w.lifetime)
			}
			all := keyBytes(w.keyLen + w.saltLen)
			if !bytes.Equal(c.Key, all[:w.keyLen]) || !bytes.Equal(c.Salt, all[w.keyLen:]) {
				t.Fatalf("key/salt split wrong: %d+%d bytes", len(c.Key), len(c.Salt))
			}
			if !bytes.Equal(c.MKI, w.mki) || c.MKILength != len(w.mki) {
				t.Fatalf("MKI = %v (len %d), want %v", c.MKI, c.MKILength, w.mki)
			}
			if strings.Join(c.SessionParams, " ") != strings.Join(w.params, " ") {
				t.Fatalf("session params = %q, want %q", c.SessionParams, w.params)
			}
			// String renders a line that parses back to the same value.
			back, err := ParseCrypto(c.String())
			if err != nil {
				t.Fatalf("String() %q does not parse: %v", c.String(), err)
			}
			if back.String() != c.String() || !bytes.Equal(back.Key, c.Key) || !bytes.Equal(back.MKI, c.MKI) || back.Lifetime != c.Lifetime {
				t.Fatalf("round trip changed %q into %q", c.String(), back.String())
			}
		})
	}
}

func TestCryptoString(t *testing.T) {
	c := Crypto{Tag: 3, Suite: AES256CMHMACSHA180, Key: keyBytes(46)[:32], Salt: keyBytes(46)[32:], Lifetime: 1 << 31, MKI: []byte{0, 7}, MKILength: 2}
	want := "3 AES_256_CM_HMAC_SHA1_80 inline:" + padded(46) + "|2^31|7:2"
	if got := c.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	c.Lifetime = 1000
	if got := c.String(); !strings.Contains(got, "|1000|7:2") {
		t.Fatalf("decimal lifetime not rendered: %q", got)
	}
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	c := Crypto{Tag: 1, Suite: AESCM128HMACSHA180, Key: keyBytes(30)[:16], Salt: keyBytes(30)[16:]}
	k := SRTPKeys{Profile: srtp.ProtectionProfileAes128CmHmacSha1_80, LocalKey: c.Key, LocalSalt: c.Salt, RemoteKey: c.Key, RemoteSalt: c.Salt}
	n := Negotiated{SRTP: &k}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("keys", "crypto", c, "srtp", k, "negotiated", n)
	b64 := base64.StdEncoding.EncodeToString(c.Key)[:12]
	out := buf.String()
	if strings.Contains(out, b64) || strings.Contains(out, "[1 8 15") || strings.Contains(out, "0x01") {
		t.Fatalf("log line leaks keys: %s", out)
	}
	if !strings.Contains(out, "AES_CM_128_HMAC_SHA1_80") {
		t.Fatalf("log line lacks the suite: %s", out)
	}
}

func TestSuiteProfile(t *testing.T) {
	tests := []struct {
		suite     Suite
		profile   srtp.ProtectionProfile
		key, salt int
	}{
		{AESCM128HMACSHA180, srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
		{AESCM128HMACSHA132, srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
		{AES256CMHMACSHA180, srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
		{AES256CMHMACSHA132, srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 14},
		{AEADAES128GCM, srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
		{AEADAES256GCM, srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
	}
	for _, tc := range tests {
		p, ok := tc.suite.Profile()
		if !ok || p != tc.profile || tc.suite.KeyLen() != tc.key || tc.suite.SaltLen() != tc.salt {
			t.Errorf("%s: profile %v ok %v key %d salt %d", tc.suite, p, ok, tc.suite.KeyLen(), tc.suite.SaltLen())
		}
	}
	if _, ok := Suite("NULL_HMAC_SHA1_80").Profile(); ok {
		t.Error("NULL suite must not be offered or accepted")
	}
}
