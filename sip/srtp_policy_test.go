package sip

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/tgsip/tgsip/sip/sdp"
)

func policy(p sdp.SRTPPolicy) *sdp.SRTPPolicy { return &p }

// srtpTrunks: the global policy is optional; sipp calling from 127.0.0.2
// meets a trunk that requires SRTP, from 127.0.0.3 one that has it off,
// from 127.0.0.1 the global policy.
func srtpTrunks(c *Config) {
	c.Media = sdp.DefaultConfig()
	c.Media.SRTP = sdp.SRTPOptional
	c.Trunks = []TrunkConfig{
		{Name: "secure", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, SRTP: policy(sdp.SRTPRequired)},
		{Name: "plain", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, SRTP: policy(sdp.SRTPOff)},
		{Name: "local", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}
}

func TestSippTrunkRequiresSRTP(t *testing.T) {
	s := newTestServer(t, srtpTrunks)
	calls(s, func(c *InboundCall) { t.Errorf("plain call from trunk %q reached the b2bua", c.Trunk) })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_srtp_plain_offer.xml", Remote: ap, Local: netip.MustParseAddr("127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippTrunkSRTPPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, from, trunk string
		crypto            bool // our answer carries a=crypto and keys
	}{
		// SRTP off: the optimistic offer's key is ignored (RFC 4568 §7.1.2 allows it on RTP/AVP).
		{"off", "127.0.0.3", "plain", false},
		// No override: the global optional policy takes the key.
		{"global optional", "127.0.0.1", "local", true},
		// Required: an optimistic offer with a usable key is fine.
		{"required", "127.0.0.2", "secure", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, srtpTrunks)
			got := calls(s, answerer(t))
			start(t, s)
			ap, _ := s.Addr(UDP)
			_, wait := startSipp(t, sippRun{Scenario: "uac_srtp_optimistic.xml", Remote: ap, Local: netip.MustParseAddr(tc.from)})
			c := waitFor(t, got, "call")
			if c.Trunk != tc.trunk {
				t.Errorf("trunk %q, want %q", c.Trunk, tc.trunk)
			}
			ans := string(c.LocalSDP())
			if !strings.Contains(ans, " RTP/AVP ") {
				t.Error("answer is not RTP/AVP")
			}
			if got := strings.Contains(ans, "\na=crypto:"); got != tc.crypto {
				t.Errorf("answer has a=crypto: %v, want %v", got, tc.crypto)
			}
			if got := c.Media().SRTP != nil; got != tc.crypto {
				t.Errorf("SRTP keys negotiated: %v, want %v", got, tc.crypto)
			}
			endOf(t, c)
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			waitNoCalls(t, s)
		})
	}
}

func TestSippOutboundSRTPOverride(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_srtp.xml"})
	s := pbxServer(t, port, func(c *Config) {
		c.Media = sdp.DefaultConfig() // global SRTP off
		// One codec and one suite keep the INVITE under the 1300 bytes
		// past which RFC 3261 §18.1.1 moves it to TCP, where this sipp
		// does not listen.
		c.Media.Codecs = []string{"PCMU"}
		c.Media.Suites = []sdp.Suite{sdp.AESCM128HMACSHA180}
		c.Outbound.SRTP = policy(sdp.SRTPRequired)
	})
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	if m := c.Media(); m.SRTP == nil || m.Codec.Name != "PCMU" {
		t.Errorf("media: SRTP %v, codec %q", m.SRTP != nil, m.Codec.Name)
	}
	c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSRTPPolicyConfig(t *testing.T) {
	base := func() Config {
		return Config{
			Listen:   []ListenConfig{{Transport: UDP, Addr: netip.MustParseAddrPort("127.0.0.1:5060")}},
			RTPPorts: PortRange{Min: 20000, Max: 20001},
			Trunks:   []TrunkConfig{{Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}},
		}.withDefaults()
	}
	for _, tc := range []struct {
		name          string
		global        sdp.SRTPPolicy
		trunk, out    *sdp.SRTPPolicy
		wantIn, wantO sdp.SRTPPolicy
		err           string
	}{
		{name: "defaults follow global", global: sdp.SRTPOptional, wantIn: sdp.SRTPOptional, wantO: sdp.SRTPOptional},
		{name: "trunk override", global: sdp.SRTPOff, trunk: policy(sdp.SRTPRequired), wantIn: sdp.SRTPRequired, wantO: sdp.SRTPOff},
		{name: "outbound override", global: sdp.SRTPRequired, out: policy(sdp.SRTPOff), wantIn: sdp.SRTPRequired, wantO: sdp.SRTPOff},
		{name: "bad trunk policy", trunk: policy(7), err: `trunks[0] "pbx": srtp policy 7`},
		{name: "bad outbound policy", out: policy(-1), err: "outbound: srtp policy -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			c.Media.SRTP = tc.global
			c.Trunks[0].SRTP = tc.trunk
			c.Outbound.SRTP = tc.out
			err := c.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Validate = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in, out := c.srtpPolicy(c.Trunks[0].SRTP), c.srtpPolicy(c.Outbound.SRTP); in != tc.wantIn || out != tc.wantO {
				t.Errorf("inbound %v outbound %v, want %v %v", in, out, tc.wantIn, tc.wantO)
			}
		})
	}
}

func TestSRTPPolicyYAML(t *testing.T) {
	const doc = `
trunks:
  - name: carrier
    allow: [192.0.2.0/24]
    srtp: required
  - name: lab
    allow: [198.51.100.0/24]
outbound:
  uri: sip:pbx.example.net
  srtp: "off"
media:
  srtp: optional
`
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if c.Trunks[0].SRTP == nil || *c.Trunks[0].SRTP != sdp.SRTPRequired {
		t.Errorf("carrier srtp = %v", c.Trunks[0].SRTP)
	}
	if c.Trunks[1].SRTP != nil {
		t.Errorf("lab srtp = %v, want unset", *c.Trunks[1].SRTP)
	}
	if c.Outbound.SRTP == nil || *c.Outbound.SRTP != sdp.SRTPOff {
		t.Errorf("outbound srtp = %v", c.Outbound.SRTP)
	}
	if c.srtpPolicy(c.Trunks[1].SRTP) != sdp.SRTPOptional {
		t.Error("lab does not follow the global policy")
	}
	if err := yaml.UnmarshalWithOptions([]byte("trunks: [{name: x, srtp: maybe}]"), &c, yaml.Strict()); err == nil {
		t.Error("srtp: maybe was accepted")
	}
}
