package sip

import (
	"errors"
	"testing"
)

// calls returns a channel fed with every inbound call of s.
func calls(s *Server, f func(*InboundCall)) <-chan *InboundCall {
	ch := make(chan *InboundCall, 4)
	s.OnCall(func(c *InboundCall) {
		ch <- c
		if f != nil {
			f(c)
		}
	})
	return ch
}

func udpAddr(t *testing.T, s *Server) (a interface{ String() string }) {
	t.Helper()
	ap, ok := s.Addr(UDP)
	if !ok {
		t.Fatal("no udp listener")
	}
	return ap
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
