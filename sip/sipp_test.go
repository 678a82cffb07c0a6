package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/sipptest"
)

// calls returns a channel fed with every inbound call of s.
func calls(s *Server, f func(*InboundCall)) <-chan *InboundCall {
	ch := make(chan *InboundCall, 4)
	s.OnCall(func(c *InboundCall) {
		select {
		case ch <- c:
		default: // nobody is watching this many calls
		}
		if f != nil {
			f(c)
		}
	})
	return ch
}

func TestSippPlainCall(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Error(err)
		}
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	start(t, s)
	ap, _ := s.Addr(UDP)
	_, wait := startSipp(t, sippRun{Scenario: "uac_basic.xml", Remote: ap})
	c := waitFor(t, got, "inbound call")
	if c.RequestUser != "1000" || c.CallerID != "+15550001" || c.CallerName != "Alice A" || c.Transport != UDP {
		t.Errorf("call facts: user=%q caller=%q name=%q tp=%v", c.RequestUser, c.CallerID, c.CallerName, c.Transport)
	}
	waitFor(t, c.Done(), "call end")
	var ce *CallError
	if !errors.As(c.Err(), &ce) || ce.Cause != CauseNormal || !ce.Remote || ce.Reason.Cause != 16 {
		t.Errorf("end = %v", c.Err())
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if m := c.Media(); m.Codec.Name == "" || !m.Remote.IsValid() {
		t.Errorf("media = %+v", m)
	}
	waitNoCalls(t, s)
}

// answerer rings and answers every call.
// answerAtOnce answers every call with 200 and no provisional response.
func answerAtOnce(t *testing.T) func(*InboundCall) {
	return func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	}
}

func answerer(t *testing.T) func(*InboundCall) {
	return func(c *InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Error(err)
		}
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	}
}

// onMedia runs f with each media change of c (MediaChanged) until the
// call ends.
func onMedia(c interface {
	MediaChanged() <-chan Media
	Done() <-chan struct{}
}, f func(Media)) {
	go func() {
		for {
			select {
			case m := <-c.MediaChanged():
				f(m)
			case <-c.Done():
				return
			}
		}
	}()
}

func endOf(t *testing.T, c interface {
	Done() <-chan struct{}
	Err() error
}) *CallError {
	t.Helper()
	waitFor(t, c.Done(), "call end")
	var ce *CallError
	if !errors.As(c.Err(), &ce) {
		t.Fatalf("end is not a CallError: %v", c.Err())
	}
	return ce
}

func TestSippByeFromTrunk(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-c.Confirmed():
			c.Hangup(Reason{Protocol: "Q.850", Cause: 16, Text: "Normal call clearing"})
		case <-c.Done():
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_bye_from_trunk.xml"})
	c := waitFor(t, got, "call")
	if ce := endOf(t, c); ce.Cause != CauseNormal || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	finish()
}

func TestSippCancel(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Error(err)
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_cancel.xml"})
	c := waitFor(t, got, "call")
	ce := endOf(t, c)
	if ce.Cause != CauseCancelled || ce.Status != 487 || ce.Reason.Cause != 200 {
		t.Errorf("end = %v", ce)
	}
	if err := c.Answer(nil); err == nil {
		t.Error("Answer after CANCEL succeeded")
	}
	finish()
}

func TestSippHoldResume(t *testing.T) {
	s := newTestServer(t, nil)
	medias := make(chan Media, 4)
	heldDrops := make(chan uint64, 4)
	got := calls(s, func(c *InboundCall) {
		onMedia(c, func(m Media) {
			// While held, the endpoint drops what the bridge writes
			// (RFC 3264 §8.4: a recvonly side sends no media).
			if m.Endpoint != nil && !m.Direction.Sends() {
				pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xff}
				if err := m.Endpoint.WriteRTP(pkt); err != nil {
					t.Error(err)
				}
				heldDrops <- m.Endpoint.Stats().Sent.HeldDrops
			}
			medias <- m
		})
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_hold.xml"})
	c := waitFor(t, got, "call")
	held := waitFor(t, medias, "hold")
	if held.Direction.Sends() || !held.Direction.Receives() {
		t.Errorf("on hold we should only receive, direction %v", held.Direction)
	}
	if d := waitFor(t, heldDrops, "a write while held"); d != 1 {
		t.Errorf("write while held: %d held drops, want 1", d)
	}
	resumed := waitFor(t, medias, "resume")
	if !resumed.Direction.Sends() {
		t.Errorf("after resume direction %v", resumed.Direction)
	}
	if held.Endpoint == nil || resumed.Endpoint != held.Endpoint || c.Media().Endpoint != held.Endpoint {
		t.Error("hold and resume did not update the call's one endpoint")
	}
	endOf(t, c)
	finish()
}

func TestSippSessionRefresh(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_session_refresh.xml"})
	if ce := endOf(t, waitFor(t, got, "call")); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	finish()
}

func TestSippSessionExpires(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.SessionTimers.MinSE = 2 * time.Second })
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_session_expire.xml"})
	if ce := endOf(t, waitFor(t, got, "call")); ce.Cause != CauseSessionExpired || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	finish()
}

func TestSipp422(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.SessionTimers.MinSE = 90 * time.Second })
	calls(s, func(c *InboundCall) { t.Error("call reached the b2bua") })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_422.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func digestTrunk(c *Config) {
	c.Trunks = []TrunkConfig{{Name: "pbx", Username: "trunkuser", Password: "s3cret", Algorithms: []DigestAlgorithm{MD5}}}
	c.AuthLimit.Failures = 2
}

func TestSippDigest(t *testing.T) {
	s := newTestServer(t, digestTrunk)
	got := calls(s, answerer(t))
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_digest.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, got, "call")
	if c.Trunk != "pbx" {
		t.Errorf("trunk = %q", c.Trunk)
	}
	endOf(t, c)
	if n := s.Stats().Challenges.Load(); n != 1 {
		t.Errorf("challenges = %d", n)
	}
	waitNoCalls(t, s)
}

func TestSippWrongPassword(t *testing.T) {
	s := newTestServer(t, digestTrunk)
	calls(s, func(c *InboundCall) { t.Error("call reached the b2bua") })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_wrong_password.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.AuthFailures.Load() != 2 || st.Throttled.Load() != 1 || st.Forbidden.Load() != 1 {
		t.Errorf("failures=%d throttled=%d forbidden=%d", st.AuthFailures.Load(), st.Throttled.Load(), st.Forbidden.Load())
	}
	waitNoCalls(t, s)
}

func TestSippUnknownSource(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.Trunks = []TrunkConfig{{Name: "far", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	})
	calls(s, func(c *InboundCall) { t.Error("call reached the b2bua") })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_forbidden.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	if s.Stats().UnknownPeer.Load() != 1 {
		t.Error("unknown peer not counted")
	}
	waitNoCalls(t, s)
}

func TestSippNoCommonCodec(t *testing.T) {
	s := newTestServer(t, nil)
	calls(s, func(c *InboundCall) { t.Error("call reached the b2bua") })
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_no_codec.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippOptions(t *testing.T) {
	s := newTestServer(t, nil)
	start(t, s)
	for _, tp := range []Transport{UDP, TCP} {
		ap, _ := s.Addr(tp)
		if err := runSipp(t, sippRun{Scenario: "uac_options.xml", Remote: ap, Args: []string{"-t", map[Transport]string{UDP: "u1", TCP: "t1"}[tp]}}); err != nil {
			t.Fatalf("%s: %v", tp, err)
		}
	}
}

func TestSippInfoDTMF(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_info_dtmf.xml"})
	c := waitFor(t, got, "call")
	d := waitFor(t, c.DTMF(), "dtmf")
	if d.Digit != '5' || d.Duration != 160*time.Millisecond {
		t.Errorf("dtmf = %+v", d)
	}
	endOf(t, c)
	finish()
}

func TestSipp100rel(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_100rel.xml"})
	endOf(t, waitFor(t, got, "call"))
	finish()
}

func TestSippPlainCallTCP(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerer(t))
	start(t, s)
	ap, _ := s.Addr(TCP)
	if err := runSipp(t, sippRun{Scenario: "uac_basic.xml", Remote: ap, Args: []string{"-t", "t1"}}); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, got, "call")
	if c.Transport != TCP {
		t.Errorf("transport = %v", c.Transport)
	}
	endOf(t, c)
	waitNoCalls(t, s)
}

// pbxServer is a server whose outbound PBX is a sipp UAS on port.
func pbxServer(t *testing.T, port int, mutate func(*Config)) *Server {
	return newTestServer(t, func(c *Config) {
		c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d", port)
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestSippOutboundAnswerAndBye(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_answer.xml"})
	s := pbxServer(t, port, nil)
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000", FromUser: "+15550002", FromName: "Telegram Bob"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	if m := c.Media(); m.Codec.Name != "PCMU" || !m.Remote.IsValid() {
		t.Errorf("media = %+v", m.Negotiated)
	}
	// sipp sends a second copy of the 200 and wants its ACK before our BYE.
	waitUntil(t, func() bool { return c.reAcks.Load() == 1 }, "ACK of the retransmitted 200")
	c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
	if ce := endOf(t, c); ce.Cause != CauseNormal || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippOutboundBusy(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_busy.xml"})
	s := pbxServer(t, port, nil)
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	ce := endOf(t, c)
	if ce.Status != 486 || ce.Cause != CauseRejected || !ce.Remote || ce.Reason.Cause != 17 {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippOutboundDigest(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_digest.xml"})
	s := pbxServer(t, port, func(c *Config) { c.Outbound.Username, c.Outbound.Password = "out", "outpw" })
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Answered():
	case <-c.Done():
		t.Fatalf("call ended: %v", c.Err())
	}
	c.Hangup(Reason{})
	endOf(t, c)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippOutboundCancelRace(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_cancel_race.xml"})
	s := pbxServer(t, port, nil)
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
	c.Hangup(Reason{Protocol: "SIP", Cause: 487, Text: "Telegram caller hung up"})
	if ce := endOf(t, c); ce.Cause != CauseCancelled {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippNoAck(t *testing.T) {
	s := newTestServer(t, nil) // T1 100 ms: the 200 is retransmitted, BYE after 6.4 s
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_no_ack.xml"})
	if ce := endOf(t, waitFor(t, got, "call")); ce.Cause != CauseACKTimeout || ce.Remote {
		t.Errorf("end = %v", ce)
	}
	finish()
}

func TestSippByeBeforeAck(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerer(t))
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_bye_before_ack.xml"})
	if ce := endOf(t, waitFor(t, got, "call")); ce.Cause != CauseNormal || !ce.Remote {
		t.Errorf("end = %v", ce)
	}
	finish()
}

func TestSippRegister(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_register.xml"})
	s := pbxServer(t, port, func(c *Config) {
		c.Outbound.Register = true
		c.Outbound.Username, c.Outbound.Password = "trunk", "trunkpw"
		c.Outbound.RegisterExpires = 60 * time.Second
	})
	start(t, s)
	waitUntil(t, func() bool { return s.PBX().Registered }, "registration")
	// sipp passes only once it got the refresh at 3/4 of the 2 s binding.
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSippOptionsPing(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_options.xml"})
	s := pbxServer(t, port, func(c *Config) { c.Outbound.OptionsPing = 300 * time.Millisecond })
	start(t, s)
	waitUntil(t, func() bool { return s.PBX().Up }, "PBX up")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// sipp has exited: the next pings go unanswered.
	waitUntil(t, func() bool { return !s.PBX().Up }, "PBX down")
}

func TestSippEarlyMedia100rel(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) {
		if err := c.Progress(nil); err != nil {
			t.Error(err)
		}
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_183_100rel.xml"})
	endOf(t, waitFor(t, got, "call"))
	finish()
}

func TestSippOutboundSessionTimer(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_session_timer.xml"})
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

// holdOnAnswer runs scenario against a server that answers the call and,
// once it is confirmed, puts it on hold with a re-INVITE of its own; it
// returns the call after that re-INVITE completed.
func holdOnAnswer(t *testing.T, scenario string) (c *InboundCall, finish func()) {
	t.Helper()
	s := newTestServer(t, nil)
	held := make(chan error, 1)
	got := calls(s, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
			return
		}
		<-c.Confirmed()
		held <- c.Reoffer(true)
	})
	finish = sippAgainst(t, s, sippRun{Scenario: scenario})
	c = waitFor(t, got, "call")
	if err := waitFor(t, held, "our re-INVITE"); err != nil {
		t.Fatal(err)
	}
	return c, finish
}

func TestSippHoldByTrunk(t *testing.T) {
	c, finish := holdOnAnswer(t, "uac_hold_by_trunk.xml")
	if m := c.Media(); !m.Direction.Sends() || m.Direction.Receives() {
		t.Errorf("on hold we only send; direction %v", m.Direction)
	}
	endOf(t, c)
	finish()
}

// TestSippGlare: the peer's re-INVITE crosses ours (uac_glare.xml checks
// our 491, RFC 3261 §14.2).
func TestSippGlare(t *testing.T) {
	c, finish := holdOnAnswer(t, "uac_glare.xml")
	endOf(t, c)
	finish()
}

func TestSippRecordRoute(t *testing.T) {
	s := newTestServer(t, nil)
	calls(s, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-c.Confirmed():
			c.Hangup(Reason{Protocol: "Q.850", Cause: 16, Text: "Normal call clearing"})
		case <-c.Done():
		}
	})
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_record_route.xml", Remote: ap}); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

func TestSippLateOffer(t *testing.T) {
	s := newTestServer(t, nil)
	medias := make(chan Media, 2)
	got := calls(s, func(c *InboundCall) {
		if m := c.Media(); m.Endpoint != nil {
			t.Error("an endpoint before any answer to our offer")
		}
		onMedia(c, func(m Media) { medias <- m })
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	finish := sippAgainst(t, s, sippRun{Scenario: "uac_late_offer.xml"})
	c := waitFor(t, got, "call")
	if m := waitFor(t, medias, "answer in ACK"); m.Codec.Name != "PCMA" || m.Endpoint == nil {
		t.Errorf("from the ACK's answer: codec %q, endpoint %v", m.Codec.Name, m.Endpoint != nil)
	}
	endOf(t, c)
	finish()
}

func TestSippOutboundEarlyMedia100rel(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_183_100rel.xml"})
	s := pbxServer(t, port, nil)
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
	waitFor(t, c.Answered(), "answer")
	c.Hangup(Reason{})
	endOf(t, c)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

// TestSippConcurrentCalls runs 60 plain calls, up to 20 at a time, over
// UDP and checks that every one was answered and nothing is left over.
func TestSippConcurrentCalls(t *testing.T) {
	s := newTestServer(t, nil)
	var mu sync.Mutex
	answered := 0
	s.OnCall(func(c *InboundCall) {
		if err := c.Ringing(); err != nil {
			t.Error(err)
		}
		if err := c.Answer(nil); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		answered++
		mu.Unlock()
	})
	start(t, s)
	ap, _ := s.Addr(UDP)
	if err := runSipp(t, sippRun{Scenario: "uac_basic.xml", Remote: ap, Calls: 60, Args: []string{"-r", "60", "-l", "20"}}); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
	mu.Lock()
	defer mu.Unlock()
	if answered != 60 {
		t.Errorf("answered %d of 60", answered)
	}
}

func TestSippOutboundTCP(t *testing.T) {
	port := sipptest.SignalingPort(t) // sipp listens on TCP at the same number
	_, wait := startSipp(t, sippRun{Scenario: "uas_busy.xml", Port: port, Args: []string{"-t", "t1"}})
	// TCP is not retransmitted: wait until sipp accepts connections.
	waitUntil(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "sipp TCP listener")
	s := newTestServer(t, func(c *Config) { c.Outbound.URI = fmt.Sprintf("sip:127.0.0.1:%d;transport=tcp", port) })
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Status != 486 {
		t.Errorf("end = %v", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

// TestSippReinviteAnswered481: the PBX answers our re-INVITE 481 (its BYE
// crossed it, or it restarted): the dialog is gone at the PBX, so the call
// ends as the remote's doing with status 481 and no BYE is sent into a
// dialog the PBX does not have (RFC 3261 §12.2.1.2; sipp fails the run on
// an unexpected BYE). It ended as a local transport error 408 with a BYE.
func TestSippReinviteAnswered481(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_reinvite_481.xml"})
	s := pbxServer(t, port, nil)
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000", FromUser: "+15550002"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	if err := c.Reoffer(true); err == nil {
		t.Error("a re-INVITE answered 481 returned no error")
	}
	ce := endOf(t, c)
	if ce.Status != 481 || ce.Cause != CauseDialogGone || !ce.Remote {
		t.Errorf("end = %v, want remote, dialog gone, 481", ce)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}

// TestSippOutboundReliableRetransmit: a copy of a reliable provisional
// response already PRACKed (same RSeq) and one that skips an RSeq are
// neither PRACKed nor processed (RFC 3262 §4); the next one in order is.
func TestSippOutboundReliableRetransmit(t *testing.T) {
	port, wait := startSipp(t, sippRun{Scenario: "uas_183_100rel_retransmit.xml"})
	s := pbxServer(t, port, nil)
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	timeout := time.After(15 * time.Second)
wait:
	for {
		select {
		case ev := <-c.Progress():
			seen = append(seen, ev.Status)
		case <-c.Answered():
			break wait
		case <-c.Done():
			t.Fatalf("call ended: %v", c.Err())
		case <-timeout:
			t.Fatal("no answer")
		}
	}
	for len(c.Progress()) > 0 {
		seen = append(seen, (<-c.Progress()).Status)
	}
	if fmt.Sprint(seen) != "[183 180]" {
		t.Errorf("progress events %v, want [183 180]: copies and out-of-order ones are not news", seen)
	}
	c.Hangup(Reason{})
	endOf(t, c)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, s)
}
