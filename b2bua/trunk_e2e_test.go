package b2bua

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// pbxAudio is the PBX's end of the media: an endpoint on the SIP call's
// RTP socket speaking the negotiated G.711/G.722 codec.
type pbxAudio struct {
	ep  *rtpendpoint.Endpoint
	pt  uint8
	enc interface {
		SampleRate() int
		Encode([]int16, []byte) (int, error)
	}
	dec interface {
		SampleRate() int
		Decode([]byte, []int16) (int, error)
	}
}

func newPBXAudio(t *testing.T, m sip.Media) *pbxAudio {
	t.Helper()
	ep := m.Endpoint // the test PBX's own call endpoint, owned by its sip.Server
	if ep == nil {
		t.Fatal("the test PBX's call has no media endpoint")
	}
	enc, err := codec.NewEncoder(m.Codec.Name, int(m.Codec.ClockRate), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder(m.Codec.Name, int(m.Codec.ClockRate), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &pbxAudio{ep: ep, pt: m.Codec.PayloadType, enc: enc, dec: dec}
}

func (p *pbxAudio) sendTone(ctx context.Context, freq float64, frames int) error {
	rate := p.enc.SampleRate()
	n := rate / 50
	pcm := make([]int16, n)
	payload := make([]byte, 1500)
	buf := make([]byte, 1500)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt, SSRC: 0x7007, SequenceNumber: 100, Timestamp: 5000}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range frames {
		audiotest.Tone(pcm, freq, rate, i*n)
		m, err := p.enc.Encode(pcm, payload)
		if err != nil {
			return err
		}
		pkt.Payload = payload[:m]
		k, err := pkt.MarshalTo(buf)
		if err != nil {
			return err
		}
		if err := p.ep.WriteRTP(buf[:k]); err != nil {
			return err
		}
		pkt.SequenceNumber++
		pkt.Timestamp += uint32(n)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func (p *pbxAudio) receive(samples, skip int) ([]int16, error) {
	buf := make([]byte, 1500)
	pcm := make([]int16, 5760)
	var got []int16
	var pkt rtp.Packet
	for len(got) < samples {
		n, err := p.ep.ReadRTP(buf)
		if err != nil {
			return got, err
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.PayloadType != p.pt {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		m, err := p.dec.Decode(pkt.Payload, pcm)
		if err != nil {
			return got, err
		}
		got = append(got, pcm[:m]...)
	}
	return got, nil
}

// TestTrunkSIPToTelegramAnswered: the PBX calls a Telegram user who
// answers; 180 comes when Telegram rings, 200 once the Telegram media is
// connected; each end hears the other's tone (PCMU on SIP, Opus on
// Telegram); the PBX's BYE ends the Telegram call.
func TestTrunkSIPToTelegramAnswered(t *testing.T) {
	e := newE2E(t, nil)
	incoming := make(chan *tgcall.Call, 1)
	userIncoming(func(c *tgcall.Call) {
		incoming <- c
		c.Accept()
	})
	out := e.dial(t, "user")
	var user *tgcall.Call
	select {
	case user = <-incoming:
	case <-out.Done():
		t.Fatalf("call ended: %v", out.Err())
	case <-time.After(15 * time.Second):
		t.Fatal("Telegram user not called")
	}
	t.Cleanup(user.Hangup)
	select {
	case <-out.Answered():
	case <-out.Done():
		t.Fatalf("call ended: %v", out.Err())
	case <-time.After(20 * time.Second):
		t.Fatal("no 200")
	}
	// 200 only once the Telegram call is set up: its key exchange is
	// confirmed on the emulator (the trunk's media connects after that).
	if calls := mediaNetwork.Calls(); len(calls) == 0 || calls[len(calls)-1].StartDate.IsZero() {
		t.Error("200 before the Telegram call was confirmed")
	}
	waitClosed(t, user.Connected(), "Telegram user's media")
	ringing := false
	for len(out.Progress()) > 0 {
		if ev := <-out.Progress(); ev.Status == 180 {
			ringing = true
			if ev.EarlyMedia {
				t.Error("180 with early media")
			}
		}
	}
	if !ringing {
		t.Error("no 180 before the 200")
	}

	pbx := newPBXAudio(t, out.Media())
	exchangeTones(t, user, pbx)

	// BYE from the PBX ends the Telegram call.
	out.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	waitClosed(t, user.Done(), "Telegram user's call end")
	if err := user.Err(); err == nil || err.Cause != tgcall.CauseHangup || !err.Remote {
		t.Errorf("Telegram user's call ended with %v, want a remote hangup", err)
	}
}

// TestTrunkTelegramHangsUp: the Telegram user hangs up an answered call;
// the PBX gets a BYE.
func TestTrunkTelegramHangsUp(t *testing.T) {
	e := newE2E(t, nil)
	out, user := callUser(t, e, true)
	waitClosed(t, out.Answered(), "200")
	user.Hangup()
	ce := endOf(t, out)
	if ce.Cause != sip.CauseNormal || !ce.Remote {
		t.Errorf("PBX's call ended with %v, want a BYE from the trunk", ce)
	}
}

// TestTrunkSIPToTelegramRejected: Telegram outcomes reach the PBX as the
// mapped final status with the row's Q.850 Reason (RFC 6432), e.g.
// 486 with `Q.850;cause=17;text="User busy"`.
func TestTrunkSIPToTelegramRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		callee string
		user   func(*tgcall.Call) // the Telegram user's behaviour
		want   int
		reason Outcome
	}{
		{"busy", "user", func(c *tgcall.Call) { c.Decline() }, 486, OutcomeBusy},
		{"unknown", "nobody", nil, 404, OutcomeUnknownUser},
		{"private", "private", nil, 403, OutcomePrivacy},
		// No alias matches: routing tries it as a username nobody has.
		{"no route", "nosuchalias", nil, 0, OutcomeUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, nil)
			if tc.user != nil {
				userIncoming(tc.user)
			}
			ce := endOf(t, e.dial(t, tc.callee))
			want := tc.want
			if want == 0 {
				want = SIPEndFor(ErrNoRoute).Status
			}
			if ce.Status != want || ce.Cause != sip.CauseRejected {
				t.Errorf("call ended with %v, want %d", ce, want)
			}
			if r := tc.reason.Reason(); ce.Reason != r || r.Protocol != "Q.850" {
				t.Errorf("PBX got Reason %q, want %q", ce.Reason, r)
			}
			if ce.RetryAfter != 0 {
				t.Errorf("PBX got Retry-After %v on a %d", ce.RetryAfter, ce.Status)
			}
		})
	}
}

// TestTrunkNoAnswer: a Telegram user who never answers: 480 at the trunk's
// ring timeout, and the Telegram call is discarded (missed).
func TestTrunkNoAnswer(t *testing.T) {
	e := newE2E(t, func(o *TrunkOptions) { o.RingTimeout = 2 * time.Second })
	out, user := callUser(t, e, false)
	ce := endOf(t, out)
	if ce.Status != 480 {
		t.Errorf("call ended with %v, want 480", ce)
	}
	waitClosed(t, user.Done(), "Telegram user's call end")
	if err := user.Err(); err == nil || err.Cause != tgcall.CauseNoAnswer {
		t.Errorf("Telegram user's call ended with %v, want missed", err)
	}
}

// TestTrunkAllAccountsBusy: with the only account in a call, the next
// INVITE gets 503 with Retry-After (RFC 3261 §21.5.4: a load balancer
// tries another instance and leaves this one alone that long) and the
// Q.850 cause 34 "no circuit available".
func TestTrunkAllAccountsBusy(t *testing.T) {
	e := newE2E(t, nil)
	incoming := make(chan *tgcall.Call, 1)
	userIncoming(func(c *tgcall.Call) { incoming <- c })
	first := e.dial(t, "user")
	select {
	case <-incoming:
	case <-time.After(15 * time.Second):
		t.Fatal("Telegram user not called")
	}
	ce := endOf(t, e.dial(t, "user"))
	if ce.Status != 503 {
		t.Errorf("second call ended with %v, want 503", ce)
	}
	// The account's call may end any moment: the pool's default wait.
	if ce.RetryAfter != DefaultRetryAfter {
		t.Errorf("PBX got Retry-After %v, want %v", ce.RetryAfter, DefaultRetryAfter)
	}
	if r := OutcomeNoAccount.Reason(); ce.Reason != r {
		t.Errorf("PBX got Reason %q, want %q", ce.Reason, r)
	}
	first.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	if ce := endOf(t, first); ce.Status != 487 && !errors.Is(ce, sip.ErrCancelled) {
		t.Logf("first call ended with %v", ce)
	}
}

// TestTrunkCancelDuringKeyExchange: the PBX cancels just as the Telegram
// user accepts, while the keys are being exchanged: nothing is left
// ringing on either side.
func TestTrunkCancelDuringKeyExchange(t *testing.T) {
	e := newE2E(t, nil)
	incoming := make(chan *tgcall.Call, 1)
	var out *sip.OutboundCall
	userIncoming(func(c *tgcall.Call) {
		c.Accept()
		incoming <- c
	})
	out = e.dial(t, "user")
	var user *tgcall.Call
	select {
	case user = <-incoming:
	case <-time.After(15 * time.Second):
		t.Fatal("Telegram user not called")
	}
	out.Hangup(sip.Reason{Protocol: "Q.850", Cause: 16})
	ce := endOf(t, out)
	if ce.Status == 200 {
		t.Logf("the 200 won the race with the CANCEL: %v", ce)
	}
	waitClosed(t, user.Done(), "Telegram user's call end")
	if e.tsip.Calls() != 0 {
		// The trunk's SIP side must have no dialog left.
		waitNoSIPCalls(t, e.tsip)
	}
}

func waitNoSIPCalls(t *testing.T, s *sip.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Calls() != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d SIP calls left on the trunk", s.Calls())
			return
		}
		time.Sleep(20 * time.Millisecond) // no event for the dialog table emptying
	}
}

// exchangeTones has the Telegram user say 440 Hz and the PBX 1 kHz at
// once, and checks what each hears by frequency.
func exchangeTones(t *testing.T, user *tgcall.Call, pbx *pbxAudio) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := user.Conn()
	userHeard := make(chan pcmResult, 1)
	go func() {
		pcm, err := audiotest.ReceiveOpus(conn, audiotest.OpusRate/4, 15)
		userHeard <- pcmResult{pcm, err}
	}()
	pbxHeard := make(chan pcmResult, 1)
	go func() {
		pcm, err := pbx.receive(pbx.dec.SampleRate()/4, 15)
		pbxHeard <- pcmResult{pcm, err}
	}()
	sent := make(chan error, 2)
	go func() {
		au := conn.Audio()
		sent <- audiotest.SendOpusTone(ctx, conn, au.SSRC, au.PayloadType, userTone, toneFrames, 20*time.Millisecond)
	}()
	go func() { sent <- pbx.sendTone(ctx, sipTone, toneFrames) }()
	checkHeard(t, ctx, "Telegram user", userHeard, audiotest.OpusRate, sipTone)
	checkHeard(t, ctx, "PBX", pbxHeard, pbx.dec.SampleRate(), userTone)
	for range 2 {
		if err := <-sent; err != nil {
			t.Fatalf("send tone: %v", err)
		}
	}
}
