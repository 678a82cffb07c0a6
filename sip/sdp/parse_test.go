package sdp

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseAsterisk(t *testing.T) {
	m, err := Parse(asteriskOffer)
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr != netip.MustParseAddrPort("203.0.113.10:14562") || m.RTCPAddr != netip.MustParseAddrPort("203.0.113.10:14563") {
		t.Fatalf("addr %v rtcp %v", m.Addr, m.RTCPAddr)
	}
	if m.Proto != "RTP/AVP" || m.PTime != 20 || m.MaxPTime != 150 || m.Direction != SendRecv || m.RTCPMux || m.Ice {
		t.Fatalf("unexpected media %+v", m)
	}
	want := []Codec{
		{Name: PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1},
		{Name: PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1},
		{Name: G722, PayloadType: 9, ClockRate: 8000, Channels: 1},
		{Name: TelephoneEvent, PayloadType: 101, ClockRate: 8000, Channels: 1, Fmtp: "0-16"},
	}
	if len(m.Codecs) != len(want) {
		t.Fatalf("codecs %v", m.Codecs)
	}
	for i := range want {
		if m.Codecs[i] != want[i] {
			t.Errorf("codec %d = %+v, want %+v", i, m.Codecs[i], want[i])
		}
	}
	if m.DTMF == nil || *m.DTMF != want[3] {
		t.Fatalf("DTMF = %v", m.DTMF)
	}
}

func TestParseFreeSWITCH(t *testing.T) {
	m, err := Parse(freeswitchSAVPOffer)
	if err != nil {
		t.Fatal(err)
	}
	if m.Proto != "RTP/SAVP" || len(m.Crypto) != 4 || m.BadCrypto != 0 {
		t.Fatalf("proto %s crypto %d bad %d", m.Proto, len(m.Crypto), m.BadCrypto)
	}
	if m.Crypto[0].Suite != AES256CMHMACSHA180 || m.Crypto[2].Tag != 3 {
		t.Fatalf("crypto order lost: %v", m.Crypto)
	}
	if m.RTCPAddr != netip.MustParseAddrPort("198.51.100.7:26781") {
		t.Fatalf("rtcp %v", m.RTCPAddr)
	}
	opus := m.Codecs[0]
	if opus.Name != Opus || opus.PayloadType != 102 || opus.ClockRate != 48000 || opus.Channels != 2 || opus.Fmtp == "" {
		t.Fatalf("opus = %+v", opus)
	}
	if m.Codecs[5].Name != "CN" {
		t.Fatalf("CN missing: %v", m.Codecs)
	}
}

func TestParseCases(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, m *Media)
		err   error
	}{
		{"media-level c= wins", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n", func(t *testing.T, m *Media) {
			if m.Addr != netip.MustParseAddrPort("192.0.2.9:4000") {
				t.Fatal(m.Addr)
			}
		}, nil},
		{"ipv6", head + "c=IN IP6 2001:db8::5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n", func(t *testing.T, m *Media) {
			if m.Addr != netip.MustParseAddrPort("[2001:db8::5]:4000") || m.Codecs[0].Name != PCMA {
				t.Fatal(m.Addr, m.Codecs)
			}
		}, nil},
		{"static types without rtpmap", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9 0 8 18 97\r\n", func(t *testing.T, m *Media) {
			// 97 has no rtpmap: cannot be identified, skipped.
			if len(m.Codecs) != 4 || m.Codecs[0].Name != G722 || m.Codecs[0].ClockRate != 8000 || m.Codecs[3].Name != "G729" {
				t.Fatal(m.Codecs)
			}
		}, nil},
		{"session direction, media overrides", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n", func(t *testing.T, m *Media) {
			if m.Direction != Inactive {
				t.Fatal(m.Direction)
			}
		}, nil},
		{"session direction applies", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n", func(t *testing.T, m *Media) {
			if m.Direction != SendOnly {
				t.Fatal(m.Direction)
			}
		}, nil},
		{"rtcp port only, rtcp-mux", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005\r\na=rtcp-mux\r\n", func(t *testing.T, m *Media) {
			if m.RTCPAddr != netip.MustParseAddrPort("192.0.2.1:4005") || !m.RTCPMux {
				t.Fatal(m.RTCPAddr, m.RTCPMux)
			}
		}, nil},
		{"rtcp with ipv6 address", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP6 2001:db8::1\r\n", func(t *testing.T, m *Media) {
			if m.RTCPAddr != netip.MustParseAddrPort("[2001:db8::1]:4001") {
				t.Fatal(m.RTCPAddr)
			}
		}, nil},
		{"case-insensitive names, fractional ptime", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 100 101\r\na=rtpmap:100 OPUS/48000/2\r\na=rtpmap:101 Telephone-Event/48000\r\na=ptime:20.0\r\n", func(t *testing.T, m *Media) {
			if m.Codecs[0].Name != Opus || m.DTMF == nil || m.DTMF.ClockRate != 48000 || m.PTime != 20 {
				t.Fatal(m.Codecs, m.PTime)
			}
		}, nil},
		{"ice and bad crypto noted", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\na=ice-ufrag:abcd\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:" + padded(30) + "\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + padded(30) + "\r\n", func(t *testing.T, m *Media) {
			if !m.Ice || m.BadCrypto != 1 || len(m.Crypto) != 1 || m.Crypto[0].Tag != 2 {
				t.Fatal(m.Ice, m.BadCrypto, m.Crypto)
			}
		}, nil},
		{"port zero is reported", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", func(t *testing.T, m *Media) {
			if m.Addr.Port() != 0 {
				t.Fatal(m.Addr)
			}
		}, nil},
		{"first active audio after a rejected one", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=video 0 RTP/AVP 31\r\nm=audio 0 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 8\r\n", func(t *testing.T, m *Media) {
			if m.Index != 2 || m.Addr.Port() != 4002 {
				t.Fatal(m.Index, m.Addr)
			}
		}, nil},
		{"out-of-order lines tolerated", "v=0\no=- 1 1 IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\na=sendonly\nc=IN IP4 192.0.2.1\ns=-\n", func(t *testing.T, m *Media) {
			if m.Addr != netip.MustParseAddrPort("192.0.2.1:4000") || m.Direction != SendOnly {
				t.Fatal(m.Addr, m.Direction)
			}
		}, nil},
		{"t38 only", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=image 4000 udptl t38\r\n", nil, ErrNoAudio},
		{"no m-line", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\n", nil, ErrNoAudio},
		{"empty", "", nil, ErrMalformed},
		{"not sdp", "hello world", nil, ErrMalformed},
		{"wrong version", "v=1\r\n", nil, ErrMalformed},
		{"no c= anywhere", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", nil, ErrMalformed},
		{"hostname in c=", head + "c=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", nil, ErrMalformed},
		{"bad port", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", nil, ErrMalformed},
		{"short m-line", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000\r\n", nil, ErrMalformed},
		{"garbage line", head + "this is not sdp\r\n", nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	body := make([]byte, MaxBodySize+1)
	if _, err := Parse(body); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}
