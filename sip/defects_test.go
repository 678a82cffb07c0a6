package sip

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// startPBXSipp starts a sipp UAS scenario as the PBX on tp (udp or tcp)
// and, for TCP, waits until it accepts connections (TCP requests are not
// retransmitted).
func startPBXSipp(t *testing.T, tp Transport, r sippRun) (port int, wait func() error) {
	t.Helper()
	if tp != TCP {
		return startSipp(t, r)
	}
	r.Port = freeUDPPort(t) // sipp listens on TCP at the same number
	r.Args = append(r.Args, "-t", "t1")
	port, wait = startSipp(t, r)
	waitUntil(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "sipp TCP listener")
	return port, wait
}

// echoTone sends a second of a freq Hz tone as plain G.711 µ-law RTP to
// m.Remote, where sipp echoes it (-rtp_echo), and checks the tone that
// comes back on our socket: media flows both ways on the negotiated path.
func echoTone(t *testing.T, m Media, freq float64) {
	t.Helper()
	const samples = g711Rate / 50
	const frames = 50
	pcm := make([]int16, samples)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: m.Codec.PayloadType, SequenceNumber: 100, Timestamp: 8000, SSRC: 0x5eed}, Payload: make([]byte, samples)}
	for i := range frames {
		audiotest.Tone(pcm, freq, g711Rate, i*samples)
		for j, x := range pcm {
			pkt.Payload[j] = ulawEncode(x)
		}
		raw, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Conn.WriteToUDPAddrPort(raw, m.Remote); err != nil {
			t.Fatal(err)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += samples
	}
	defer m.Conn.SetReadDeadline(time.Time{}) //nolint:errcheck // the socket outlives this reader
	if err := m.Conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []int16
	buf := make([]byte, 1500)
	for n := 0; n < frames*9/10; n++ {
		k, _, err := m.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("echo %d of %d: %v", n, frames, err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:k]); err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Payload {
			got = append(got, ulawDecode(b))
		}
	}
	f, prom := audiotest.DominantFrequency(got, g711Rate, 100, 3500, 10)
	if math.Abs(f-freq) > 20 || prom < 10 {
		t.Errorf("echoed audio: %v Hz (prominence %.1f), want %v Hz", f, prom, freq)
	}
}

// TestSippOutboundEarlyMediaUnreliable: the PBX sends 183 with SDP and no
// 100rel, then a 200 whose SDP repeats the 183's (same o= version) or
// replaces it. Neither is a second answer (RFC 3264 §8, RFC 6337 §3.1.1):
// the call stays up and audio flows on the 200's media.
func TestSippOutboundEarlyMediaUnreliable(t *testing.T) {
	for _, tc := range []struct {
		name, ver, pt, codec string
		tp                   Transport
	}{
		{"same SDP", "1", "0", "PCMU", UDP},
		{"changed SDP", "2", "8", "PCMA", UDP},
		{"same SDP over TCP", "1", "0", "PCMU", TCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, wait := startPBXSipp(t, tc.tp, sippRun{Scenario: "uas_early_media.xml", Args: []string{
				"-rtp_echo", "-key", "ver", tc.ver, "-key", "pt", tc.pt, "-key", "codec", tc.codec,
			}})
			s := pbxServer(t, port, func(c *Config) {
				c.Outbound.URI += ";transport=" + tc.tp.network()
			})
			start(t, s)
			c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
			if err != nil {
				t.Fatal(err)
			}
			for ev := range c.Progress() {
				if ev.Status == 183 {
					if !ev.EarlyMedia {
						t.Error("183 with SDP not taken as early media")
					}
					break
				}
			}
			select {
			case <-c.Answered():
			case <-c.Done():
				t.Fatalf("call ended instead of being answered: %v", c.Err())
			case <-time.After(15 * time.Second):
				t.Fatal("no answer")
			}
			m := c.Media()
			if m.Codec.Name != tc.codec {
				t.Errorf("codec after the 200: %q, want %q", m.Codec.Name, tc.codec)
			}
			echoTone(t, m, 800)
			select {
			case <-c.Done():
				t.Fatalf("call ended: %v", c.Err())
			default:
			}
			c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
			if ce := endOf(t, c); ce.Cause != CauseNormal || ce.Remote {
				t.Errorf("end = %v", ce)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			waitNoCalls(t, s)
		})
	}
}

// TestLogSaysWhyTLSCallEnded: a call to a PBX whose certificate we do not
// trust ends with a transport error, and the "call ended" line of the log
// carries the x509 reason, not only the cause.
func TestLogSaysWhyTLSCallEnded(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t)
	pbx := newTestServer(t, func(c *Config) {
		c.Listen = append(c.Listen, ListenConfig{Transport: TLS, Addr: netip.MustParseAddrPort("127.0.0.1:0"), CertFile: certFile, KeyFile: keyFile})
	})
	calls(pbx, func(c *InboundCall) { t.Error("the PBX got a call over an unverified connection") })
	start(t, pbx)
	ap, _ := pbx.Addr(TLS)
	s, lg := newLoggedServer(t, func(c *Config) { c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d;transport=tls", ap.Port()) })
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseTransport {
		t.Fatalf("end = %v", ce)
	}
	var line string
	// Done closes just before the line is written.
	waitUntil(t, func() bool {
		for _, l := range strings.Split(lg.String(), "\n") {
			if strings.Contains(l, `msg="call ended"`) {
				line = l
				return true
			}
		}
		return false
	}, "the call ended log line")
	if !strings.Contains(line, "x509") || !strings.Contains(line, "cause=\"transport error\"") {
		t.Errorf("call ended line does not say why: %q", line)
	}
	waitNoCalls(t, s)
}

// TestSippOutbound422Retry: the PBX's Min-SE is above our Session-Expires;
// its 422 makes us retry the INVITE with the raised interval, a new CSeq
// and the same Call-ID (RFC 4028 §7.4), and the retry is answered.
func TestSippOutbound422Retry(t *testing.T) {
	for _, tp := range []Transport{UDP, TCP} {
		t.Run(string(tp), func(t *testing.T) { test422Retry(t, tp) })
	}
}

func test422Retry(t *testing.T, tp Transport) {
	port, wait := startPBXSipp(t, tp, sippRun{Scenario: "uas_422_retry.xml"})
	s := pbxServer(t, port, func(c *Config) {
		c.Outbound.URI += ";transport=" + tp.network()
		c.SessionTimers.Expires = 90 * time.Second
		c.SessionTimers.MinSE = 90 * time.Second
	})
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	firstCSeq := c.invite.CSeq().SeqNo
	c.mu.Unlock()
	select {
	case <-c.Answered():
	case <-c.Done():
		t.Fatalf("call ended instead of being retried: %v", c.Err())
	case <-time.After(15 * time.Second):
		t.Fatal("no answer")
	}
	c.mu.Lock()
	retry := c.invite
	timer := c.timer
	c.mu.Unlock()
	if retry.CSeq().SeqNo <= firstCSeq || retry.CallID().Value() != c.CallID {
		t.Errorf("retry CSeq %d (first %d), Call-ID %q", retry.CSeq().SeqNo, firstCSeq, retry.CallID().Value())
	}
	if timer == nil || timer.interval != 1800*time.Second {
		t.Errorf("session timer after the retry: %+v", timer)
	}
	c.Hangup(Reason{})
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

// TestSippOutboundRefresh422: a 422 to our session refresh makes us send
// the refresh again at once with the raised interval (RFC 4028 §7.4).
func TestSippOutboundRefresh422(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_session_timer_422.xml"})
	s := pbxServer(t, port, func(c *Config) {
		c.SessionTimers.Expires = 90 * time.Second
		c.SessionTimers.MinSE = time.Second
	})
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	waitUntil(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.leg.refreshes > 0
	}, "session refresh")
	c.Hangup(Reason{})
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

// TestSippOptions503: a load balancer's OPTIONS probe gets 503 with
// Retry-After while the instance is at max_calls and while it closes, and
// 200 when it has room.
func TestSippOptions503(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_answer.xml"})
	s := pbxServer(t, port, func(c *Config) { c.MaxCalls = 1 })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_options.xml", Remote: ap}); err != nil {
		t.Fatalf("with room: %v", err)
	}
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	if err := runSipp(t, sippRun{Scenario: "uac_options_503.xml", Remote: ap}); err != nil {
		t.Fatalf("at max_calls: %v", err)
	}
	waitUntil(t, func() bool { return c.reAcks.Load() == 1 }, "ACK of the retransmitted 200")
	c.Hangup(Reason{})
	endOf(t, c)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
	if err := runSipp(t, sippRun{Scenario: "uac_options.xml", Remote: ap}); err != nil {
		t.Fatalf("room again: %v", err)
	}

	// Close keeps the listeners open while work is still running; hold
	// some so the probe arrives while the server closes.
	release := make(chan struct{})
	s.goTracked(func() { <-release })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	waitUntil(t, func() bool { return s.unavailable() == "closing" }, "closing")
	err = runSipp(t, sippRun{Scenario: "uac_options_503.xml", Remote: ap})
	close(release)
	<-closed
	if err != nil {
		t.Fatalf("closing: %v", err)
	}
}

// TestSippOptionsPingIdentity: the OPTIONS ping carries the configured
// identity (the PBX matches its trunk endpoint by From user), and a 404 to
// it is a configuration problem, not a healthy PBX: down, counted, logged
// at warn once.
func TestSippOptionsPingIdentity(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_options_identity.xml", Calls: 2})
	s, lg := newLoggedServer(t, func(c *Config) {
		c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d", port)
		c.Outbound.OptionsPing = 200 * time.Millisecond
		c.Outbound.FromUser = "trunkid"
		c.Outbound.Username, c.Outbound.Password = "trunkuser", "pw"
	})
	start(t, s)
	waitUntil(t, func() bool { return s.PBX().PingRejected == 2 }, "two refused pings")
	if s.PBX().Up {
		t.Error("a PBX refusing our identity counts as up")
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(lg.String(), "PBX refuses our OPTIONS ping"); n != 1 {
		t.Errorf("refusal logged %d times, want once", n)
	}
}

// TestCloseWithUnackedAnswer: Close does not wait the 64*T1 (32 s) of an
// ACK that does not come: it sends the BYE at once, stops retransmitting
// our 200 and returns within 2 s.
func TestCloseWithUnackedAnswer(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.T1 = 500 * time.Millisecond })
	answered := make(chan error, 1)
	got := calls(s, func(c *InboundCall) { answered <- c.Answer(nil) })
	start(t, s)
	ap, _ := s.Addr(UDP)
	_, wait := startSipp(t, sippRun{Scenario: "uac_no_ack_close.xml", Remote: ap})
	c := waitFor(t, got, "call")
	if err := waitFor(t, answered, "answer"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	s.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if ce := endOf(t, c); ce.Cause != CauseShutdown {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWithUnansweredCancel: Close sends CANCEL for a ringing call to
// the PBX; the PBX never answers it, and Close still returns within 2 s.
func TestCloseWithUnansweredCancel(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_ignore_cancel.xml"})
	s := pbxServer(t, port, func(c *Config) { c.T1 = 500 * time.Millisecond })
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range c.Progress() {
		if ev.Status == 180 {
			break
		}
	}
	t0 := time.Now()
	s.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if ce := endOf(t, c); ce.Cause != CauseShutdown {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWhileTLSHandshakeHangs: a PBX that accepts our TCP connection
// but never completes the TLS handshake does not hold Close up, whether
// the call opens its connection for itself (no TLS listener) or sipgo's
// transaction does.
func TestCloseWhileTLSHandshakeHangs(t *testing.T) {
	t.Run("own connection", func(t *testing.T) { testCloseWhileTLSHandshakeHangs(t, false) })
	t.Run("with TLS listener", func(t *testing.T) { testCloseWhileTLSHandshakeHangs(t, true) })
}

func testCloseWhileTLSHandshakeHangs(t *testing.T, listener bool) {
	certFile, keyFile, _ := writeTestCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	s := newTestServer(t, func(c *Config) {
		c.Listen = c.Listen[:1] // UDP only: the call reuses its own connection
		if listener {
			c.Listen = append(c.Listen, ListenConfig{Transport: TLS, Addr: netip.MustParseAddrPort("127.0.0.1:0"), CertFile: certFile, KeyFile: keyFile})
		}
		c.Outbound.URI = fmt.Sprintf("sip:%s;transport=tls", ln.Addr())
	})
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	conn := waitFor(t, accepted, "our TLS connection")
	defer conn.Close()
	t0 := time.Now()
	s.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if ce := endOf(t, c); ce.Cause != CauseTransport {
		t.Errorf("end = %v", ce)
	}
}
