package sip

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestHangupAsTheAnswerArrives: Hangup called while the PBX's 200 is on
// its way (its transaction already handed it over, the call not yet up)
// must still end the call: the ACK goes out and a BYE follows. On the
// leg before the per-call loop the hang-up went into a CANCEL channel
// that nobody read any more, and the call came up and stayed up (it
// failed within about ten calls). The PBX answers at once and the hang-up
// follows its 200 after 0 to ~400 µs, to land in that window.
func TestHangupAsTheAnswerArrives(t *testing.T) {
	pbx := newTestServer(t, nil)
	answered := make(chan *InboundCall, 1)
	calls(pbx, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
		answered <- c
	})
	start(t, pbx)
	ap, _ := pbx.Addr(UDP)
	s := newTestServer(t, func(c *Config) { c.Outbound.URI = fmt.Sprintf("sip:%s", ap) })
	start(t, s)
	for i := range 150 {
		out, err := s.Dial(context.Background(), DialRequest{To: "2000"})
		if err != nil {
			t.Fatal(err)
		}
		in := waitFor(t, answered, "the PBX's call")
		for end := time.Now().Add(time.Duration(i%8) * 50 * time.Microsecond); time.Now().Before(end); {
		}
		out.Hangup(Reason{Protocol: "Q.850", Cause: 16})
		select {
		case <-out.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d: Hangup as the 200 arrived did not end the call", i)
		}
		select {
		case <-in.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d: the PBX's call is still up after our hang-up", i)
		}
	}
	waitNoCalls(t, s)
	waitNoCalls(t, pbx)
}
