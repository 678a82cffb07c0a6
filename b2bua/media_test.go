package b2bua

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// Tones of the end-to-end tests: the SIP peer says 1 kHz, the Telegram user
// 440 Hz; each must arrive at the other end within ±2 %.
const (
	sipTone  = 1000.0
	userTone = 440.0
	toneTol  = 0.02
	// toneFrames is how long each side talks (20 ms frames): long enough
	// for the receivers to skip the codecs' start-up and gather 250 ms.
	toneFrames = 100
	// toneRMS is the level of audiotest.Tone's sine (amplitude 16000).
	toneRMS = 16000 / math.Sqrt2
)

// TestMediaEndToEnd runs a call through both real legs over loopback: a
// Telegram call between two emulated accounts (the trunk's and a user's),
// the trunk's tgcall.Conn bridged by rtpbridge to a sip/rtpendpoint
// endpoint with SDES-SRTP, whose far end is a SIP peer built from
// pion/srtp on its own UDP socket. Each end sends a tone and checks by
// frequency what it hears.
func TestMediaEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    **tgAccount
		codec   sdp.Codec
		suite   sdp.Suite
		relayed bool
	}{
		{"passthrough", &mediaUser, sdp.Codec{Name: sdp.Opus, PayloadType: 107, ClockRate: 48000, Channels: 2}, sdp.AESCM128HMACSHA180, false},
		{"PCMU", &mediaUser, sdp.Codec{Name: sdp.PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1}, sdp.AEADAES128GCM, false},
		{"PCMA", &mediaUser, sdp.Codec{Name: sdp.PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1}, sdp.AESCM128HMACSHA132, false},
		{"G722", &mediaUser, sdp.Codec{Name: sdp.G722, PayloadType: 9, ClockRate: 8000, Channels: 1}, sdp.AES256CMHMACSHA180, false},
		{"relay-passthrough", &mediaRelayUser, sdp.Codec{Name: sdp.Opus, PayloadType: 111, ClockRate: 48000, Channels: 2}, sdp.AEADAES256GCM, true},
		{"relay-PCMU", &mediaRelayUser, sdp.Codec{Name: sdp.PCMU, PayloadType: 0, ClockRate: 8000, Channels: 1}, sdp.AESCM128HMACSHA180, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, in := connectTG(t, mediaTrunk, *tc.user)
			if st := out.Conn().Stats(); st.Relayed != tc.relayed || !tc.relayed && st.LocalAddress != mediaTrunkPort {
				t.Fatalf("trunk's Telegram call on %s, relayed=%v; want relayed=%v, or the shared port %s", st.LocalAddress, st.Relayed, tc.relayed, mediaTrunkPort)
			}
			peer, neg := newSIPPeer(t, tc.codec, tc.suite)
			ep := newSIPEndpoint(t, peer, neg)
			m := startMedia(t, out, in, ep, neg, MediaOptions{Logger: testLogger()})
			if m.Bridge.Passthrough() != (tc.codec.Name == sdp.Opus) {
				t.Fatalf("passthrough=%v for SIP %s", m.Bridge.Passthrough(), tc.codec)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			userConn := in.Conn()
			userHeard := make(chan pcmResult, 1)
			go func() {
				pcm, err := audiotest.ReceiveOpus(userConn, audiotest.OpusRate/4, 15)
				userHeard <- pcmResult{pcm, err}
			}()
			peerHeard := make(chan pcmResult, 1)
			go func() {
				pcm, err := peer.receive(peer.dec.SampleRate()/4, 15)
				peerHeard <- pcmResult{pcm, err}
			}()
			sent := make(chan error, 2)
			go func() {
				au := userConn.Audio()
				sent <- audiotest.SendOpusTone(ctx, userConn, au.SSRC, au.PayloadType, userTone, toneFrames, 20*time.Millisecond)
			}()
			go func() { sent <- peer.sendTone(ctx, sipTone, toneFrames) }()

			checkHeard(t, ctx, "Telegram user", userHeard, audiotest.OpusRate, sipTone)
			checkHeard(t, ctx, "SIP peer", peerHeard, peer.dec.SampleRate(), userTone)
			// Both heard enough: the senders may stop.
			cancel()
			for range 2 {
				if err := <-sent; err != nil && !errors.Is(err, context.Canceled) {
					t.Fatalf("send tone: %v", err)
				}
			}
			st := m.Bridge.Stats()
			if st.SIPToTelegram.Packets == 0 || st.TelegramToSIP.Packets == 0 {
				t.Errorf("bridge stats: %+v", st)
			}
		})
	}
}

// startMedia bridges the trunk's call out with the SIP endpoint and runs
// the media until the test ends; then the bridge's stop must end both
// Telegram calls.
func startMedia(t testing.TB, out, in *tgcall.Call, ep *rtpendpoint.Endpoint, neg sdp.Negotiated, opt MediaOptions) *Media {
	t.Helper()
	m, err := NewMedia(ep, neg, out.Conn(), out.Hangup, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Media.Run: %v, want context.Canceled", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Media.Run did not return within 15 s of its context's end")
		}
		// The bridge's stop hung the Telegram call up.
		waitClosed(t, out.Done(), "trunk's call end")
		waitClosed(t, in.Done(), "user's call end")
	})
	return m
}

type pcmResult struct {
	pcm []int16
	err error
}

// checkHeard waits for what one end heard and checks its tone.
func checkHeard(t *testing.T, ctx context.Context, who string, ch <-chan pcmResult, rate int, want float64) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: receive: %v", who, r.err)
		}
		f, prom := audiotest.DominantFrequency(r.pcm, rate, 100, float64(min(rate/2, 3500)), 2)
		level := 20 * math.Log10(audiotest.RMS(r.pcm)/toneRMS)
		t.Logf("%s heard %v Hz (prominence %.0f, %+.1f dB) in %d samples", who, f, prom, level, len(r.pcm))
		if math.Abs(level) > 3 {
			t.Errorf("%s heard the tone at %+.1f dB of what was sent, want within ±3 dB", who, level)
		}
		if math.Abs(f-want) > want*toneTol || prom < 20 {
			t.Errorf("%s heard %v Hz (prominence %.1f), want %v Hz ±2 %%", who, f, prom, want)
		}
	case <-ctx.Done():
		t.Fatalf("%s: heard nothing in time", who)
	}
}

func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Errorf("%s: not within 15 s", what)
	}
}

// connectTG places a Telegram call from the trunk's account to the user,
// who answers; both ends connect.
func connectTG(t testing.TB, from, to *tgAccount) (out, in *tgcall.Call) {
	t.Helper()
	incoming := make(chan *tgcall.Call, 1)
	accept := func(c *tgcall.Call) {
		c.Accept()
		incoming <- c
	}
	to.onIncoming.Store(&accept)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := from.engine.Dial(ctx, to.peer())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// Registered before the waits: a failed test still ends the call.
	t.Cleanup(func() {
		out.Hangup()
		waitClosed(t, out.Done(), "trunk's call end")
	})
	select {
	case in = <-incoming:
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	t.Cleanup(func() { in.Hangup() })
	waitClosed(t, out.Connected(), "trunk connected")
	waitClosed(t, in.Connected(), "user connected")
	if t.Failed() {
		t.FailNow()
	}
	return out, in
}

// sipPeer is the far end of the SIP leg, what a PBX would be: a UDP socket
// with pion/srtp contexts keyed from the same SDES negotiation, and the
// negotiated codec.
type sipPeer struct {
	t      testing.TB
	conn   *net.UDPConn
	ep     netip.AddrPort // the trunk's RTP address
	tx, rx *srtp.Context
	pt     uint8
	clock  int
	enc    rtpbridge.Encoder
	dec    rtpbridge.Decoder
}

func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func udpAddr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// newSIPPeer makes the peer and the trunk's side of the negotiation (as
// sip/sdp would hand it over): rtcp-mux, sendrecv, 20 ms, fresh SDES keys.
func newSIPPeer(t testing.TB, c sdp.Codec, suite sdp.Suite) (*sipPeer, sdp.Negotiated) {
	t.Helper()
	profile, ok := suite.Profile()
	if !ok {
		t.Fatalf("suite %s", suite)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	keys := &sdp.SRTPKeys{
		Profile:  profile,
		LocalKey: random(suite.KeyLen()), LocalSalt: random(suite.SaltLen()),
		RemoteKey: random(suite.KeyLen()), RemoteSalt: random(suite.SaltLen()),
	}
	p := &sipPeer{t: t, conn: listenLoopback(t), pt: c.PayloadType, clock: int(c.ClockRate)}
	ctx := func(key, salt []byte) *srtp.Context {
		sc, err := srtp.CreateContext(key, salt, profile)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	// RFC 4568 §6.1: each side sends with the key it announced, so the
	// peer sends with the trunk's remote key and receives with its local.
	p.tx, p.rx = ctx(keys.RemoteKey, keys.RemoteSalt), ctx(keys.LocalKey, keys.LocalSalt)
	var err error
	opts := codec.Options{}
	if c.Name == sdp.Opus {
		opts.SampleRate = 48000
	}
	if p.enc, err = codec.NewEncoder(c.Name, int(c.ClockRate), opts); err != nil {
		t.Fatal(err)
	}
	if p.dec, err = codec.NewDecoder(c.Name, int(c.ClockRate), opts); err != nil {
		t.Fatal(err)
	}
	addr := udpAddr(p.conn)
	return p, sdp.Negotiated{
		Codec: c, Remote: addr, RemoteRTCP: addr, RTCPMux: true,
		Direction: sdp.SendRecv, PTime: 20, SRTP: keys,
	}
}

// newSIPEndpoint is the trunk's SIP leg media: the endpoint on its own
// loopback socket, closed when the test ends.
func newSIPEndpoint(t testing.TB, p *sipPeer, neg sdp.Negotiated) *rtpendpoint.Endpoint {
	t.Helper()
	conn := listenLoopback(t)
	p.ep = udpAddr(conn)
	ep, err := rtpendpoint.New(conn, nil, neg, rtpendpoint.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// sendTone sends frames 20 ms packets of a freq Hz tone, SRTP-protected,
// one per 20 ms.
func (p *sipPeer) sendTone(ctx context.Context, freq float64, frames int) error {
	n := p.enc.SampleRate() / 50
	pcm := make([]int16, n)
	payload := make([]byte, 1500)
	plain := make([]byte, 1500)
	out := make([]byte, 1600)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt, SSRC: 0x5151, SequenceNumber: 65500, Timestamp: 1 << 31}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range frames {
		audiotest.Tone(pcm, freq, p.enc.SampleRate(), i*n)
		m, err := p.enc.Encode(pcm, payload)
		if err != nil {
			return err
		}
		pkt.Payload = payload[:m]
		k, err := pkt.MarshalTo(plain)
		if err != nil {
			return err
		}
		enc, err := p.tx.EncryptRTP(out[:0], plain[:k], nil)
		if err != nil {
			return err
		}
		if _, err := p.conn.WriteToUDPAddrPort(enc, p.ep); err != nil {
			return err
		}
		pkt.SequenceNumber++
		pkt.Timestamp += uint32(p.clock / 50)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// receive reads SRTP from the trunk, skips its RTCP (RFC 5761 §4: packet
// types 192-223 in the second byte) and the first skip packets, and
// decodes until it has samples samples. A closed socket ends it.
func (p *sipPeer) receive(samples, skip int) ([]int16, error) {
	buf := make([]byte, 1600)
	plain := make([]byte, 1600)
	pcm := make([]int16, 5760)
	var hdr rtp.Header
	var got []int16
	for len(got) < samples {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return got, err
		}
		if n < 2 || (buf[1] >= 192 && buf[1] <= 223) {
			continue
		}
		dec, err := p.rx.DecryptRTP(plain, buf[:n], &hdr)
		if err != nil {
			return got, err
		}
		if hdr.PayloadType != p.pt {
			continue
		}
		m, err := p.dec.Decode(dec[hdr.MarshalSize():], pcm)
		if err != nil {
			return got, err
		}
		if skip > 0 {
			skip--
			continue
		}
		got = append(got, pcm[:m]...)
	}
	return got, nil
}

// TestMediaHoldAndMute checks what the b2bua's media tells each side: a
// SIP hold (our direction inactive) reaches the Telegram user as muted and
// its end as unmuted; the Telegram user's MediaState muted reaches the
// bridge (whose media timeout then spares the silent leg); a re-offer with
// another codec is refused.
func TestMediaHoldAndMute(t *testing.T) {
	out, in := connectTG(t, mediaTrunk, mediaUser)
	userConn := in.Conn()
	// The user's media (DTLS, SCTP and with it MediaState) is processed
	// only while someone reads it.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 1500)
		for {
			if _, err := userConn.ReadRTP(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { waitClosed(t, drained, "user's reader end") })
	peer, neg := newSIPPeer(t, sdp.Codec{Name: sdp.PCMU, ClockRate: 8000, Channels: 1}, sdp.AESCM128HMACSHA180)
	ep := newSIPEndpoint(t, peer, neg)
	states := make(chan tgcall.MediaState, 64)
	m := startMedia(t, out, in, ep, neg, MediaOptions{
		Logger:        testLogger(),
		MediaTimeout:  time.Minute,
		OnRemoteState: func(s tgcall.MediaState) { states <- s },
	})
	waitClosed(t, userConn.DataChannelOpen(), "user's data channel")
	waitClosed(t, out.Conn().DataChannelOpen(), "trunk's data channel")

	// The trunk's hold, as the user sees it.
	waitUserState := func(want bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			changed := userConn.RemoteStateChanged()
			if s := userConn.RemoteState(); s.Muted == want && s.VideoState != "" {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("user sees the trunk %+v, want muted=%v", userConn.RemoteState(), want)
			}
		}
	}
	waitUserState(false)
	held := neg
	held.Direction = sdp.Inactive
	if err := m.Update(held); err != nil {
		t.Fatal(err)
	}
	waitUserState(true)
	if err := m.Update(neg); err != nil {
		t.Fatal(err)
	}
	waitUserState(false)

	// The user's mute, as the bridge sees it.
	waitBridgeMuted := func(want bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-states:
				if s.Muted == want {
					if got := m.Bridge.RemoteMuted(rtpbridge.LegTelegram); got != want {
						t.Fatalf("bridge has the Telegram leg remote-muted=%v after MediaState %+v", got, s)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no MediaState muted=%v from the user", want)
			}
		}
	}
	userConn.SetMuted(true)
	waitBridgeMuted(true)
	userConn.SetMuted(false)
	waitBridgeMuted(false)

	pcma := neg
	pcma.Codec = sdp.Codec{Name: sdp.PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1}
	if err := m.Update(pcma); !errors.Is(err, ErrCodecChanged) {
		t.Errorf("Update to PCMA: %v, want ErrCodecChanged", err)
	}
}

// TestMediaTimeoutEndsTelegramCall: when neither leg sends, the bridge's
// media timeout ends Run, and its stop ends the Telegram call with the
// reason the owner's end gave (disconnect, for a call whose media broke).
func TestMediaTimeoutEndsTelegramCall(t *testing.T) {
	out, in := connectTG(t, mediaTrunk, mediaUser)
	peer, neg := newSIPPeer(t, sdp.Codec{Name: sdp.PCMA, PayloadType: 8, ClockRate: 8000, Channels: 1}, sdp.AEADAES128GCM)
	ep := newSIPEndpoint(t, peer, neg)
	m, err := NewMedia(ep, neg, out.Conn(), func() { out.HangupWith(tgcall.DiscardDisconnect) },
		MediaOptions{Logger: testLogger(), MediaTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(context.Background()) }()
	select {
	case err := <-runErr:
		var te *rtpbridge.MediaTimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("Media.Run: %v, want a media timeout", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no media timeout within 15 s")
	}
	waitClosed(t, in.Done(), "user's call end")
	if e := in.Err(); e == nil || e.Reason != tgcall.DiscardDisconnect || !e.Remote {
		t.Errorf("user's call ended %v, want a remote disconnect", e)
	}
	if err := ep.WriteRTP([]byte{0x80, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}); !errors.Is(err, rtpendpoint.ErrClosed) {
		t.Errorf("SIP endpoint after the bridge's stop: WriteRTP %v, want ErrClosed", err)
	}
}
