package sip

import (
	"context"
	"sync"
	"testing"
	"time"
)

// closeAsCallRegisters makes s begin Close just before the next call
// enters the registry, after Close has taken its list of calls; closed is
// closed when Close has returned.
func closeAsCallRegisters(s *Server) (closed <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	s.beforeRegister = func() {
		once.Do(func() {
			go func() { s.Close(); close(ch) }()
			<-s.closing
			// Close reads the registry right after closing s.closing.
			time.Sleep(100 * time.Millisecond)
		})
	}
	return ch
}

// TestInboundCallAsCloseBegins: an INVITE that passed the closing check
// when Close began is registered after Close ended the calls it knew of.
// It must still end (503, never reaching OnCall), or Close waits for its
// loop forever.
func TestInboundCallAsCloseBegins(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, func(c *InboundCall) { <-c.Done() }) // a b2bua waiting for the end
	closed := closeAsCallRegisters(s)
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := u.cli.TransactionRequest(ctx, u.invite(s, "close-race-in"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("Close still waits for a call registered after it began")
		c := waitFor(t, got, "call")
		c.Reject(480, "test over")
		<-closed
	}
	select {
	case c := <-got:
		t.Errorf("call %s reached OnCall during Close", c.ID)
	default:
	}
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if res.StatusCode != 503 {
				t.Errorf("INVITE answered %d, want 503", res.StatusCode)
			}
		case <-tx.Done():
			t.Error("no final response to the INVITE")
		}
		break
	}
}

// TestDialAsCloseBegins: a Dial that passed the closing check when Close
// began refuses the call and sends no INVITE, and Close returns.
func TestDialAsCloseBegins(t *testing.T) {
	pbx := newTestServer(t, nil)
	got := calls(pbx, answerer(t))
	start(t, pbx)
	ap, _ := pbx.Addr(UDP)
	s := pbxServer(t, int(ap.Port()), nil)
	closed := closeAsCallRegisters(s)
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("Close still waits for a call registered after it began")
		if c != nil {
			c.Hangup(Reason{})
		}
		<-closed
	}
	if err == nil {
		t.Error("Dial succeeded while the server closed")
	}
	if c != nil {
		if ce := endOf(t, c); ce.Cause != CauseShutdown {
			t.Errorf("end = %v", ce)
		}
	}
	select {
	case pc := <-got:
		t.Errorf("the PBX got an INVITE (%s)", pc.ID)
		pc.Hangup(Reason{})
		endOf(t, pc)
	case <-time.After(300 * time.Millisecond):
	}
}
