package sip

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
)

// This file holds the helpers that carry test audio through a call's
// Media().Endpoint, as the media bridge will: plain G.711 µ-law RTP in and
// out, SRTP and RTCP left to the endpoint.

// toneSender writes 20 ms packets of a tone through an endpoint.
type toneSender struct {
	ep   *rtpendpoint.Endpoint
	pt   uint8
	freq float64
	pkt  rtp.Packet
	pcm  []int16
	n    int // frames sent
}

func newToneSender(ep *rtpendpoint.Endpoint, pt uint8, freq float64) *toneSender {
	const samples = g711Rate / 50
	return &toneSender{ep: ep, pt: pt, freq: freq, pcm: make([]int16, samples), pkt: rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: 4711, Timestamp: 160000, SSRC: 0x7a51b0c3, Marker: true},
		Payload: make([]byte, samples),
	}}
}

// send writes the next frame.
func (s *toneSender) send() error {
	samples := len(s.pcm)
	audiotest.Tone(s.pcm, s.freq, g711Rate, s.n*samples)
	for j, x := range s.pcm {
		s.pkt.Payload[j] = ulawEncode(x)
	}
	raw, err := s.pkt.Marshal()
	if err != nil {
		return err
	}
	if err := s.ep.WriteRTP(raw); err != nil {
		return fmt.Errorf("frame %d: %w", s.n, err)
	}
	s.n++
	s.pkt.SequenceNumber++
	s.pkt.Timestamp += uint32(samples)
	s.pkt.Marker = false
	return nil
}

// sendTone writes frames 20 ms packets of a tone through ep, paced in real
// time when paced (a peer's jitter buffer plays them), else at once.
func sendTone(ep *rtpendpoint.Endpoint, pt uint8, freq float64, frames int, paced bool) error {
	s := newToneSender(ep, pt, freq)
	var tick <-chan time.Time
	if paced {
		t := time.NewTicker(20 * time.Millisecond) // media pacing, not a wait for an event
		defer t.Stop()
		tick = t.C
	}
	for range frames {
		if err := s.send(); err != nil {
			return err
		}
		if tick != nil {
			<-tick
		}
	}
	return nil
}

// readTone reads RTP through ep, skips the first skip audio packets of
// payload type pt and returns the decoded µ-law of the next keep. Other
// payload types (telephone-event, comfort noise) are passed over.
func readTone(ep *rtpendpoint.Endpoint, pt uint8, skip, keep int) ([]int16, error) {
	var pcm []int16
	buf := make([]byte, 1500)
	for seen := 0; seen < skip+keep; {
		n, err := ep.ReadRTP(buf)
		if err != nil {
			return pcm, fmt.Errorf("after %d packets: %w", seen, err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			return pcm, fmt.Errorf("packet %d: %w", seen, err)
		}
		if p.PayloadType != pt {
			continue
		}
		seen++
		if seen <= skip {
			continue
		}
		for _, b := range p.Payload {
			pcm = append(pcm, ulawDecode(b))
		}
	}
	return pcm, nil
}

type toneResult struct {
	pcm []int16
	err error
}

// goReadTone runs readTone on its own goroutine. The reader ends with the
// call at the latest (the call's end closes the endpoint), so a test that
// gives up waiting leaves nothing behind once its server is closed.
func goReadTone(ep *rtpendpoint.Endpoint, pt uint8, skip, keep int) <-chan toneResult {
	ch := make(chan toneResult, 1)
	go func() {
		pcm, err := readTone(ep, pt, skip, keep)
		ch <- toneResult{pcm, err}
	}()
	return ch
}

// checkTone fails t unless pcm's dominant frequency is freq.
func checkTone(t *testing.T, what string, pcm []int16, freq float64) {
	t.Helper()
	f, prom := audiotest.DominantFrequency(pcm, g711Rate, 100, 3500, 10)
	t.Logf("%s: %d samples, dominant %v Hz (prominence %.0f)", what, len(pcm), f, prom)
	if math.Abs(f-freq) > 20 || prom < 10 {
		t.Errorf("%s: dominant %v Hz (prominence %.1f), want %v Hz", what, f, prom, freq)
	}
}

// echoTone sends a second of a freq Hz tone through the call's endpoint
// to the peer, where sipp echoes it (-rtp_echo), and checks the tone that
// comes back through the endpoint: media flows both ways on the
// negotiated path, protected as negotiated.
func echoTone(t *testing.T, m Media, freq float64) {
	t.Helper()
	if m.Endpoint == nil {
		t.Fatal("no RTP endpoint after the answer")
	}
	const frames = 50
	rx := goReadTone(m.Endpoint, m.Codec.PayloadType, 0, frames*9/10)
	if err := sendTone(m.Endpoint, m.Codec.PayloadType, freq, frames, false); err != nil {
		t.Fatal(err)
	}
	r := waitFor(t, rx, "the echoed tone")
	if r.err != nil {
		t.Fatalf("echo: %v (stats %+v)", r.err, m.Endpoint.Stats())
	}
	checkTone(t, "echoed audio", r.pcm, freq)
}

// checkEndpointClosed checks what the call's end did to its endpoint:
// ReadRTP fails with net.ErrClosed and the RTCP BYE went out.
func checkEndpointClosed(t *testing.T, ep *rtpendpoint.Endpoint) {
	t.Helper()
	if _, err := ep.ReadRTP(make([]byte, 1500)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadRTP after the call ended: %v, want net.ErrClosed", err)
	}
	if err := ep.WriteRTP([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteRTP after the call ended: %v, want net.ErrClosed", err)
	}
	if st := ep.Stats(); st.RTCPSent == 0 {
		t.Errorf("no RTCP sent, not even the BYE: %+v", st)
	}
}

// TestSippOutboundSRTPEcho: a call to a PBX (sipp) over SDES-SRTP carries
// a tone both ways through the call's endpoint; the call's end closes the
// endpoint.
func TestSippOutboundSRTPEcho(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_srtp_echo.xml", Args: []string{"-rtp_echo"}})
	s := pbxServer(t, port, func(c *Config) {
		c.Media = sdp.DefaultConfig()
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
	m := c.Media()
	if m.SRTP == nil {
		t.Fatal("no SRTP negotiated")
	}
	echoTone(t, m, 1200)
	st := m.Endpoint.Stats()
	if st.SRTPProfile != "SRTP_AES128_CM_HMAC_SHA1_80" || st.Received.AuthFailures != 0 || st.Received.Packets < 45 {
		t.Errorf("endpoint stats: %+v", st)
	}
	c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
	checkEndpointClosed(t, m.Endpoint)
}

// TestSymmetricRTPConfig: symmetric_rtp decodes strictly per trunk and for
// outbound, and a trunk that latches without required SRTP is warned about
// (plain RTP latches onto whoever sends first).
func TestSymmetricRTPConfig(t *testing.T) {
	var c Config
	doc := "trunks:\n  - {name: a, allow: [10.0.0.0/8], symmetric_rtp: true, srtp: required}\n  - {name: b, allow: [10.0.0.0/8], symmetric_rtp: true}\noutbound: {symmetric_rtp: true}\n"
	if err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.DisallowUnknownField(), yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if !c.Trunks[0].SymmetricRTP || !c.Trunks[1].SymmetricRTP || !c.Outbound.SymmetricRTP {
		t.Errorf("decoded %+v", c)
	}
	if err := yaml.UnmarshalWithOptions([]byte("trunks: [{name: a, symmetric_rtp: sometimes}]\n"), &c, yaml.DisallowUnknownField(), yaml.Strict()); err == nil {
		t.Error("symmetric_rtp: sometimes decoded")
	}
	_, lg := newLoggedServer(t, func(cfg *Config) {
		cfg.Media = sdp.DefaultConfig() // srtp optional
		cfg.Trunks = append(cfg.Trunks, c.Trunks...)
		cfg.Outbound.SymmetricRTP = true
	})
	var warned []string
	for _, l := range strings.Split(lg.String(), "\n") {
		if strings.Contains(l, "symmetric_rtp without srtp") {
			warned = append(warned, l[strings.LastIndex(l, " ")+1:])
		}
	}
	if strings.Join(warned, ",") != "trunk=b,trunk=outbound" {
		t.Errorf("warned about %v, want trunk b and outbound", warned)
	}
}
