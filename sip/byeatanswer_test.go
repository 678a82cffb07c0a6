package sip

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestPBXByeRightAfterItsAnswer: the PBX answers our INVITE and sends BYE
// at once (its caller hung up as the call was answered). The 200 reaches
// the call's loop through the INVITE's transaction and the BYE through a
// handler of its own, so the BYE may come first; it must still end the
// call (200), not get 481 for a dialog whose 2xx is being processed
// while the call then stays up on our side.
func TestPBXByeRightAfterItsAnswer(t *testing.T) {
	u := newUAC(t) // the PBX
	s := pbxServer(t, u.addr.Port, nil)
	// The 200 is slow on its way to the loop; the BYE overtakes it.
	s.beforeResponsePost = func(res *sip.Response) {
		if res.IsSuccess() {
			time.Sleep(100 * time.Millisecond) // < holdFor·T1 (400 ms in tests)
		}
	}
	start(t, s)
	byeStatus := make(chan int, 1)
	h := func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte(benchOffer))
		res.To().Params.Add("tag", "pbxtag")
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pbx", Host: "127.0.0.1", Port: u.addr.Port}})
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		if err := tx.Respond(res); err != nil {
			t.Error(err)
			return
		}
		bye := sip.NewRequest(sip.BYE, req.Contact().Address)
		from := sip.HeaderClone(res.To()).(*sip.ToHeader)
		bye.AppendHeader(&sip.FromHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params})
		to := sip.HeaderClone(req.From()).(*sip.FromHeader)
		bye.AppendHeader(&sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params})
		bye.AppendHeader(sip.HeaderClone(req.CallID()))
		bye.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.BYE})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := u.cli.Do(ctx, bye)
		if err != nil {
			t.Error(err)
			byeStatus <- 0
			return
		}
		byeStatus <- r.StatusCode
	}
	u.onInvite.Store(&h)
	c, err := s.Dial(context.Background(), DialRequest{To: "2000"})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitFor(t, byeStatus, "the BYE's answer"); st != 200 {
		t.Errorf("the PBX's BYE answered %d, want 200", st)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Error("the call is still up after the PBX's BYE")
		c.Hangup(Reason{})
	}
	if ce := endOf(t, c); ce.Cause != CauseNormal || !ce.Remote {
		t.Errorf("end = %v", ce)
	}
	waitNoCalls(t, s)
}
