package tgcall_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// wait blocks until ch is closed or fails the test after d.
func wait(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// answer makes the account accept its next incoming call and hands it over.
func answer(a *account) <-chan *tgcall.Call {
	ch := make(chan *tgcall.Call, 1)
	a.incoming(func(c *tgcall.Call) {
		c.Accept()
		ch <- c
	})
	return ch
}

// ringOnly makes the account let incoming calls ring and hands them over.
func ringOnly(a *account) <-chan *tgcall.Call {
	ch := make(chan *tgcall.Call, 1)
	a.incoming(func(c *tgcall.Call) { ch <- c })
	return ch
}

func got(t *testing.T, ch <-chan *tgcall.Call) *tgcall.Call {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming call within 10 s")
		return nil
	}
}

// dial places a call from a to b and fails the test if Telegram refuses it.
func dial(t *testing.T, a, b *account) *tgcall.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := a.engine.Dial(ctx, b.peer())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return out
}

// ringing places a call from a to b that b lets ring, and waits until the
// caller hears it ring.
func ringing(t *testing.T, a, b *account) (out, in *tgcall.Call) {
	t.Helper()
	// b must be free to ring: a call an earlier test ended may still be
	// finishing on its side (its discardCall RPC), and b would decline
	// this one busy (one call per account).
	released(t, b)
	ring := ringOnly(b)
	out = dial(t, a, b)
	in = got(t, ring)
	wait(t, out.Ringing(), 10*time.Second, "ringing")
	return out, in
}

// ended checks how a finished call ended.
func ended(t *testing.T, c *tgcall.Call, cause tgcall.Cause, reason tgcall.DiscardReason, remote bool) *tgcall.Error {
	t.Helper()
	wait(t, c.Done(), 15*time.Second, "call end")
	e := c.Err()
	if e == nil {
		t.Fatal("Done call without Err")
	}
	if e.Cause != cause || e.Reason != reason || e.Remote != remote {
		t.Errorf("call ended %v/%v remote=%v (%v), want %v/%v remote=%v", e.Cause, e.Reason, e.Remote, e, cause, reason, remote)
	}
	return e
}

// onTelegram checks what the emulated Telegram recorded for the call.
func onTelegram(t *testing.T, id int64, want tgcall.DiscardReason) {
	t.Helper()
	info, ok := network.Call(id)
	if !ok {
		t.Fatalf("call %d unknown to the emulator", id)
	}
	var got tgcall.DiscardReason
	switch info.Reason.(type) {
	case *tg.PhoneCallDiscardReasonHangup:
		got = tgcall.DiscardHangup
	case *tg.PhoneCallDiscardReasonBusy:
		got = tgcall.DiscardBusy
	case *tg.PhoneCallDiscardReasonMissed:
		got = tgcall.DiscardMissed
	case *tg.PhoneCallDiscardReasonDisconnect:
		got = tgcall.DiscardDisconnect
	}
	if got != want {
		t.Errorf("emulator recorded discard %v (%T), want %v", got, info.Reason, want)
	}
}

// toneTrip sends a tone each way and checks both arrive with their frequency.
func toneTrip(t *testing.T, a, b *tgcall.Call) {
	t.Helper()
	ca, cb := a.Conn(), b.Conn()
	if ca == nil || cb == nil {
		t.Fatal("connected call without Conn")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	type result struct {
		pcm []int16
		err error
	}
	recv := func(c *tgcall.Conn) <-chan result {
		ch := make(chan result, 1)
		go func() {
			pcm, err := audiotest.ReceiveOpus(c, audiotest.OpusRate/4, 10)
			ch <- result{pcm, err}
		}()
		return ch
	}
	ra, rb := recv(ca), recv(cb)
	send := func(c *tgcall.Conn, freq float64) <-chan error {
		ch := make(chan error, 1)
		go func() {
			au := c.Audio()
			ch <- audiotest.SendOpusTone(ctx, c, au.SSRC, au.PayloadType, freq, 40, 20*time.Millisecond)
		}()
		return ch
	}
	ea, eb := send(ca, 440), send(cb, 1000)
	for _, e := range []<-chan error{ea, eb} {
		if err := <-e; err != nil {
			t.Fatalf("send tone: %v", err)
		}
	}
	check := func(name string, ch <-chan result, want float64) {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("%s receive: %v", name, r.err)
			}
			f, prom := audiotest.DominantFrequency(r.pcm, audiotest.OpusRate, 100, 4000, 10)
			if math.Abs(f-want) > 15 || prom < 20 {
				t.Errorf("%s heard %v Hz (prominence %.1f), want %v Hz", name, f, prom, want)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no audio", name)
		}
	}
	check("callee", rb, 440)
	check("caller", ra, 1000)
	if au, bu := ca.Audio(), cb.Audio(); au.RemoteSSRC != bu.SSRC || bu.RemoteSSRC != au.SSRC {
		t.Errorf("negotiated SSRCs do not cross: caller %+v callee %+v", au, bu)
	}
}

// connect places a call from a to b, b answers, both connect.
func connect(t *testing.T, a, b *account) (*tgcall.Call, *tgcall.Call) {
	t.Helper()
	in := answer(b)
	out := dial(t, a, b)
	callee := got(t, in)
	wait(t, out.Ringing(), 10*time.Second, "ringing")
	wait(t, out.Connected(), 30*time.Second, "caller connected")
	wait(t, callee.Connected(), 30*time.Second, "callee connected")
	if out.Emojis() != callee.Emojis() || out.Emojis()[0] == "" {
		t.Errorf("emoji fingerprints differ: %v vs %v", out.Emojis(), callee.Emojis())
	}
	if out.ID() != callee.ID() || callee.Peer() != a.user.ID || out.Peer() != b.user.ID {
		t.Errorf("ids: out %d/%d, in %d/%d", out.ID(), out.Peer(), callee.ID(), callee.Peer())
	}
	return out, callee
}

func TestCallCallerHangsUp(t *testing.T) {
	out, in := connect(t, alice, bob)
	toneTrip(t, out, in)
	if st := out.Conn().Stats(); st.LocalAddress != trunkPort || st.Relayed {
		t.Errorf("trunk call on %s (relayed %v), want direct on the shared port %s", st.LocalAddress, st.Relayed, trunkPort)
	}
	out.Hangup()
	e := ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
	onTelegram(t, out.ID(), tgcall.DiscardHangup)
	// The duration runs from media connected and goes to Telegram in
	// whole seconds, as tdesktop sends it.
	if e.Duration <= 0 {
		t.Errorf("duration %v, want > 0", e.Duration)
	}
	if info, _ := network.Call(out.ID()); info.Duration != int(e.Duration/time.Second) {
		t.Errorf("Telegram got duration %d s, the call lasted %v", info.Duration, e.Duration)
	}
}

func TestCallMediaState(t *testing.T) {
	out, in := connect(t, alice, bob)
	defer func() {
		out.Hangup()
		<-out.Done()
		<-in.Done()
	}()
	// Media (and with it DTLS, SCTP and RTCP) is processed while someone
	// reads, as rtpbridge does.
	drain(out.Conn())
	drain(in.Conn())
	// MediaState goes only on the data channel, as tgcalls sends it: the
	// states below can only arrive through SCTP.
	wait(t, out.Conn().DataChannelOpen(), 10*time.Second, "caller data channel")
	wait(t, in.Conn().DataChannelOpen(), 10*time.Second, "callee data channel")
	// waitState waits for the peer's MediaState to satisfy ok.
	waitState := func(c *tgcall.Conn, ok func(tgcall.MediaState) bool) tgcall.MediaState {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			changed := c.RemoteStateChanged()
			if s := c.RemoteState(); ok(s) {
				return s
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("remote state stays %+v", c.RemoteState())
			}
		}
	}
	// Each side announces itself unmuted with video inactive (audio-only).
	s := waitState(in.Conn(), func(s tgcall.MediaState) bool { return s.VideoState == "inactive" })
	if s.Muted {
		t.Errorf("initial state muted: %+v", s)
	}
	waitState(out.Conn(), func(s tgcall.MediaState) bool { return s.VideoState == "inactive" })
	out.Conn().SetMuted(true)
	waitState(in.Conn(), func(s tgcall.MediaState) bool { return s.Muted })
	in.Conn().SetMuted(true)
	waitState(out.Conn(), func(s tgcall.MediaState) bool { return s.Muted })
	out.Conn().SetMuted(false)
	waitState(in.Conn(), func(s tgcall.MediaState) bool { return !s.Muted })
}

func TestCallUnreachable(t *testing.T) {
	network.Faults().Vanish(frank.user.ID)
	defer network.Faults().Restore(frank.user.ID)
	out := dial(t, alice, frank)
	// Frank's phone never acknowledges (no phone.receivedCall): the call
	// ends after call_receive_timeout_ms, never having rung.
	wait(t, out.Done(), receiveTimeout+10*time.Second, "receive timeout")
	e := out.Err()
	if e.Cause != tgcall.CauseUnreachable || e.Reason != tgcall.DiscardMissed {
		t.Errorf("ended %v, want unreachable/missed", e)
	}
	select {
	case <-out.Ringing():
		t.Error("an unacknowledged call reported ringing")
	default:
	}
	onTelegram(t, out.ID(), tgcall.DiscardMissed)
}

func TestCallConcurrent(t *testing.T) {
	type pair struct{ a, b *account }
	pairs := []pair{{alice, bob}, {grace, heidi}, {dave, frank}}
	calls := make([][2]*tgcall.Call, len(pairs))
	for i, p := range pairs {
		out, in := connect(t, p.a, p.b)
		calls[i] = [2]*tgcall.Call{out, in}
	}
	done := make(chan struct{})
	for _, c := range calls {
		c := c
		go func() {
			defer func() { done <- struct{}{} }()
			toneTrip(t, c[0], c[1])
		}()
	}
	for range calls {
		<-done
	}
	ids := map[int64]bool{}
	for _, c := range calls {
		ids[c[0].ID()] = true
		c[1].Hangup()
	}
	if len(ids) != len(calls) {
		t.Errorf("call ids not distinct: %v", ids)
	}
	for _, c := range calls {
		ended(t, c[1], tgcall.CauseHangup, tgcall.DiscardHangup, false)
		ended(t, c[0], tgcall.CauseHangup, tgcall.DiscardHangup, true)
	}
}

func TestCallCalleeHangsUpReverse(t *testing.T) {
	out, in := connect(t, bob, alice)
	toneTrip(t, out, in)
	in.Hangup()
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

func TestCallRelayOnly(t *testing.T) {
	out, in := connect(t, alice, dave)
	if info, _ := network.Call(out.ID()); info.P2PAllowed {
		t.Fatal("emulator allowed p2p for a p2p=nobody user")
	}
	toneTrip(t, out, in)
	for _, c := range []*tgcall.Call{out, in} {
		if st := c.Conn().Stats(); !st.Relayed {
			t.Errorf("call not relayed: %+v", st)
		}
	}
	out.Hangup()
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
}

func TestCallSignalingLoss(t *testing.T) {
	network.Faults().SetSignaling(emu.SignalingFaults{Loss: 0.2, Reorder: 0.2, Seed: 7})
	defer network.Faults().SetSignaling(emu.SignalingFaults{})
	out, in := connect(t, alice, bob)
	toneTrip(t, out, in)
	out.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

func TestCallDeclined(t *testing.T) {
	bob.incoming(func(c *tgcall.Call) { c.Decline() })
	out := dial(t, alice, bob)
	ended(t, out, tgcall.CauseBusy, tgcall.DiscardBusy, true)
	onTelegram(t, out.ID(), tgcall.DiscardBusy)
	released(t, bob) // bob's side ends after its discardCall returns
}

func TestCallCancelBeforeAnswer(t *testing.T) {
	out, in := ringing(t, alice, bob)
	out.Hangup()
	ended(t, out, tgcall.CauseCancelled, tgcall.DiscardMissed, false)
	ended(t, in, tgcall.CauseNoAnswer, tgcall.DiscardMissed, true)
	onTelegram(t, out.ID(), tgcall.DiscardMissed)
}

func TestCallRingTimeout(t *testing.T) {
	out, in := ringing(t, alice, bob)
	// Nobody answers: the call ends as missed after the ring timeout,
	// whichever side (ours or the emulated Telegram's) notices first.
	wait(t, out.Done(), ringTimeout+10*time.Second, "ring timeout")
	if e := out.Err(); e.Cause != tgcall.CauseNoAnswer || e.Reason != tgcall.DiscardMissed {
		t.Errorf("caller ended %v", e)
	}
	wait(t, in.Done(), 10*time.Second, "callee end")
	if e := in.Err(); e.Cause != tgcall.CauseNoAnswer {
		t.Errorf("callee ended %v", e)
	}
}

func TestCallErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		to     *account
		inject *tgerr.Error
		cause  tgcall.Cause
	}{
		{"privacy", carol, nil, tgcall.CausePrivacy},
		{"outdated", erin, nil, tgcall.CauseOutdated},
		{"flood wait", bob, tgerr.New(420, "FLOOD_WAIT_5"), tgcall.CauseFloodWait},
		{"peer flood", bob, tgerr.New(400, "PEER_FLOOD"), tgcall.CausePeerFlood},
		{"blocked", bob, tgerr.New(403, "USER_IS_BLOCKED"), tgcall.CauseBlocked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.inject != nil {
				network.Faults().FailNext("phone.requestCall", tt.inject)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := alice.engine.Dial(ctx, tt.to.peer())
			if err == nil {
				c.Hangup()
				<-c.Done()
				t.Fatal("dial succeeded")
			}
			var e *tgcall.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *tgcall.Error", err, err)
			}
			if e.Cause != tt.cause {
				t.Errorf("got %v, want %v", e, tt.cause)
			}
			if tt.cause == tgcall.CauseFloodWait && e.RetryAfter != 5*time.Second {
				t.Errorf("retry after %v, want 5s", e.RetryAfter)
			}
		})
	}
}

func TestCallBusyAccount(t *testing.T) {
	out, in := connect(t, alice, bob)
	// Bob already carries a call: a second caller gets busy, and Alice
	// cannot place a second call.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := alice.engine.Dial(ctx, dave.peer()); !errors.Is(err, tgcall.ErrBusy) {
		t.Errorf("second dial: %v, want ErrBusy", err)
	}
	second := dial(t, dave, bob)
	ended(t, second, tgcall.CauseBusy, tgcall.DiscardBusy, true)
	in.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, true)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, false)
}

func TestCallDialCancelled(t *testing.T) {
	ring := ringOnly(bob)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := alice.engine.Dial(ctx, bob.peer()); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a cancelled context: %v", err)
	}
	// Dial returns only when the call is gone: if the request reached
	// Telegram, it was discarded as missed (never left ringing).
	if n := alice.engine.ActiveCalls(); n != 0 {
		t.Errorf("%d calls still active after a cancelled dial", n)
	}
	for _, c := range network.Calls() {
		if c.AdminID == alice.user.ID && c.EndDate.IsZero() {
			t.Errorf("call %d left open on Telegram", c.ID)
		}
	}
	select {
	case in := <-ring:
		wait(t, in.Done(), 10*time.Second, "callee end")
	default:
	}
}

// TestCallTURNOnly: with the reflectors failing and p2p not allowed, the
// call connects through the standard TURN server Telegram lists as a
// phoneConnectionWebrtc entry.
func TestCallTURNOnly(t *testing.T) {
	network.Faults().SetRelays(emu.RelayFaults{NoReflectors: true})
	defer network.Faults().SetRelays(emu.RelayFaults{})
	out, in := connect(t, alice, dave)
	toneTrip(t, out, in)
	for _, c := range []*tgcall.Call{out, in} {
		st := c.Conn().Stats()
		if !st.Relayed || st.LocalCandidateType != "relay" {
			t.Errorf("not through TURN: %+v", st)
		}
	}
	out.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

// TestCallUnsupportedSelection: a version or custom parameter we cannot
// honour ends the call loudly on both sides, discarded as disconnect.
func TestCallUnsupportedSelection(t *testing.T) {
	for _, tt := range []struct {
		name  string
		proto emu.CallProtocol
		want  error
	}{
		{"version 12", emu.CallProtocol{Version: "12.0.0"}, tgcall.ErrUnsupportedVersion},
		{"kcp", emu.CallProtocol{CustomParameters: `{"network_kcp_experiment":true}`}, tgcall.ErrUnsupportedParameter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			network.Faults().SetCallProtocol(tt.proto)
			defer network.Faults().SetCallProtocol(emu.CallProtocol{})
			in := answer(bob)
			out := dial(t, alice, bob)
			callee := got(t, in)
			// Both sides refuse; whichever refuses first discards the
			// call, so the other may see that discard before its own
			// check runs.
			refused := 0
			for _, c := range []*tgcall.Call{out, callee} {
				wait(t, c.Done(), 15*time.Second, "call end")
				e := c.Err()
				switch {
				case e.Cause == tgcall.CauseProtocol && errors.Is(e, tt.want):
					refused++
				case e.Cause == tgcall.CauseDisconnected && e.Remote && e.Reason == tgcall.DiscardDisconnect:
				default:
					t.Errorf("ended %v, want protocol error %v or the peer's disconnect", e, tt.want)
				}
			}
			if refused == 0 {
				t.Error("neither side refused the selection")
			}
			onTelegram(t, out.ID(), tgcall.DiscardDisconnect)
		})
	}
}

// TestCallPeerVanishes: the peer's phone loses its network mid-call (no
// signaling, no media, no discard): the survivor notices the dead media
// and ends the call as disconnected.
func TestCallPeerVanishes(t *testing.T) {
	// Reflector only: the emulated network can cut that path.
	network.Faults().SetRelays(emu.RelayFaults{NoTURN: true})
	defer network.Faults().SetRelays(emu.RelayFaults{})
	out, in := connect(t, frank, dave)
	toneTrip(t, out, in)
	// Media is processed while someone reads it, as rtpbridge does.
	drain(out.Conn())
	drain(in.Conn())
	network.Faults().Vanish(dave.user.ID)
	defer network.Faults().Restore(dave.user.ID)
	wait(t, out.Done(), 30*time.Second, "survivor notices")
	if e := out.Err(); e.Cause != tgcall.CauseDisconnected || e.Reason != tgcall.DiscardDisconnect || e.Remote {
		t.Errorf("survivor ended %v, want disconnected", e)
	}
	onTelegram(t, out.ID(), tgcall.DiscardDisconnect)
	// The vanished side fails the same way once its media dies; its
	// discard cannot reach Telegram, which it gives up on after 5 s.
	wait(t, in.Done(), 30*time.Second, "vanished side ends")
	if e := in.Err(); e.Cause != tgcall.CauseDisconnected && e.Cause != tgcall.CauseHangup {
		t.Errorf("vanished side ended %v", e)
	}
}

// TestCallSurvivesReconnect: the account's MTProto connection drops in the
// middle of a call (gotd reconnects with a new session); media goes on, and
// the peer's hang-up, pushed after the reconnect, still ends the call.
func TestCallSurvivesReconnect(t *testing.T) {
	out, in := connect(t, alice, bob)
	network.Faults().Vanish(alice.user.ID)
	network.Faults().Restore(alice.user.ID)
	toneTrip(t, out, in)
	in.Hangup()
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

// TestCallHangupWithAndLogger: the b2bua ends a call with the reason of the
// other leg, and logs the Telegram leg under its own per-call logger.
func TestCallHangupWithAndLogger(t *testing.T) {
	var buf syncBuffer
	legLog := slog.New(slog.NewTextHandler(&buf, nil)).With("leg_call_id", "abc@other")
	in := answer(bob)
	out, err := alice.engine.Dial(context.Background(), bob.peer(), tgcall.WithLogger(legLog))
	if err != nil {
		t.Fatal(err)
	}
	callee := got(t, in)
	wait(t, out.Connected(), 30*time.Second, "connected")
	wait(t, callee.Connected(), 30*time.Second, "callee connected")
	out.Logger().Info("bridged")
	// The other leg failed: Telegram is told the call was disconnected.
	out.HangupWith(tgcall.DiscardDisconnect)
	ended(t, out, tgcall.CauseDisconnected, tgcall.DiscardDisconnect, false)
	ended(t, callee, tgcall.CauseDisconnected, tgcall.DiscardDisconnect, true)
	onTelegram(t, out.ID(), tgcall.DiscardDisconnect)
	logs := buf.String()
	for _, want := range []string{"leg_call_id=abc@other", fmt.Sprintf("call_id=%d", out.ID()), "msg=bridged", "msg=\"call connected\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("call log lacks %q:\n%s", want, logs)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the call loop and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCallBadInput: garbage signaling and mismatching call updates for a
// live call are dropped; the call goes on undisturbed.
func TestCallBadInput(t *testing.T) {
	out, in := connect(t, alice, bob)
	id := out.ID()
	for _, junk := range [][]byte{
		nil,
		{0x01},
		bytes.Repeat([]byte{0xAB}, 21),      // minimum size, wrong msg_key
		bytes.Repeat([]byte{0x00}, 200),     // zeros
		bytes.Repeat([]byte{0xFF}, 130<<10), // over the 128 KiB limit
	} {
		alice.engine.HandleSignalingData(id, junk)
		bob.engine.HandleSignalingData(id, junk)
	}
	// Updates whose fields do not match the call (tdesktop
	// checkCallCommonFields), and updates for unknown calls. (A
	// phoneCallDiscarded carries only the id: it comes from Telegram over
	// the authenticated MTProto session and is always honoured.)
	bob.engine.HandlePhoneCall(&tg.PhoneCallAccepted{ID: id, AccessHash: 1, AdminID: 2, ParticipantID: 3, GB: []byte{1}})
	alice.engine.HandlePhoneCall(&tg.PhoneCallAccepted{ID: id, AccessHash: 1, AdminID: alice.user.ID, ParticipantID: bob.user.ID, GB: []byte{1}})
	alice.engine.HandlePhoneCall(&tg.PhoneCall{ID: id, AccessHash: 1, AdminID: alice.user.ID, ParticipantID: bob.user.ID})
	alice.engine.HandlePhoneCall(&tg.PhoneCall{ID: id + 1, AccessHash: 7})
	bob.engine.HandleSignalingData(id+1, []byte("nobody's"))
	toneTrip(t, out, in)
	select {
	case <-out.Done():
		t.Fatalf("call ended by forged input: %v", out.Err())
	default:
	}
	out.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

// drain reads c's RTP until the call ends, as rtpbridge keeps a reader
// running (RTCP, DTLS and the data channel are processed on the way).
func drain(c *tgcall.Conn) {
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.ReadRTP(buf); err != nil {
				return
			}
		}
	}()
}
