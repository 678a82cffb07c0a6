package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tgsip/tgsip/internal/sipptest"
)

// startPBXSipp starts a sipp UAS scenario as the PBX on tp (udp or tcp)
// and, for TCP, waits until it accepts connections (TCP requests are not
// retransmitted).
func startPBXSipp(t *testing.T, tp Transport, r sippRun) (port int, wait func() error) {
	t.Helper()
	if tp != TCP {
		return startSipp(t, r)
	}
	r.Port = sipptest.SignalingPort(t) // sipp listens on TCP at the same number
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
			// The 183's SDP made the endpoint; the 200 updates the same one.
			early := c.Media().Endpoint
			if early == nil {
				t.Fatal("no RTP endpoint for early media")
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
			if m.Endpoint != early {
				t.Error("the 200 replaced the early media's endpoint instead of updating it")
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
			checkEndpointClosed(t, m.Endpoint)
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
	s, log := newLoggedServer(t, func(c *Config) {
		c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d;transport=%s", port, tp.network())
		c.SessionTimers.Expires = 90 * time.Second
		c.SessionTimers.MinSE = 90 * time.Second
	})
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Answered():
	case <-c.Done():
		t.Fatalf("call ended instead of being retried: %v", c.Err())
	case <-time.After(15 * time.Second):
		t.Fatal("no answer")
	}
	var retry *sip.Request
	var timer *sessionTimer
	c.inspect(func() { retry, timer = c.invite, c.timer })
	// The first INVITE's CSeq comes from the retry's log line: the retry
	// may replace c.invite before Dial returns, so the test cannot read it.
	m := regexp.MustCompile(`cseq=(\d+) previous_cseq=(\d+)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no retry logged:\n%s", log)
	}
	retried, _ := strconv.Atoi(m[1])
	firstCSeq, _ := strconv.Atoi(m[2])
	if int(retry.CSeq().SeqNo) != retried || retried <= firstCSeq || retry.CallID().Value() != c.CallID {
		t.Errorf("retry CSeq %d (logged %d, first %d), Call-ID %q", retry.CSeq().SeqNo, retried, firstCSeq, retry.CallID().Value())
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
		var n int
		c.inspect(func() { n = c.refreshes })
		return n > 0
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
