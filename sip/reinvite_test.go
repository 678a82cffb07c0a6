package sip

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestReinviteBeforeAck: a re-INVITE that arrives while our 2xx to the
// previous INVITE (the initial one, or a re-INVITE) still waits for its
// ACK gets 500 with a Retry-After of 0-10 s (RFC 3261 §14.1/§14.2); once
// the ACK has come, the next re-INVITE is served.
func TestReinviteBeforeAck(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "reinvite-before-ack")
	c := waitFor(t, got, "call")
	reinvite := func(cseq uint32) *sip.Response {
		t.Helper()
		res, err := u.cli.Do(ctx, inDialog(inv, res, sip.INVITE, cseq, []byte(benchOffer)))
		if err != nil {
			t.Fatalf("re-INVITE %d: %v", cseq, err)
		}
		return res
	}
	ack := func(cseq uint32) {
		t.Helper()
		if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, cseq, nil)); err != nil {
			t.Fatal(err)
		}
	}
	want500 := func(res *sip.Response, what string) {
		t.Helper()
		if res.StatusCode != 500 {
			t.Fatalf("%s: %d, want 500", what, res.StatusCode)
		}
		h := res.GetHeader("Retry-After")
		if h == nil {
			t.Fatalf("%s: 500 without Retry-After", what)
		}
		if n, err := strconv.Atoi(h.Value()); err != nil || n < 0 || n > 10 {
			t.Fatalf("%s: Retry-After %q, want 0-10", what, h.Value())
		}
	}

	// The initial INVITE's 200 is not ACKed yet.
	want500(reinvite(2), "re-INVITE before the ACK of the initial 200")
	ack(1)
	waitFor(t, c.Confirmed(), "ACK")
	// A re-INVITE answered 200 and not yet ACKed: the next one waits too.
	if res := reinvite(3); res.StatusCode != 200 {
		t.Fatalf("re-INVITE after the ACK: %d", res.StatusCode)
	}
	want500(reinvite(4), "re-INVITE before the ACK of the previous re-INVITE's 200")
	ack(3)
	// The call is unharmed: once ACKed, the next re-INVITE is served.
	// (The ACK is a datagram of its own: retry until it has landed.)
	var last *sip.Response
	next := uint32(4)
	waitUntil(t, func() bool {
		next++
		last = reinvite(next)
		return last.StatusCode == 200
	}, "re-INVITE served after the ACK")
	ack(last.CSeq().SeqNo)
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 2000, nil)); err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// TestHangupRacesPeerBye: our Hangup and the caller's BYE cross, 20 times.
// The call's loop serialises them: the call ends once, with whichever came
// first, and leaves no dialog behind (the old code checked a state under a
// lock, unlocked, then acted on it).
func TestHangupRacesPeerBye(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends := map[bool]int{}
	for i := 0; i < 20; i++ {
		inv := u.invite(s, "hangup-bye-"+strconv.Itoa(i))
		res, err := u.cli.Do(ctx, inv)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("INVITE: %v %v", res, err)
		}
		c := waitFor(t, got, "call")
		u.ackSent.Store(true)
		if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 1, nil)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c.Confirmed(), "ACK")
		hung := make(chan struct{})
		go func() {
			defer close(hung)
			c.Hangup(Reason{Protocol: "Q.850", Cause: 16})
		}()
		bres, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 2, nil))
		if err != nil || (bres.StatusCode != 200 && bres.StatusCode != 481) {
			t.Fatalf("call %d: our BYE: %v %v", i, bres, err)
		}
		<-hung
		ce := endOf(t, c)
		if ce.Cause != CauseNormal {
			t.Fatalf("call %d: end %v", i, ce)
		}
		ends[ce.Remote]++
		// Our own BYE, if the Hangup came first, is answered by the UAC.
		if !ce.Remote {
			waitFor(t, u.byes, "our BYE")
		}
		if c.Hangup(Reason{}); c.Err() != error(ce) {
			t.Fatalf("call %d: a second end %v", i, c.Err())
		}
	}
	t.Logf("ended remotely/locally: %v", ends)
	waitNoCalls(t, s)
}

// TestReofferWhilePeerReinviteAwaitsAck: the peer's re-INVITE has our 200
// and no ACK yet, so its INVITE transaction is still in progress; RFC 3261
// §14.1 forbids a new INVITE of ours in the dialog until it completes.
// Reoffer reports glare at once instead of sending one.
func TestReofferWhilePeerReinviteAwaitsAck(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "reoffer-during-peer-reinvite")
	c := waitFor(t, got, "call")
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 1, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Confirmed(), "ACK")
	if r, err := u.cli.Do(ctx, inDialog(inv, res, sip.INVITE, 2, []byte(benchOffer))); err != nil || r.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v", r, err)
	}
	reoffer := make(chan error, 1)
	go func() { reoffer <- c.Reoffer(true) }()
	select {
	case err := <-reoffer:
		if !errors.Is(err, ErrGlare) {
			t.Errorf("Reoffer during the peer's re-INVITE: %v, want ErrGlare", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("Reoffer sent a re-INVITE while the peer's awaited its ACK")
		<-reoffer
	}
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 2, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 3, nil)); err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal || !ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// TestRefreshDueDuringReoffer: our session refresh falls due while our own
// re-INVITE (Reoffer) is pending, and the peer refuses that one with 491.
// The refresh must go out once the re-INVITE is over, not half an
// interval later: by then the peer's session has expired (RFC 4028 §10:
// it gives up at interval − min(32 s, interval/3) after the last refresh).
func TestRefreshDueDuringReoffer(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.SessionTimers.MinSE = 2 * time.Second })
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const interval = 9 * time.Second // we refresh after 4.5 s; the peer gives up after 6 s
	inv := u.invite(s, "refresh-during-reoffer")
	inv.AppendHeader(sip.NewHeader("Session-Expires", "9;refresher=uas"))
	inv.AppendHeader(sip.NewHeader("Supported", "timer"))
	res, err := u.cli.Do(ctx, inv)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE: %v %v", res, err)
	}
	if h := res.GetHeader("Session-Expires"); h == nil || h.Value() != "9;refresher=uas" {
		t.Fatalf("Session-Expires of the 200: %v", h)
	}
	c := waitFor(t, got, "call")
	var t0 time.Time
	refreshed := make(chan time.Duration, 1)
	var n atomic.Int32
	h := func(req *sip.Request, tx sip.ServerTransaction) {
		if n.Add(1) == 1 {
			// Our Reoffer: still pending when the refresh falls due.
			time.Sleep(time.Until(t0.Add(5 * time.Second)))
			tx.Respond(sip.NewResponseFromRequest(req, 491, "Request Pending", nil))
			return
		}
		refreshed <- time.Since(t0)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	t0 = time.Now()
	u.onInvite.Store(&h) // after t0: the handler reads it
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 1, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Confirmed(), "ACK")
	time.Sleep(time.Until(t0.Add(3500 * time.Millisecond)))
	if err := c.Reoffer(true); !errors.Is(err, ErrGlare) {
		t.Errorf("Reoffer: %v, want ErrGlare", err)
	}
	select {
	case d := <-refreshed:
		if expiry := interval - interval/3; d >= expiry {
			t.Errorf("refresh %v after the last one; the peer gives up at %v", d, expiry)
		}
	case <-time.After(interval):
		t.Error("no refresh")
	}
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 2, nil)); err != nil {
		t.Fatal(err)
	}
	endOf(t, c)
	waitNoCalls(t, s)
}

// TestRetransmitted2xxToOurReinvite: the peer resends its 200 to our
// re-INVITE (our ACK was lost); each copy gets the ACK of that re-INVITE
// (RFC 3261 §13.2.2.4), not the initial INVITE's nor none, or the peer
// ends the call when its 2xx times out (§13.3.1.4).
func TestRetransmitted2xxToOurReinvite(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "retransmitted-2xx-reinvite")
	c := waitFor(t, got, "call")
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 1, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Confirmed(), "ACK")
	ok200 := make(chan *sip.Response, 1)
	h := func(req *sip.Request, tx sip.ServerTransaction) {
		r := sip.NewResponseFromRequest(req, 200, "OK", []byte(benchOffer))
		r.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "race", Host: "127.0.0.1", Port: u.addr.Port}})
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		tx.Respond(r)
		ok200 <- r
	}
	u.onInvite.Store(&h)
	if err := c.Reoffer(true); err != nil {
		t.Fatal(err)
	}
	r200 := waitFor(t, ok200, "our re-INVITE")
	first := waitFor(t, u.acks, "ACK of the re-INVITE's 200")
	want := r200.CSeq().SeqNo
	if first.CSeq().SeqNo != want {
		t.Fatalf("ACK CSeq %d, want %d", first.CSeq().SeqNo, want)
	}
	// The ACK was lost, as far as the peer knows: it resends the 200.
	for i := 0; i < 2; i++ {
		if err := u.srv.WriteResponse(r200.Clone()); err != nil {
			t.Fatal(err)
		}
		select {
		case ack := <-u.acks:
			if ack.CSeq().SeqNo != want {
				t.Errorf("copy %d: ACK CSeq %d, want %d", i, ack.CSeq().SeqNo, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("copy %d of the 200 to our re-INVITE not ACKed", i)
		}
	}
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 2, nil)); err != nil {
		t.Fatal(err)
	}
	endOf(t, c)
	waitNoCalls(t, s)
}

// TestReofferRightAfterAnswer: a Reoffer as soon as the PBX's 200 has come
// waits for our ACK to be on the wire. The ACK is written off the loop;
// a re-INVITE that overtook it would reach a PBX whose INVITE transaction
// is not done and be refused (RFC 3261 §14.1/§14.2: 500).
func TestReofferRightAfterAnswer(t *testing.T) {
	pbx := newTestServer(t, nil)
	pbxCalls := calls(pbx, func(c *InboundCall) {
		if err := c.Answer(nil); err != nil {
			t.Error(err)
		}
	})
	start(t, pbx)
	ap, _ := pbx.Addr(UDP)
	s := pbxServer(t, int(ap.Port()), nil)
	s.beforeAck = func() { time.Sleep(200 * time.Millisecond) } // a slow ACK write
	start(t, s)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.Answered(), "answer")
	if err := c.Reoffer(true); err != nil {
		t.Errorf("Reoffer right after the answer: %v", err)
	}
	pc := waitFor(t, pbxCalls, "the PBX's call")
	c.Hangup(Reason{})
	endOf(t, c)
	endOf(t, pc)
	waitNoCalls(t, s)
	waitNoCalls(t, pbx)
}

// TestReinviteRightAfterAck: the caller ACKs our 200 and sends a
// re-INVITE at once. The ACK and the re-INVITE reach the call's loop by
// different goroutines, so the re-INVITE may come first; it waits for the
// ACK instead of being refused with 500 as if the ACK had not been sent.
func TestReinviteRightAfterAck(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	s.beforeAckPost = func() { time.Sleep(100 * time.Millisecond) } // < holdFor·T1 (400 ms in tests)
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "reinvite-right-after-ack")
	c := waitFor(t, got, "call")
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 1, nil)); err != nil {
		t.Fatal(err)
	}
	r, err := u.cli.Do(ctx, inDialog(inv, res, sip.INVITE, 2, []byte(benchOffer)))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("re-INVITE right after the ACK: %v %v", r, err)
	}
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 2, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 3, nil)); err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal || !ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}

// TestSecondHoldKeepsItsOwnTime: a re-INVITE held until the ACK before it
// arrives (holdForAck), released early by that ACK, must not leave its
// holdFor·T1 timer running: a second re-INVITE held soon after would be
// served when the first hold's time is up, before its own ACK came, and
// get 500. Here ACK 1 reaches the loop 200 ms late and ACK 2 300 ms late,
// so the first hold's timer (400 ms after re-INVITE 2) falls inside the
// second hold (re-INVITE 3 at ≈200 ms, its ACK at ≈500 ms, its own
// timer at ≈600 ms).
func TestSecondHoldKeepsItsOwnTime(t *testing.T) {
	s := newTestServer(t, nil)
	got := calls(s, answerAtOnce(t))
	var acks atomic.Int32
	s.beforeAckPost = func() {
		if acks.Add(1) == 1 {
			time.Sleep(200 * time.Millisecond)
		} else {
			time.Sleep(300 * time.Millisecond)
		}
	}
	start(t, s)
	u := newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, res := u.answered(ctx, t, s, "second-hold-own-time")
	c := waitFor(t, got, "call")
	for cseq := uint32(1); cseq <= 2; cseq++ {
		if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, cseq, nil)); err != nil {
			t.Fatal(err)
		}
		r, err := u.cli.Do(ctx, inDialog(inv, res, sip.INVITE, cseq+1, []byte(benchOffer)))
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("re-INVITE %d right after ACK %d: %v %v", cseq+1, cseq, r, err)
		}
	}
	if err := u.cli.WriteRequest(inDialog(inv, res, sip.ACK, 3, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.cli.Do(ctx, inDialog(inv, res, sip.BYE, 4, nil)); err != nil {
		t.Fatal(err)
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal || !ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}
