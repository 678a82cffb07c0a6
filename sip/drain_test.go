package sip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestDrain: after Drain a new INVITE gets 503 with Retry-After and an
// OPTIONS probe 503, while the call already up goes on until its BYE.
func TestDrain(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	ap, _ := s.Addr(UDP)
	u := newUAC(t)
	dua := sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "uac", Host: "127.0.0.1", Port: u.addr.Port}}}
	target := sip.Uri{Scheme: "sip", User: "1000", Host: ap.Addr().String(), Port: int(ap.Port())}
	ct := sip.NewHeader("Content-Type", "application/sdp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	invite := func() (*sipgo.DialogClientSession, error) {
		sess, err := dua.Invite(ctx, target, []byte(benchOffer), ct)
		if err != nil {
			t.Fatal(err)
		}
		return sess, sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	}
	probe := func() int {
		res, err := u.cli.Do(ctx, sip.NewRequest(sip.OPTIONS, target))
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	first, err := invite()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, got, "first call")
	if code := probe(); code != 200 {
		t.Errorf("OPTIONS before the drain: %d, want 200", code)
	}

	s.Drain()
	if code := probe(); code != 503 {
		t.Errorf("OPTIONS while draining: %d, want 503", code)
	}
	second, err := invite()
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 || de.Res.GetHeader("Retry-After") == nil {
		t.Fatalf("INVITE while draining: %v, want 503 with Retry-After", err)
	}
	second.Close()
	// The call that was up goes on: its BYE is answered.
	if err := first.Bye(ctx); err != nil {
		t.Fatalf("BYE of the call up while draining: %v", err)
	}
	first.Close()
	waitNoCalls(t, s)
}
