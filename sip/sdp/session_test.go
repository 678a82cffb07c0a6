package sdp

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	psdp "github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
)

var localRTP = netip.MustParseAddrPort("192.0.2.1:30000")

func newTestSession(mod func(*Config)) *Session {
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	return NewSession(cfg, localRTP, nil)
}

func TestAnswer(t *testing.T) {
	type dtmf struct {
		pt    uint8
		clock uint32
	}
	tests := []struct {
		name  string
		cfg   func(*Config)
		offer []byte

		status, code int    // expected *NegotiationError
		warn         string // substring of its Warning

		codec      string
		pt         uint8
		dtmf       *dtmf
		dir        Direction
		suite      Suite
		remoteKey  []byte
		mux        bool
		remote     string
		remoteRTCP string
		ptime      int
		has, hasNo []string
	}{
		{
			name: "asterisk ulaw alaw g722", offer: asteriskOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, dir: SendRecv, ptime: 20,
			remote: "203.0.113.10:14562", remoteRTCP: "203.0.113.10:14563",
			has:   []string{"m=audio 30000 RTP/AVP 0 101\r\n", "c=IN IP4 192.0.2.1\r\n", "a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:101 telephone-event/8000\r\n", "a=fmtp:101 0-16\r\n", "a=ptime:20\r\n", "a=sendrecv\r\n"},
			hasNo: []string{"PCMA", "G722", "a=crypto", "a=rtcp-mux"},
		},
		{
			name: "our preference wins over the offer order", cfg: func(c *Config) { c.Codecs = []string{"g722", "PCMU"} }, offer: asteriskOffer,
			codec: G722, pt: 9, dtmf: &dtmf{101, 8000}, remote: "203.0.113.10:14562",
			has: []string{"m=audio 30000 RTP/AVP 9 101\r\n", "a=rtpmap:9 G722/8000\r\n"},
		},
		{
			name: "DTMF disabled", cfg: func(c *Config) { c.DTMF = false }, offer: asteriskOffer,
			codec: PCMU, pt: 0, remote: "203.0.113.10:14562",
			has: []string{"m=audio 30000 RTP/AVP 0\r\n"}, hasNo: []string{"telephone-event"},
		},
		{
			name: "freeswitch SAVP takes the offerer's first allowed suite", cfg: func(c *Config) { c.SRTP = SRTPOptional }, offer: freeswitchSAVPOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, suite: AES256CMHMACSHA180, remoteKey: keyBytes(46)[:32],
			remote: "198.51.100.7:26780", remoteRTCP: "198.51.100.7:26781",
			has:   []string{"m=audio 30000 RTP/SAVP 0 101\r\n", "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"},
			hasNo: []string{"a=crypto:2", "a=crypto:3", "CN/8000"},
		},
		{
			name: "freeswitch SAVP restricted to AES_CM_128", cfg: func(c *Config) { c.SRTP = SRTPRequired; c.Suites = []Suite{AESCM128HMACSHA180} }, offer: freeswitchSAVPOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, suite: AESCM128HMACSHA180, remoteKey: keyBytes(30)[:16], remote: "198.51.100.7:26780",
			has: []string{"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"}, hasNo: []string{"a=crypto:1"},
		},
		{
			name: "freeswitch opus passthrough with 8 kHz DTMF", cfg: func(c *Config) { c.SRTP = SRTPOptional; c.Codecs = []string{"opus", "PCMA"} }, offer: freeswitchSAVPOffer,
			codec: Opus, pt: 102, dtmf: &dtmf{101, 8000}, suite: AES256CMHMACSHA180, remote: "198.51.100.7:26780",
			has: []string{"m=audio 30000 RTP/SAVP 102 101\r\n", "a=rtpmap:102 opus/48000/2\r\n", "a=fmtp:102 minptime=10;useinbandfec=1\r\n"},
		},
		{
			name: "SAVP with SRTP off", offer: freeswitchSAVPOffer,
			status: 488, code: 302, warn: "SRTP is disabled",
		},
		{
			name: "SAVP without an allowed suite", cfg: func(c *Config) { c.SRTP = SRTPOptional; c.Suites = []Suite{AEADAES128GCM} }, offer: freeswitchSAVPOffer,
			status: 488, code: 306, warn: "crypto suite",
		},
		{
			name: "opus-only baresip with rtcp-mux", offer: baresipOpusOffer,
			codec: Opus, pt: 96, dtmf: &dtmf{101, 48000}, mux: true, remote: "192.0.2.50:11352", remoteRTCP: "192.0.2.50:11352",
			has: []string{"m=audio 30000 RTP/AVP 96 101\r\n", "a=rtpmap:96 opus/48000/2\r\n", "a=rtpmap:101 telephone-event/48000\r\n", "a=fmtp:101 0-15\r\n", "a=rtcp-mux\r\n"},
		},
		{
			name: "no common codec", offer: g729Offer,
			status: 488, code: 305, warn: "no common codec",
		},
		{
			name: "SRTP required, plain offer", cfg: func(c *Config) { c.SRTP = SRTPRequired }, offer: asteriskOffer,
			status: 488, code: 302, warn: "SRTP required",
		},
		{
			name: "optimistic AVP+crypto answered with crypto", cfg: func(c *Config) { c.SRTP = SRTPOptional }, offer: asteriskOptimisticOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, suite: AESCM128HMACSHA180, remoteKey: keyBytes(30)[:16], remote: "203.0.113.10:14600",
			has: []string{"m=audio 30000 RTP/AVP 0 101\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"},
		},
		{
			name: "optimistic AVP+crypto with SRTP off stays plain", offer: asteriskOptimisticOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, remote: "203.0.113.10:14600",
			has: []string{"m=audio 30000 RTP/AVP 0 101\r\n"}, hasNo: []string{"a=crypto"},
		},
		{
			name: "optimistic AVP+crypto satisfies SRTP required", cfg: func(c *Config) { c.SRTP = SRTPRequired }, offer: asteriskOptimisticOffer,
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, suite: AESCM128HMACSHA180, remote: "203.0.113.10:14600",
		},
		{
			name: "hold: sendonly is answered recvonly", offer: holdOffer("sendonly", "3"),
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, dir: RecvOnly, remote: "203.0.113.10:14562",
			has: []string{"a=recvonly\r\n"}, hasNo: []string{"a=sendrecv"},
		},
		{
			name: "hold: inactive stays inactive", offer: holdOffer("inactive", "3"),
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, dir: Inactive, remote: "203.0.113.10:14562",
			has: []string{"a=inactive\r\n"},
		},
		{
			name: "recvonly is answered sendonly", offer: holdOffer("recvonly", "3"),
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, dir: SendOnly, remote: "203.0.113.10:14562",
			has: []string{"a=sendonly\r\n"},
		},
		{
			name: "RFC 2543 hold with c=0.0.0.0", offer: crlf("v=0\no=- 1 2 IN IP4 192.0.2.8\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 7078 RTP/AVP 8\n"),
			codec: PCMA, pt: 8, dir: RecvOnly, remote: "0.0.0.0:7078",
			has: []string{"a=recvonly\r\n"},
		},
		{
			name: "video stream rejected in place", offer: crlf("v=0\no=- 5 5 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 7078 RTP/AVP 9 0 101\na=rtpmap:101 telephone-event/8000\nm=video 9078 RTP/AVP 96 97\na=rtpmap:96 VP8/90000\n"),
			codec: PCMU, pt: 0, dtmf: &dtmf{101, 8000}, remote: "192.0.2.8:7078",
			has: []string{"m=audio 30000 RTP/AVP 0 101\r\n", "m=video 0 RTP/AVP 96 97\r\n"}, hasNo: []string{"VP8"},
		},
		{
			name: "best-effort SAVP then AVP with SRTP off", offer: crlf("v=0\no=- 5 5 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 7078 RTP/SAVP 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "\nm=audio 7080 RTP/AVP 8\n"),
			codec: PCMA, pt: 8, remote: "192.0.2.8:7080",
			has: []string{"m=audio 0 RTP/SAVP 8\r\nm=audio 30000 RTP/AVP 8\r\n"}, hasNo: []string{"a=crypto"},
		},
		{
			name: "DTLS-SRTP offer", offer: crlf("v=0\no=- 5 5 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 7078 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=fingerprint:sha-256 AB:CD\na=setup:actpass\n"),
			status: 488, code: 302,
		},
		{
			name: "T.38 re-INVITE", offer: crlf("v=0\no=- 5 6 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=image 4002 udptl t38\na=T38FaxVersion:0\n"),
			status: 488, code: 304,
		},
		{
			name: "audio stream disabled by offerer", offer: crlf("v=0\no=- 5 6 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 0 RTP/AVP 0\n"),
			status: 488, code: 304,
		},
		{
			name: "malformed body", offer: []byte("INVITE sip:x SIP/2.0\r\n"),
			status: 400, code: 399,
		},
		{
			name: "crypto with session params we cannot honour", cfg: func(c *Config) { c.SRTP = SRTPOptional },
			offer:  crlf("v=0\no=- 5 5 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 7078 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + " UNENCRYPTED_SRTP\n"),
			status: 488, code: 306,
		},
		{
			name: "peer ptime and maxptime", offer: crlf("v=0\no=- 5 5 IN IP4 192.0.2.8\ns=-\nc=IN IP4 192.0.2.8\nt=0 0\nm=audio 7078 RTP/AVP 0\na=ptime:40\na=maxptime:30\n"),
			codec: PCMU, pt: 0, ptime: 30, remote: "192.0.2.8:7078",
		},
		{
			name: "IPv6 media address", cfg: func(c *Config) { c.Addr = netip.MustParseAddr("2001:db8::1") },
			offer: crlf("v=0\no=- 5 5 IN IP6 2001:db8::8\ns=-\nc=IN IP6 2001:db8::8\nt=0 0\nm=audio 7078 RTP/AVP 8 0\n"),
			codec: PCMU, pt: 0, remote: "[2001:db8::8]:7078",
			has: []string{"c=IN IP6 2001:db8::1\r\n", "o=tgsip "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSession(tc.cfg)
			ans, n, err := s.Answer(tc.offer)
			if tc.status != 0 {
				var ne *NegotiationError
				if !errors.As(err, &ne) {
					t.Fatalf("err = %v, want a NegotiationError", err)
				}
				if ne.Status != tc.status || ne.Code != tc.code || !strings.Contains(ne.Warning, tc.warn) {
					t.Fatalf("got %d/%d %q, want %d/%d containing %q", ne.Status, ne.Code, ne.Warning, tc.status, tc.code, tc.warn)
				}
				if ans != nil {
					t.Fatal("answer body with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if n.Codec.Name != tc.codec || n.Codec.PayloadType != tc.pt {
				t.Fatalf("codec %s/%d, want %s/%d", n.Codec.Name, n.Codec.PayloadType, tc.codec, tc.pt)
			}
			switch {
			case tc.dtmf == nil && n.DTMF != nil:
				t.Fatalf("unexpected DTMF %+v", n.DTMF)
			case tc.dtmf != nil && (n.DTMF == nil || n.DTMF.PayloadType != tc.dtmf.pt || n.DTMF.ClockRate != tc.dtmf.clock):
				t.Fatalf("DTMF %+v, want %+v", n.DTMF, tc.dtmf)
			}
			if n.Direction != tc.dir {
				t.Fatalf("direction %v, want %v", n.Direction, tc.dir)
			}
			if n.RTCPMux != tc.mux {
				t.Fatalf("rtcp-mux %v, want %v", n.RTCPMux, tc.mux)
			}
			if n.Remote.String() != tc.remote {
				t.Fatalf("remote %v, want %v", n.Remote, tc.remote)
			}
			if tc.remoteRTCP != "" && n.RemoteRTCP.String() != tc.remoteRTCP {
				t.Fatalf("remote RTCP %v, want %v", n.RemoteRTCP, tc.remoteRTCP)
			}
			wantPTime := tc.ptime
			if wantPTime == 0 {
				wantPTime = 20
			}
			if n.PTime != wantPTime {
				t.Fatalf("ptime %d, want %d", n.PTime, wantPTime)
			}
			checkSRTP(t, n, tc.suite, tc.remoteKey, ans)
			for _, h := range tc.has {
				if !bytes.Contains(ans, []byte(h)) {
					t.Errorf("answer lacks %q:\n%s", h, ans)
				}
			}
			for _, h := range tc.hasNo {
				if bytes.Contains(ans, []byte(h)) {
					t.Errorf("answer has %q:\n%s", h, ans)
				}
			}
			var sd psdp.SessionDescription
			if err := sd.Unmarshal(ans); err != nil {
				t.Fatalf("pion cannot parse our answer: %v\n%s", err, ans)
			}
		})
	}
}

// checkSRTP checks the negotiated keys against the answer body.
func checkSRTP(t *testing.T, n Negotiated, suite Suite, remoteKey []byte, ans []byte) {
	t.Helper()
	if suite == "" {
		if n.SRTP != nil {
			t.Fatalf("unexpected SRTP %v", n.SRTP)
		}
		return
	}
	if n.SRTP == nil {
		t.Fatal("no SRTP negotiated")
	}
	prof, _ := suite.Profile()
	k := n.SRTP
	if k.Profile != prof || len(k.LocalKey) != suite.KeyLen() || len(k.LocalSalt) != suite.SaltLen() ||
		len(k.RemoteKey) != suite.KeyLen() || len(k.RemoteSalt) != suite.SaltLen() {
		t.Fatalf("keys do not fit %s: %d+%d local, %d+%d remote", suite, len(k.LocalKey), len(k.LocalSalt), len(k.RemoteKey), len(k.RemoteSalt))
	}
	if remoteKey != nil && !bytes.Equal(k.RemoteKey, remoteKey) {
		t.Fatal("remote key is not the offered one")
	}
	if bytes.Equal(k.LocalKey, k.RemoteKey) {
		t.Fatal("local key echoes the remote key")
	}
	// The key in our a=crypto line is the local key.
	m := regexp.MustCompile(`a=crypto:([^\r]*)\r\n`).FindSubmatch(ans)
	if m == nil {
		t.Fatal("no a=crypto in answer")
	}
	c, err := ParseCrypto(string(m[1]))
	if err != nil || !bytes.Equal(c.Key, k.LocalKey) || !bytes.Equal(c.Salt, k.LocalSalt) || c.Suite != suite {
		t.Fatalf("answer's crypto line does not carry the local key (%v)", err)
	}
}

// origin returns the o= session id and version of a body.
func origin(t *testing.T, body []byte) (id, version string) {
	t.Helper()
	m := regexp.MustCompile(`o=\S+ (\d+) (\d+) `).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no o= line in\n%s", body)
	}
	return string(m[1]), string(m[2])
}

func TestReinviteVersioning(t *testing.T) {
	s := newTestSession(nil)
	a1, _, err := s.Answer(asteriskOffer)
	if err != nil {
		t.Fatal(err)
	}
	id, v1 := origin(t, a1)
	if v1 != "1" {
		t.Fatalf("first version %s", v1)
	}
	// A session refresh (RFC 4028) repeats the offer: same answer, same
	// version (RFC 3264 §8 allows it only for an identical body).
	a2, _, err := s.Answer(asteriskOffer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1, a2) {
		t.Fatalf("refresh changed the answer:\n%s\n%s", a1, a2)
	}
	// Hold changes the body: version +1, same session id and port.
	a3, n, err := s.Answer(holdOffer("sendonly", "1183705724"))
	if err != nil || n.Direction != RecvOnly {
		t.Fatal(err, n.Direction)
	}
	id3, v3 := origin(t, a3)
	if id3 != id || v3 != "2" || !bytes.Contains(a3, []byte("m=audio 30000 ")) {
		t.Fatalf("hold answer o= %s %s:\n%s", id3, v3, a3)
	}
	// Resume.
	a4, n, err := s.Answer(holdOffer("sendrecv", "1183705725"))
	if err != nil || n.Direction != SendRecv {
		t.Fatal(err, n.Direction)
	}
	if _, v4 := origin(t, a4); v4 != "3" {
		t.Fatalf("resume version %s", v4)
	}
	// Our own re-INVITE for hold: version +1 again.
	o := s.Offer(SendOnly)
	if id5, v5 := origin(t, o); id5 != id || v5 != "4" || !bytes.Contains(o, []byte("a=sendonly\r\n")) {
		t.Fatalf("hold offer o= %s %s:\n%s", id5, v5, o)
	}
}

func TestReinviteKeys(t *testing.T) {
	s := newTestSession(func(c *Config) { c.SRTP = SRTPRequired })
	_, n1, err := s.Answer(freeswitchSAVPOffer)
	if err != nil {
		t.Fatal(err)
	}
	// Same remote key (hold re-INVITE): our key stays.
	hold := bytes.Replace(freeswitchSAVPOffer, []byte("a=sendrecv"), []byte("a=sendonly"), 1)
	_, n2, err := s.Answer(hold)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(n1.SRTP.LocalKey, n2.SRTP.LocalKey) || n2.Direction != RecvOnly {
		t.Fatal("local key changed although the peer kept its key")
	}
	// The peer re-keys: we re-key too (RFC 4568 §7.1.4).
	rekeyed := bytes.Replace(freeswitchSAVPOffer, []byte("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"+padded(46)),
		[]byte("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"+raw(46)[2:]+"AB"), 1)
	_, n3, err := s.Answer(rekeyed)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(n3.SRTP.LocalKey, n1.SRTP.LocalKey) || bytes.Equal(n3.SRTP.RemoteKey, n1.SRTP.RemoteKey) {
		t.Fatal("re-keyed offer did not produce new keys")
	}
	// Our own re-offer keeps the key in use for that suite.
	o := s.Offer(SendRecv)
	if !bytes.Contains(o, []byte((Crypto{Suite: AES256CMHMACSHA180, Key: n3.SRTP.LocalKey, Salt: n3.SRTP.LocalSalt}).String()[2:])) {
		t.Fatalf("re-offer does not carry the current key:\n%s", o)
	}
}

// peerAnswer builds an answer to one of our offers.
func peerAnswer(proto, fmts, extra string) []byte {
	return crlf("v=0\no=- 77 77 IN IP4 203.0.113.20\ns=-\nc=IN IP4 203.0.113.20\nt=0 0\nm=audio 16000 " + proto + " " + fmts + "\n" + extra)
}

// offeredCrypto returns our offer's crypto line with the given tag.
func offeredCrypto(t *testing.T, offer []byte, tag string) Crypto {
	t.Helper()
	m := regexp.MustCompile(`a=crypto:(` + tag + ` [^\r]*)\r\n`).FindSubmatch(offer)
	if m == nil {
		t.Fatalf("offer has no crypto tag %s", tag)
	}
	c, err := ParseCrypto(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOfferContents(t *testing.T) {
	tests := []struct {
		name       string
		cfg        func(*Config)
		has, hasNo []string
	}{
		{"plain", nil, []string{"m=audio 30000 RTP/AVP 0 8 9 111 101 110\r\n", "a=rtpmap:111 opus/48000/2\r\n", "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
			"a=rtpmap:101 telephone-event/8000\r\n", "a=rtpmap:110 telephone-event/48000\r\n", "a=ptime:20\r\n", "a=rtcp-mux\r\n", "a=sendrecv\r\n"}, []string{"a=crypto"}},
		{"pcm only, no DTMF", func(c *Config) { c.Codecs = []string{"PCMA"}; c.DTMF = false }, []string{"m=audio 30000 RTP/AVP 8\r\n"}, []string{"telephone-event", "opus"}},
		{"opus only", func(c *Config) { c.Codecs = []string{"opus"} }, []string{"m=audio 30000 RTP/AVP 111 110\r\n"}, []string{"telephone-event/8000"}},
		// Only the first two configured suites are offered, so that the
		// INVITE stays small enough for UDP (RFC 3261 §18.1.1).
		{"optional: AVP with crypto", func(c *Config) { c.SRTP = SRTPOptional }, []string{"RTP/AVP ", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", "a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:"}, []string{"a=crypto:3"}},
		{"required: SAVP with crypto", func(c *Config) { c.SRTP = SRTPRequired; c.Suites = []Suite{AEADAES256GCM} }, []string{"RTP/SAVP ", "a=crypto:1 AEAD_AES_256_GCM inline:"}, []string{"a=crypto:2"}},
		{"ptime 30", func(c *Config) { c.PTime = 30 }, []string{"a=ptime:30\r\n"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestSession(tc.cfg).Offer(SendRecv)
			for _, h := range tc.has {
				if !bytes.Contains(o, []byte(h)) {
					t.Errorf("offer lacks %q:\n%s", h, o)
				}
			}
			for _, h := range tc.hasNo {
				if bytes.Contains(o, []byte(h)) {
					t.Errorf("offer has %q:\n%s", h, o)
				}
			}
			var sd psdp.SessionDescription
			if err := sd.Unmarshal(o); err != nil {
				t.Fatalf("pion cannot parse our offer: %v", err)
			}
			if _, err := Parse(o); err != nil {
				t.Fatalf("we cannot parse our offer: %v", err)
			}
		})
	}
}

func TestAcceptAnswer(t *testing.T) {
	key128 := "inline:" + padded(30)
	tests := []struct {
		name   string
		cfg    func(*Config)
		dir    Direction
		answer func(offer []byte) []byte

		code   int // expected NegotiationError warn-code
		codec  string
		pt     uint8
		dtmf   uint32 // DTMF clock, 0 = none
		ourDir Direction
		suite  Suite
		tag    string // our offered line that must key our side
		mux    bool
	}{
		{name: "asterisk picks PCMA", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "8 101", "a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=ptime:20\na=sendrecv\n")
		}, codec: PCMA, pt: 8, dtmf: 8000},
		{name: "opus with 48 kHz DTMF and mux", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "111 110", "a=rtpmap:111 opus/48000/2\na=rtpmap:110 telephone-event/48000\na=rtcp-mux\n")
		}, codec: Opus, pt: 111, dtmf: 48000, mux: true},
		{name: "answerer renumbers: we send its PT", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "98", "a=rtpmap:98 opus/48000/2\n")
		}, codec: Opus, pt: 98},
		{name: "codec we did not offer", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "18", "a=rtpmap:18 G729/8000\n")
		}, code: 305},
		{name: "rejected stream", answer: func([]byte) []byte {
			return crlf("v=0\no=- 1 1 IN IP4 203.0.113.20\ns=-\nc=IN IP4 203.0.113.20\nt=0 0\nm=audio 0 RTP/AVP 0\n")
		}, code: 304},
		{name: "extra m-line", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "m=video 0 RTP/AVP 96\n")
		}, code: 399},
		{name: "hold: we offered sendonly", dir: SendOnly, answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "a=recvonly\n")
		}, codec: PCMU, pt: 0, ourDir: SendOnly},
		{name: "hold answered sendrecv stays sendonly", dir: SendOnly, answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "")
		}, codec: PCMU, pt: 0, ourDir: SendOnly},
		{name: "peer puts itself on hold in the answer", answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "a=sendonly\n")
		}, codec: PCMU, pt: 0, ourDir: RecvOnly},
		{name: "SAVP answer with tag 2", cfg: func(c *Config) { c.SRTP = SRTPRequired }, answer: func([]byte) []byte {
			return peerAnswer("RTP/SAVP", "0", "a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:"+padded(46)+"\n")
		}, codec: PCMU, pt: 0, suite: AES256CMHMACSHA180, tag: "2"},
		{name: "optimistic offer answered with crypto", cfg: func(c *Config) { c.SRTP = SRTPOptional }, answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "+key128+"\n")
		}, codec: PCMU, pt: 0, suite: AESCM128HMACSHA180, tag: "1"},
		{name: "optimistic offer answered in the clear", cfg: func(c *Config) { c.SRTP = SRTPOptional }, answer: func([]byte) []byte {
			return peerAnswer("RTP/AVP", "0", "")
		}, codec: PCMU, pt: 0},
		{name: "crypto tag we never offered", cfg: func(c *Config) { c.SRTP = SRTPRequired }, answer: func([]byte) []byte {
			return peerAnswer("RTP/SAVP", "0", "a=crypto:9 AES_CM_128_HMAC_SHA1_80 "+key128+"\n")
		}, code: 306},
		{name: "crypto tag with another suite", cfg: func(c *Config) { c.SRTP = SRTPRequired }, answer: func([]byte) []byte {
			return peerAnswer("RTP/SAVP", "0", "a=crypto:2 AES_CM_128_HMAC_SHA1_80 "+key128+"\n")
		}, code: 306},
		{name: "SAVP offer answered without keys", cfg: func(c *Config) { c.SRTP = SRTPRequired }, answer: func([]byte) []byte {
			return peerAnswer("RTP/SAVP", "0", "")
		}, code: 306},
		{name: "SAVP answer to a plain offer", answer: func([]byte) []byte {
			return peerAnswer("RTP/SAVP", "0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "+key128+"\n")
		}, code: 302},
		{name: "not SDP", answer: func([]byte) []byte { return []byte("junk") }, code: 399},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSession(tc.cfg)
			offer := s.Offer(tc.dir)
			n, err := s.AcceptAnswer(tc.answer(offer))
			if tc.code != 0 {
				var ne *NegotiationError
				if !errors.As(err, &ne) || ne.Code != tc.code {
					t.Fatalf("err = %v, want warn-code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Codec.Name != tc.codec || n.Codec.PayloadType != tc.pt {
				t.Fatalf("codec %s/%d, want %s/%d", n.Codec.Name, n.Codec.PayloadType, tc.codec, tc.pt)
			}
			if (tc.dtmf == 0) != (n.DTMF == nil) || (n.DTMF != nil && n.DTMF.ClockRate != tc.dtmf) {
				t.Fatalf("DTMF %+v, want clock %d", n.DTMF, tc.dtmf)
			}
			if n.Direction != tc.ourDir || n.RTCPMux != tc.mux {
				t.Fatalf("direction %v mux %v", n.Direction, n.RTCPMux)
			}
			if n.Remote != netip.MustParseAddrPort("203.0.113.20:16000") {
				t.Fatalf("remote %v", n.Remote)
			}
			if tc.mux && n.RemoteRTCP != n.Remote {
				t.Fatalf("remote RTCP %v with mux", n.RemoteRTCP)
			}
			if tc.suite == "" {
				if n.SRTP != nil {
					t.Fatal("unexpected SRTP")
				}
				return
			}
			ours := offeredCrypto(t, offer, tc.tag)
			prof, _ := tc.suite.Profile()
			if n.SRTP == nil || n.SRTP.Profile != prof || !bytes.Equal(n.SRTP.LocalKey, ours.Key) || !bytes.Equal(n.SRTP.LocalSalt, ours.Salt) {
				t.Fatalf("local keys are not those of offered tag %s", tc.tag)
			}
			if !bytes.Equal(n.SRTP.RemoteKey, keyBytes(tc.suite.KeyLen() + tc.suite.SaltLen())[:tc.suite.KeyLen()]) {
				t.Fatal("remote key is not the answer's")
			}
		})
	}
}

func TestAcceptAnswerWithoutOffer(t *testing.T) {
	s := newTestSession(nil)
	if _, err := s.AcceptAnswer(asteriskOffer); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("err = %v", err)
	}
	s.Offer(SendRecv)
	if _, err := s.AcceptAnswer(peerAnswer("RTP/AVP", "0", "")); err != nil {
		t.Fatal(err)
	}
	// The same description again (same o= version) is a repeat, not a
	// second answer (RFC 3264 §8).
	if n, err := s.AcceptAnswer(peerAnswer("RTP/AVP", "0", "")); !errors.Is(err, ErrRepeatedAnswer) || n.Codec.Name != PCMU {
		t.Fatalf("repeated answer: %+v, err = %v", n, err)
	}
	changed := bytes.Replace(peerAnswer("RTP/AVP", "8", ""), []byte("o=- 77 77"), []byte("o=- 77 78"), 1)
	if _, err := s.AcceptAnswer(changed); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("second answer: err = %v", err)
	}
}

// TestPreviewAnswer: the SDP of an unreliable 183 is used for early media
// but the offer stays pending; the 2xx repeats it (RFC 3264 §8) or
// replaces it (RFC 6337 §3.1.1).
func TestPreviewAnswer(t *testing.T) {
	early := peerAnswer("RTP/AVP", "0", "")
	changed := bytes.Replace(peerAnswer("RTP/AVP", "8", ""), []byte("o=- 77 77"), []byte("o=- 77 78"), 1)

	s := newTestSession(nil)
	s.Offer(SendRecv)
	if n, err := s.PreviewAnswer(early); err != nil || n.Codec.Name != PCMU {
		t.Fatalf("preview: %+v, %v", n, err)
	}
	if n, err := s.AcceptAnswer(early); !errors.Is(err, ErrRepeatedAnswer) || n.Codec.Name != PCMU {
		t.Fatalf("2xx repeating the 183: %+v, %v", n, err)
	}
	if _, err := s.AcceptAnswer(changed); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("after the final answer: %v", err)
	}

	s = newTestSession(nil)
	s.Offer(SendRecv)
	if _, err := s.PreviewAnswer(early); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AcceptAnswer(changed); err != nil || n.Codec.Name != PCMA {
		t.Fatalf("2xx changing the 183's SDP: %+v, %v", n, err)
	}

	// A new offer is answered afresh even when the answer keeps its version.
	s.Offer(SendOnly)
	if n, err := s.AcceptAnswer(changed); err != nil || n.Direction != SendOnly {
		t.Fatalf("answer to a re-offer: %+v, %v", n, err)
	}

	// An unusable preview leaves the offer pending for the 2xx.
	s = newTestSession(nil)
	s.Offer(SendRecv)
	if _, err := s.PreviewAnswer(peerAnswer("RTP/AVP", "18", "a=rtpmap:18 G729/8000\n")); err == nil {
		t.Fatal("preview without a common codec accepted")
	}
	if _, err := s.AcceptAnswer(early); err != nil {
		t.Fatalf("2xx after an unusable preview: %v", err)
	}
}

func TestSRTPKeysWorkWithPion(t *testing.T) {
	// Keys negotiated by two Sessions talking to each other must drive
	// pion/srtp contexts that decrypt each other's packets.
	alice := newTestSession(func(c *Config) { c.SRTP = SRTPRequired; c.Suites = []Suite{AEADAES128GCM, AESCM128HMACSHA180} })
	bob := NewSession(func() Config { c := DefaultConfig(); c.SRTP = SRTPRequired; return c }(), netip.MustParseAddrPort("192.0.2.2:40000"), nil)
	ans, nb, err := bob.Answer(alice.Offer(SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	na, err := alice.AcceptAnswer(ans)
	if err != nil {
		t.Fatal(err)
	}
	if na.SRTP.Profile != srtp.ProtectionProfileAeadAes128Gcm || nb.SRTP.Profile != na.SRTP.Profile {
		t.Fatalf("profiles %v %v", na.SRTP, nb.SRTP)
	}
	enc, err := srtp.CreateContext(na.SRTP.LocalKey, na.SRTP.LocalSalt, na.SRTP.Profile)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(nb.SRTP.RemoteKey, nb.SRTP.RemoteSalt, nb.SRTP.Profile)
	if err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	ct, err := enc.EncryptRTP(nil, pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := dec.DecryptRTP(nil, ct, nil)
	if err != nil || !bytes.Equal(pt, pkt) {
		t.Fatalf("decrypt: %v", err)
	}
}

func TestDirectionAnswer(t *testing.T) {
	for in, want := range map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive} {
		if got := in.Answer(); got != want {
			t.Errorf("%v.Answer() = %v, want %v", in, got, want)
		}
	}
}

func TestWarningHeader(t *testing.T) {
	e := &NegotiationError{Status: 488, Code: 305, Warning: `Incompatible media format: "x"`}
	if got := e.WarningHeader("tgsip.example.net"); got != `305 tgsip.example.net "Incompatible media format: \"x\""` {
		t.Fatalf("got %s", got)
	}
	if !strings.Contains(e.Error(), "488") {
		t.Fatal(e.Error())
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"codec":  func(c *Config) { c.Codecs = []string{"G729"} },
		"suite":  func(c *Config) { c.Suites = []Suite{"AES_CM_256_HMAC_SHA1_80"} },
		"ptime":  func(c *Config) { c.PTime = 25 },
		"policy": func(c *Config) { c.SRTP = 7 },
		"addr":   func(c *Config) { c.Addr = netip.IPv4Unspecified() },
	} {
		c := DefaultConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func BenchmarkAnswer(b *testing.B) {
	cfg := DefaultConfig()
	cfg.SRTP = SRTPOptional
	b.ReportAllocs()
	for b.Loop() {
		s := NewSession(cfg, localRTP, nil)
		if _, _, err := s.Answer(freeswitchSAVPOffer); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSRTPPolicyText(t *testing.T) {
	for _, p := range []SRTPPolicy{SRTPOff, SRTPOptional, SRTPRequired} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back SRTPPolicy
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Fatalf("%s: round trip gave %v, %v", b, back, err)
		}
	}
	var p SRTPPolicy
	if p.UnmarshalText([]byte("Required")) != nil || p != SRTPRequired {
		t.Fatal("case-insensitive spelling refused")
	}
	if p.UnmarshalText([]byte("sometimes")) == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := SRTPPolicy(9).MarshalText(); err == nil {
		t.Fatal("unknown policy marshalled")
	}
}

// TestOfferFitsUDP: with every codec and every suite configured, our SRTP
// offer stays small enough that the INVITE carrying it (with typical
// headers, ~500 bytes) is under the 1300 bytes at which RFC 3261 §18.1.1
// would move it from UDP to TCP.
func TestOfferFitsUDP(t *testing.T) {
	o := newTestSession(func(c *Config) {
		c.SRTP = SRTPRequired
		c.Suites = slices.Clone(DefaultSuites)
	}).Offer(SendRecv)
	if len(o) > 700 {
		t.Errorf("SRTP offer is %d bytes, want at most 700:\n%s", len(o), o)
	}
}
