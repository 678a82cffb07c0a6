package sdp

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	psdp "github.com/pion/sdp/v3"
)

func FuzzParse(f *testing.F) {
	for _, b := range [][]byte{asteriskOffer, freeswitchSAVPOffer, baresipOpusOffer, asteriskOptimisticOffer, g729Offer, holdOffer("sendonly", "5")} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err == nil && m == nil {
			t.Fatal("nil media without error")
		}
		if err != nil && m != nil {
			t.Fatal("media with error")
		}
	})
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "|2^20|1:4")
	f.Add("2 AES_256_CM_HMAC_SHA1_80 inline:" + raw(46) + " KDR=0")
	f.Add("3 AEAD_AES_128_GCM inline:" + padded(28) + ";inline:" + padded(28) + "|2:1")
	f.Add("4 AEAD_AES_256_GCM inline:" + raw(44) + "|1048576")
	f.Fuzz(func(t *testing.T, value string) {
		c, err := ParseCrypto(value)
		if err != nil {
			return
		}
		// Whatever parses must render to a line that parses the same.
		back, err := ParseCrypto(c.String())
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", c.String(), err)
		}
		if !bytes.Equal(back.Key, c.Key) || !bytes.Equal(back.Salt, c.Salt) || !bytes.Equal(back.MKI, c.MKI) || back.Lifetime != c.Lifetime || back.Tag != c.Tag {
			t.Fatalf("round trip of %q changed the crypto", value)
		}
	})
}

// FuzzAnswer checks that Answer never panics, that it either fails with a
// *NegotiationError or answers with an SDP that a strict parser (pion's)
// accepts and that mirrors the offer's m-line count.
func FuzzAnswer(f *testing.F) {
	for _, b := range [][]byte{asteriskOffer, freeswitchSAVPOffer, baresipOpusOffer, asteriskOptimisticOffer, g729Offer, holdOffer("inactive", "9")} {
		f.Add(b, uint8(SRTPOptional))
	}
	f.Add(freeswitchSAVPOffer, uint8(SRTPRequired))
	f.Add(asteriskOffer, uint8(SRTPOff))
	f.Fuzz(func(t *testing.T, offer []byte, policy uint8) {
		cfg := DefaultConfig()
		cfg.SRTP = SRTPPolicy(policy % 3)
		s := NewSession(cfg, netip.MustParseAddrPort("192.0.2.1:30000"), nil)
		ans, n, err := s.Answer(offer)
		if err != nil {
			var ne *NegotiationError
			if !errors.As(err, &ne) || (ne.Status != 488 && ne.Status != 400) {
				t.Fatalf("error %v is not a NegotiationError", err)
			}
			return
		}
		d, err := parseDescription(offer)
		if err != nil {
			t.Fatalf("offer answered but does not parse: %v", err)
		}
		ad, err := parseDescription(ans)
		if err != nil || len(ad.lines) != len(d.lines) {
			t.Fatalf("answer has %d m-lines for an offer with %d (%v)", len(ad.lines), len(d.lines), err)
		}
		// pion's parser only knows the IANA media and transport names;
		// within those our answer must satisfy it.
		if pionKnows(d) {
			var sd psdp.SessionDescription
			if err := sd.Unmarshal(ans); err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, ans)
			}
		}
		if n.Remote.Port() == 0 || (cfg.SRTP == SRTPRequired && n.SRTP == nil) {
			t.Fatalf("bad negotiation %+v", n)
		}
	})
}

// pionKnows reports whether every m-line uses media and transport names
// that pion/sdp's strict parser accepts.
func pionKnows(d *description) bool {
	media := map[string]bool{"audio": true, "video": true, "text": true, "application": true, "message": true}
	protos := map[string]bool{"UDP": true, "RTP": true, "AVP": true, "SAVP": true, "SAVPF": true, "TLS": true, "DTLS": true,
		"SCTP": true, "AVPF": true, "TCP": true, "MSRP": true, "BFCP": true, "UDT": true, "IX": true, "MRCPv2": true, "FEC": true}
	for _, l := range d.lines {
		if !media[l.media] {
			return false
		}
		for _, p := range strings.Split(l.proto, "/") {
			if !protos[p] {
				return false
			}
		}
		for _, f := range l.formats {
			if !isToken(f) {
				return false
			}
		}
	}
	return true
}
