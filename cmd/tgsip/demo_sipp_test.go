package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tgsip/tgsip/internal/audiotest"
	"github.com/tgsip/tgsip/internal/demo"
	"github.com/tgsip/tgsip/rtpbridge/codec"
	"github.com/tgsip/tgsip/telegram/emu"
)

// sipp against `tgsip demo` with media the test carries: sipp 3.6 has no
// SRTP and cannot analyse audio, so its offer (testdata/sipp/uac_media.xml)
// points the media at a socket of this test, which sends a tone (plain RTP
// or SDES-SRTP under the key the offer carries, RFC 4568 §6.1) and checks
// that the echo user's answer brings the same frequency back. sipp does
// the signalling: INVITE, ACK, and the BYE after -d.

// echoTone is what the test sends to echo: neither tone's 1 kHz nor the
// Telegram side's usual 440 Hz, so hearing it back means echo sent it.
const echoTone = 700.0

// startDemoNetwork is startDemo that also hands back the demo's emulated
// Telegram network, to check the Telegram side of its calls.
func startDemoNetwork(t *testing.T, args ...string) (*demoProc, *emu.Network) {
	t.Helper()
	got := make(chan *emu.Network, 1)
	demoStarted = func(n *emu.Network) { got <- n }
	t.Cleanup(func() { demoStarted = nil })
	d := startDemo(t, args...)
	select {
	case n := <-got:
		return d, n
	default:
		t.Fatal("the demo did not report its network")
		return nil, nil
	}
}

// mediaOffer is what the test's side of a sipp call offers.
type mediaOffer struct {
	codec string // SDP encoding name: PCMU or opus
	clock int
	pt    uint8
	srtp  bool // RTP/SAVP with an AES_CM_128_HMAC_SHA1_80 a=crypto
}

func (o mediaOffer) rtpmap() string {
	if o.codec == codec.Opus {
		return "opus/48000/2"
	}
	return fmt.Sprintf("%s/%d", o.codec, o.clock)
}

// rtpPeer is the test's RTP socket for one call, with SDES-SRTP when the
// call negotiated it (pion/srtp, independent of package sip's own).
type rtpPeer struct {
	conn   *net.UDPConn
	remote *net.UDPAddr
	tx, rx *srtp.Context // nil: plain RTP
	mu     sync.Mutex    // tx
	out    []byte
}

func (p *rtpPeer) WriteRTP(b []byte) error {
	if p.tx != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		var err error
		if p.out, err = p.tx.EncryptRTP(p.out[:0], b, nil); err != nil {
			return err
		}
		b = p.out
	}
	_, err := p.conn.WriteToUDP(b, p.remote)
	return err
}

// ReadRTP returns the next packet that decrypts and authenticates (others
// are dropped, as a receiver does); the socket's deadline bounds it.
func (p *rtpPeer) ReadRTP(b []byte) (int, error) {
	in := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFromUDP(in)
		if err != nil {
			return 0, err
		}
		if n >= 2 && in[1]&0x7f >= 72 && in[1]&0x7f <= 76 {
			continue // RTCP (RFC 5761 §4): not audio
		}
		if p.rx == nil {
			return copy(b, in[:n]), nil
		}
		dec, err := p.rx.DecryptRTP(nil, in[:n], nil)
		if err != nil {
			continue
		}
		return copy(b, dec), nil
	}
}

// sdesKey is a fresh AES_CM_128_HMAC_SHA1_80 master key and salt as the
// inline key of an a=crypto line (RFC 4568 §6.1: 16 + 14 bytes, base64).
func sdesKey(t *testing.T) (inline string, raw []byte) {
	t.Helper()
	raw = make([]byte, 30)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw), raw
}

func srtpContext(t *testing.T, raw []byte) *srtp.Context {
	t.Helper()
	c, err := srtp.CreateContext(raw[:16], raw[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var answerLog = regexp.MustCompile(`answer port=(\d+) key=(\S*) end`)

// sippEcho has sipp call service at the demo with offer, media on the
// test's socket; the test sends echoTone for about 3 s and returns the
// dominant frequency it heard back, after sipp's BYE completed.
func sippEcho(t *testing.T, d *demoProc, service string, offer mediaOffer) (freq, prominence float64) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := &rtpPeer{conn: conn}
	proto, attr := "RTP/AVP", "a=sendrecv"
	var ourKey []byte
	if offer.srtp {
		var inline string
		inline, ourKey = sdesKey(t)
		proto, attr = "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+inline
		peer.tx = srtpContext(t, ourKey)
	}
	logFile := filepath.Join(t.TempDir(), "sipp.log")
	wait := startSipp(t, freeSIPPort(t), d.addr.String(),
		"-sf", filepath.Join("testdata", "sipp", "uac_media.xml"), "-s", service, "-d", "6000",
		"-key", "rtp_port", strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port),
		"-key", "proto", proto, "-key", "pt", strconv.Itoa(int(offer.pt)),
		"-key", "rtpmap", offer.rtpmap(), "-key", "attr", attr,
		"-trace_logs", "-log_file", logFile)

	ended := make(chan error, 1)
	go func() { ended <- wait() }()
	// The answer's port and key, from sipp's log (written when the 200
	// arrives).
	var m []string
	deadline := time.After(30 * time.Second)
	for m == nil {
		raw, _ := os.ReadFile(logFile) // not there until sipp logs
		if m = answerLog.FindStringSubmatch(string(raw)); m != nil {
			break
		}
		select {
		case err := <-ended:
			t.Fatalf("no answer from %s: %v\n%s", service, err, d.logs.String())
		case <-deadline:
			t.Fatalf("no answer from %s in 30 s\n%s", service, d.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	port, _ := strconv.Atoi(m[1])
	peer.remote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	if offer.srtp {
		theirs, err := base64.StdEncoding.DecodeString(m[2])
		if err != nil || len(theirs) != 30 {
			t.Fatalf("the answer has no AES_CM_128_HMAC_SHA1_80 key (%d bytes, %v)", len(theirs), err)
		}
		peer.rx = srtpContext(t, theirs)
	} else if m[2] != "" {
		t.Fatal("a plain RTP/AVP offer got an SDES key in the answer")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- sendTone(ctx, peer, offer, echoTone, 150) }()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	pcm, rate, err := receiveTone(peer, offer)
	if err != nil {
		t.Fatalf("%s: receive: %v\n%s", service, err, d.logs.String())
	}
	if err := <-sent; err != nil {
		t.Fatalf("%s: send: %v", service, err)
	}
	if err := <-ended; err != nil {
		t.Fatalf("%s: %v", service, err)
	}
	return audiotest.DominantFrequency(pcm, rate, 100, 3500, 2)
}

// sendTone sends frames 20 ms frames of freq Hz in the offer's codec.
func sendTone(ctx context.Context, w audiotest.RTPWriter, o mediaOffer, freq float64, frames int) error {
	if o.codec == codec.Opus {
		return audiotest.SendOpusTone(ctx, w, 0x5eed, o.pt, freq, frames, 20*time.Millisecond)
	}
	enc, err := codec.NewEncoder(o.codec, o.clock, codec.Options{})
	if err != nil {
		return err
	}
	frame := enc.SampleRate() / 50
	pcm := make([]int16, frame)
	payload := make([]byte, 1000)
	buf := make([]byte, 1500)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: o.pt, SSRC: 0x5eed, SequenceNumber: 1, Timestamp: 160}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range frames {
		audiotest.Tone(pcm, freq, enc.SampleRate(), i*frame)
		n, err := enc.Encode(pcm, payload)
		if err != nil {
			return err
		}
		pkt.Payload = payload[:n]
		m, err := pkt.MarshalTo(buf)
		if err != nil {
			return err
		}
		if err := w.WriteRTP(buf[:m]); err != nil {
			return err
		}
		pkt.SequenceNumber++
		pkt.Timestamp += uint32(o.clock / 50)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// receiveTone decodes half a second of the offer's codec after the first
// 25 packets (the path's start: silence until our tone comes back).
func receiveTone(r audiotest.RTPReader, o mediaOffer) ([]int16, int, error) {
	dec, err := codec.NewDecoder(o.codec, o.clock, codec.Options{})
	if err != nil {
		return nil, 0, err
	}
	want, skip := dec.SampleRate()/2, 25
	buf := make([]byte, 1500)
	pcm := make([]int16, 5760)
	var got []int16
	var pkt rtp.Packet
	for len(got) < want {
		n, err := r.ReadRTP(buf)
		if err != nil {
			return got, dec.SampleRate(), err
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != o.pt {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		k, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			return got, dec.SampleRate(), err
		}
		got = append(got, pcm[:k]...)
	}
	return got, dec.SampleRate(), nil
}

// waitTelegramIdle waits until every call the emulator has seen is
// discarded: nothing left ringing or active on the Telegram side.
func waitTelegramIdle(t *testing.T, n *emu.Network, want int) []emu.CallInfo {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		calls := n.Calls()
		idle := len(calls) >= want
		for _, c := range calls {
			if c.State != emu.CallDiscarded {
				idle = false
			}
		}
		if idle {
			return calls
		}
		if time.Now().After(deadline) {
			for _, c := range calls {
				t.Errorf("Telegram call %d: %s", c.ID, c.State)
			}
			t.Fatalf("%d calls on the emulator, want %d, all discarded", len(calls), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemoSippEchoCodecs: sipp calls echo through `tgsip demo` with a
// PCMU and an Opus offer, each plain and SDES-SRTP, and hears its own
// 700 Hz back; relayonly (no p2p: media through the emulator's reflector)
// does the same. sipp's BYE ends each call on both networks: the
// emulator's call is discarded by the trunk's account.
func TestDemoSippEchoCodecs(t *testing.T) {
	d, n := startDemoNetwork(t)
	pcmu := mediaOffer{codec: codec.PCMU, clock: 8000, pt: 0}
	opus := mediaOffer{codec: codec.Opus, clock: 48000, pt: 111}
	srtpOf := func(o mediaOffer) mediaOffer { o.srtp = true; return o }
	cases := []struct {
		name, service string
		offer         mediaOffer
	}{
		{"opus", "echo", opus},
		{"pcmu-srtp", "echo", srtpOf(pcmu)},
		{"opus-srtp", "echo", srtpOf(opus)},
		{"relayonly-pcmu", "relayonly", pcmu},
	}
	for i, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			f, prom := sippEcho(t, d, c.service, c.offer)
			t.Logf("%s heard back %.0f Hz (prominence %.1f)", c.name, f, prom)
			if math.Abs(f-echoTone) > echoTone*0.02 || prom < 20 {
				t.Errorf("heard %v Hz (prominence %.1f), want %v Hz", f, prom, echoTone)
			}
			calls := waitTelegramIdle(t, n, i+1)
			last := calls[len(calls)-1]
			if last.DiscardedBy != last.AdminID {
				t.Errorf("Telegram call discarded by %d, want the trunk's account %d (sipp's BYE)", last.DiscardedBy, last.AdminID)
			}
			if callee := demoUserID(t, n, c.service); last.ParticipantID != callee {
				t.Errorf("Telegram call to %d, want %s (%d)", last.ParticipantID, c.service, callee)
			}
			if last.P2PAllowed != (c.service != "relayonly") {
				t.Errorf("p2p allowed %v for %s", last.P2PAllowed, c.service)
			}
		})
		if !ok {
			break
		}
	}
	d.stop()
	if c := d.wait(t, time.Minute); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}

// demoUserID returns the emulator's user id of a demo user of the
// default cast by its name.
func demoUserID(t *testing.T, n *emu.Network, name string) int64 {
	t.Helper()
	for _, e := range demo.Directory() {
		if e.Name == name {
			if u, ok := n.UserByPhone(e.Phone); ok {
				return u.ID
			}
		}
	}
	t.Fatalf("no demo user %s on the emulator", name)
	return 0
}

// TestDemoSippNoAnswer: noanswer rings until telegram.ring_timeout (4 s
// here), then sipp gets 480 and the Telegram call is discarded as missed.
func TestDemoSippNoAnswer(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tgsip.yaml")
	if err := os.WriteFile(cfg, []byte(`sip:
  trunks:
    - {name: demo, allow: ["127.0.0.0/8"]}
telegram:
  ring_timeout: 4s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, n := startDemoNetwork(t, "--config", cfg)
	start := time.Now()
	if err := startSipp(t, freeSIPPort(t), d.addr.String(), "-sf", filepath.Join("testdata", "sipp", "uac_480.xml"), "-s", "noanswer")(); err != nil {
		t.Fatalf("noanswer: %v\n%s", err, d.logs.String())
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("480 after %v, before the ring timeout", took)
	}
	calls := waitTelegramIdle(t, n, 1)
	if r := calls[0].Reason; r == nil || r.TypeName() != "phoneCallDiscardReasonMissed" {
		t.Errorf("Telegram call discarded with %v, want missed", r)
	}
	d.stop()
	if c := d.wait(t, time.Minute); c != 0 {
		t.Errorf("demo exit %d\n%s", c, d.logs.String())
	}
}
