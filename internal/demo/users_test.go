package demo

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/tgsip/tgsip/b2bua"
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

// dialDemo makes the test account call the demo user name by its
// username, as the trunk does for sip:name@…, and returns the call.
func dialDemo(t *testing.T, name string) (*tgcall.Call, error) {
	t.Helper()
	e, _, ok := demo.Entry(name)
	if !ok {
		t.Fatalf("no demo user %q", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, err := resolve(ctx, tester.client.API(), "@"+e.Username)
	if err != nil {
		t.Fatalf("resolve @%s: %v", e.Username, err)
	}
	return tester.engine.Dial(ctx, peer)
}

// connected dials name and waits until media flows.
func connected(t *testing.T, name string) *tgcall.Call {
	t.Helper()
	c, err := dialDemo(t, name)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() {
		c.Hangup()
		<-c.Done()
	})
	wait(t, c.Connected(), 20*time.Second, name+" connected")
	return c
}

// hear decodes half a second of what conn receives (after the first ten
// packets) and returns its dominant frequency; it gives up after 15 s.
func hear(t *testing.T, c *tgcall.Call) (freq, prominence float64) {
	t.Helper()
	type result struct {
		pcm []int16
		err error
	}
	ch := make(chan result, 1)
	go func() {
		pcm, err := audiotest.ReceiveOpus(c.Conn(), audiotest.OpusRate/2, 10)
		ch <- result{pcm, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("receive: %v", r.err)
		}
		return audiotest.DominantFrequency(r.pcm, audiotest.OpusRate, 100, 4000, 2)
	case <-time.After(15 * time.Second):
		c.Hangup() // ends ReadRTP
		<-ch
		t.Fatal("no audio within 15 s")
		return 0, 0
	}
}

// near checks f within 2 % of want, with a clear tone.
func near(t *testing.T, what string, f, prominence, want float64) {
	t.Helper()
	if math.Abs(f-want) > want*0.02 || prominence < 10 {
		t.Errorf("%s: dominant %v Hz (prominence %.1f), want %v Hz ±2%%", what, f, prominence, want)
	}
}

// sendTone plays freq Hz into c for the rest of the test.
func sendTone(t *testing.T, c *tgcall.Call, freq float64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	a := c.Conn().Audio()
	go func() {
		defer close(done)
		// Ten seconds at most; the test's cleanup stops it sooner.
		_ = audiotest.SendOpusTone(ctx, c.Conn(), a.SSRC, a.PayloadType, freq, 500, 20*time.Millisecond) // ends with the call or the test
	}()
}

// ended checks how the test account's call ended; remote says whether the
// peer (or Telegram) must have ended it.
func ended(t *testing.T, c *tgcall.Call, d time.Duration, cause tgcall.Cause, reason tgcall.DiscardReason, remote bool) {
	t.Helper()
	wait(t, c.Done(), d, "call end")
	e := c.Err()
	if e == nil || e.Cause != cause || e.Reason != reason || (remote && !e.Remote) {
		t.Errorf("call ended %v, want %v/%v (by the peer: %v)", e, cause, reason, remote)
	}
}

func TestEchoReturnsWhatItHears(t *testing.T) {
	c := connected(t, "echo")
	sendTone(t, c, 440)
	f, p := hear(t, c)
	near(t, "echo", f, p, 440)
}

// Two calls to echo at once each get their own tone back: echo keeps its
// calls apart.
func TestEchoCarriesCallsApart(t *testing.T) {
	a, b := connected(t, "echo"), connected(t, "echo")
	sendTone(t, a, 440)
	sendTone(t, b, 660)
	fa, pa := hear(t, a)
	fb, pb := hear(t, b)
	near(t, "first call", fa, pa, 440)
	near(t, "second call", fb, pb, 660)
}

func TestToneDelivers1kHz(t *testing.T) {
	c := connected(t, "tone")
	f, p := hear(t, c)
	near(t, "tone", f, p, 1000)
}

func TestRelayOnlyEchoesThroughTheReflector(t *testing.T) {
	c := connected(t, "relayonly")
	if info, ok := network.Call(c.ID()); !ok || info.P2PAllowed {
		t.Errorf("emulator call %+v: want p2p disallowed", info)
	}
	sendTone(t, c, 440)
	f, p := hear(t, c)
	near(t, "relayonly", f, p, 440)
	if st := c.Conn().Stats(); !st.Relayed {
		t.Errorf("call not relayed: local %s %s, remote %s %s", st.LocalCandidateType, st.LocalAddress, st.RemoteCandidateType, st.RemoteAddress)
	}
}

func TestEchoHangupEndsTheDemoSide(t *testing.T) {
	c := connected(t, "echo")
	c.Hangup()
	wait(t, c.Done(), 10*time.Second, "hang-up")
	info, ok := network.Call(c.ID())
	if !ok || info.EndDate.IsZero() {
		t.Fatalf("emulator call %+v not ended", info)
	}
}

func TestBusyDeclines(t *testing.T) {
	c, err := dialDemo(t, "busy")
	if err != nil {
		t.Fatal(err)
	}
	ended(t, c, 10*time.Second, tgcall.CauseBusy, tgcall.DiscardBusy, true)
}

func TestNoAnswerRingsUntilTheTimeout(t *testing.T) {
	c, err := dialDemo(t, "noanswer")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c.Ringing(), 10*time.Second, "ringing")
	rang := time.Now()
	// Missed, whichever side's ring timer (ours or the emulated
	// Telegram's, both call_ring_timeout_ms) fires first.
	ended(t, c, ringTimeout+10*time.Second, tgcall.CauseNoAnswer, tgcall.DiscardMissed, false)
	// It rang for the ring timeout, not less (the update that told us
	// it rings took a moment to arrive, hence the slack).
	if d := time.Since(rang); d < ringTimeout-time.Second {
		t.Errorf("rang %v, want the ring timeout %v", d, ringTimeout)
	}
}

func TestPrivateRefuses(t *testing.T) {
	c, err := dialDemo(t, "private")
	if err == nil {
		c.Hangup()
		<-c.Done()
		t.Fatal("call to private was placed")
	}
	var e *tgcall.Error
	if !errors.As(err, &e) || e.Cause != tgcall.CausePrivacy || e.RPC != "USER_PRIVACY_RESTRICTED" {
		t.Errorf("dial private: %v, want the privacy cause", err)
	}
}

func TestCallPlaysAndHears(t *testing.T) {
	answered := make(chan *tgcall.Call, 1)
	f := func(c *tgcall.Call) {
		c.Accept()
		answered <- c
	}
	tester.onIncoming.Store(&f)
	defer tester.onIncoming.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := demo.Call(ctx, "tone", "+"+tester.user.Phone)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Call.Hangup()
		<-p.Call.Done()
	}()
	var in *tgcall.Call
	select {
	case in = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the demo user's call did not arrive")
	}
	defer func() {
		in.Hangup()
		<-in.Done()
	}()
	wait(t, in.Connected(), 20*time.Second, "connected")
	sendTone(t, in, 440)
	// The probe's tone reaches the called account...
	fr, pr := hear(t, in)
	near(t, "probe's tone", fr, pr, 1000)
	// ...and the probe hears the account's tone.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		h := p.Heard()
		if h.Packets >= 50 && math.Abs(h.Frequency-440) <= 440*0.02 && h.Prominence >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe heard %+v, want 440 Hz", h)
		}
		<-tick.C
	}
	p.Call.Hangup()
	ended(t, in, 10*time.Second, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}

func TestCallByUsername(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The test account declines by default: the probe's call ends busy.
	p, err := demo.Call(ctx, "echo", "@"+tester.user.Username)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p.Call.Done(), 10*time.Second, "declined")
	if e := p.Call.Err(); e.Cause != tgcall.CauseBusy {
		t.Errorf("call ended %v, want busy", e)
	}
	if h := p.Heard(); h.Packets != 0 {
		t.Errorf("heard %+v on a declined call", h)
	}
	for _, bad := range []struct{ from, to string }{
		{"private", "@tester_account"}, // no client
		{"nobody", "@tester_account"},
		{"echo", "tester_account"}, // neither + nor @
		{"echo", "@no_such_user"},
	} {
		if p, err := demo.Call(ctx, bad.from, bad.to); err == nil {
			p.Call.Hangup()
			<-p.Call.Done()
			t.Errorf("Call(%q, %q) succeeded", bad.from, bad.to)
		}
	}
}

func TestDirectory(t *testing.T) {
	names, phones, users := map[string]bool{}, map[string]bool{}, map[string]bool{}
	want := map[Behaviour]bool{}
	for _, e := range Directory() {
		if err := emu.ValidUsername(e.Username); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if names[e.Name] || phones[e.Phone] || users[e.Username] {
			t.Errorf("%s: name, phone or username repeated", e.Name)
		}
		names[e.Name], phones[e.Phone], users[e.Username] = true, true, true
		want[e.Behaviour] = true
		if e.Behaviour.String() != e.Name {
			t.Errorf("%s has behaviour %v", e.Name, e.Behaviour)
		}
		if b, err := ParseBehaviour(e.Name); err != nil || b != e.Behaviour {
			t.Errorf("ParseBehaviour(%q) = %v, %v", e.Name, b, err)
		}
		// Start put each one on the network as listed.
		_, u, ok := demo.Entry(e.Name)
		if !ok || u.Username != e.Username {
			t.Errorf("%s: on the network as %+v", e.Name, u)
		}
	}
	if len(want) != 6 {
		t.Errorf("%d behaviours in the directory, want 6", len(want))
	}
	// The aliases route every name a SIP caller dials to its user.
	r, err := b2bua.NewSIPRouter(b2bua.SIPRouting{Aliases: Aliases(demo.Entries())})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Directory() {
		route, err := r.Route(b2bua.Called{RequestUser: e.Name})
		if err != nil || route.Peer.String() != "@"+e.Username {
			t.Errorf("sip:%s@… routes to %v (%v), want @%s", e.Name, route.Peer, err, e.Username)
		}
	}
	// The usernames themselves route as bare usernames, without aliases.
	bare, err := b2bua.NewSIPRouter(b2bua.SIPRouting{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Directory() {
		route, err := bare.Route(b2bua.Called{RequestUser: e.Username})
		if err != nil || route.Peer.String() != "@"+e.Username {
			t.Errorf("sip:%s@… routes to %v (%v)", e.Username, route.Peer, err)
		}
	}
	if _, _, ok := demo.Entry("nobody"); ok {
		t.Error("Entry found a user that is not in the cast")
	}
	for name, want := range map[string]string{"Echo-2": "demo_echo_2", "sales desk!": "demo_sales_desk", "a__b": "demo_a_b"} {
		if e, err := NewEntry(name, Echo, 9); err != nil || e.Username != want || e.Phone != "+9996621009" {
			t.Errorf("NewEntry(%q) = %+v, %v; want username %s", name, e, err, want)
		}
	}
	if _, err := ParseBehaviour("silent"); err == nil {
		t.Error("ParseBehaviour took an unknown behaviour")
	}
	for _, bad := range []struct {
		name string
		b    Behaviour
		n    int
	}{{"", Echo, 7}, {"--", Echo, 7}, {"echo", Behaviour(42), 7}, {"echo", Echo, 100}, {"echo", Echo, 0}} {
		if e, err := NewEntry(bad.name, bad.b, bad.n); err == nil {
			t.Errorf("NewEntry(%q, %d, %d) = %+v", bad.name, bad.b, bad.n, e)
		}
	}
}

func TestStartNeedsAStartedNetwork(t *testing.T) {
	n, err := emu.New(emu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if u, err := Start(context.Background(), n, Options{}); err == nil {
		u.Close()
		t.Fatal("Start on a network that is not listening succeeded")
	}
}

// Close ends the demo users' calls in progress (an answered one and a
// probe's) on Telegram too, and waits for everything it started (goleak
// in TestMain checks the goroutines). It needs a network of its own: the
// shared demo users stay up for the other tests.
func TestCloseHangsUpCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := emu.New(emu.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A cast of its own, as the config's demo.users may give: two users
	// with new names.
	var cast []Entry
	for i, s := range []struct {
		name string
		b    Behaviour
	}{{"ringer", Tone}, {"mirror", Echo}} {
		e, err := NewEntry(s.name, s.b, i+1)
		if err != nil {
			t.Fatal(err)
		}
		cast = append(cast, e)
	}
	if _, err := Start(ctx, n, Options{Users: append(cast, cast[0])}); err == nil {
		t.Fatal("Start took a cast with a name twice")
	}
	users, err := Start(ctx, n, Options{Users: cast, Logger: testLogger(), Transport: loopback()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			users.Close()
		}
	}()
	if got := users.Entries(); len(got) != 2 || got[1] != cast[1] {
		t.Errorf("Entries() = %+v, want the cast", got)
	}
	// ringer (tone) calls mirror (echo): both sides are demo users, one
	// answering and one probing.
	p, err := users.Call(ctx, "ringer", "@demo_mirror")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p.Call.Connected(), 20*time.Second, "ringer → mirror connected")
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// echo sends the probe's own 1 kHz back.
	for h := p.Heard(); h.Packets < 50 || math.Abs(h.Frequency-1000) > 20; h = p.Heard() {
		if time.Now().After(deadline) {
			t.Fatalf("probe heard %+v, want its own 1 kHz back", h)
		}
		<-tick.C
	}
	users.Close()
	closed = true
	select {
	case <-p.Call.Done():
	default:
		t.Fatal("Close returned with the probe's call still up")
	}
	for _, c := range n.Calls() {
		if c.EndDate.IsZero() {
			t.Errorf("call %d still up on the emulated Telegram after Close", c.ID)
		}
	}
}
