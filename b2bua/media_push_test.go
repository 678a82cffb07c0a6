package b2bua

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/tgsip/tgsip/rtpbridge"
	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// fakeTelegram is a Telegram leg whose ReadRTP fails with its own
// sentinel once its push stopped, as tgcall.Conn's does.
type fakeTelegram struct {
	stopped chan struct{}
	pushed  func([]byte)
}

var errFakeStopped = errors.New("fake: push stopped")

func (f *fakeTelegram) ReadRTP([]byte) (int, error) {
	<-f.stopped
	return 0, errFakeStopped
}
func (f *fakeTelegram) WriteRTP([]byte) error             { return nil }
func (f *fakeTelegram) RemoteFractionLost() (uint8, bool) { return 0, false }
func (f *fakeTelegram) Close() error                      { return nil }
func (f *fakeTelegram) PushRTP(deliver func([]byte)) func() {
	f.pushed = deliver
	return func() { close(f.stopped) }
}

// TestTelegramPushAdapter: the Telegram leg's adapter forwards PushRTP
// and maps the Conn's own stop error to rtpbridge.ErrPushStopped; a Conn
// without PushRTP (main's tgcall) gives a plain, reading endpoint.
func TestTelegramPushAdapter(t *testing.T) {
	f := &fakeTelegram{stopped: make(chan struct{})}
	var ep rtpbridge.Endpoint = &pushingTelegramEndpoint{telegramEnd: f, push: f}
	p, ok := ep.(rtpbridge.Pusher)
	if !ok {
		t.Fatal("not a Pusher")
	}
	got := 0
	stop := p.PushRTP(func([]byte) { got++ })
	f.pushed([]byte{1})
	if got != 1 {
		t.Fatal("deliver not forwarded")
	}
	errc := make(chan error, 1)
	go func() { _, err := ep.ReadRTP(make([]byte, 10)); errc <- err }()
	stop()
	if err := <-errc; !errors.Is(err, rtpbridge.ErrPushStopped) {
		t.Fatalf("ReadRTP after stop: %v", err)
	}
	if _, ok := ep.(rtpbridge.LossReporter); !ok {
		t.Fatal("the adapter lost LossReporter")
	}

	_, connPushes := any((*tgcall.Conn)(nil)).(pusher)
	_, legPushes := telegramLeg(nil, func() {}).(rtpbridge.Pusher)
	if connPushes != legPushes {
		t.Fatalf("tgcall.Conn pushes: %v, its bridge endpoint: %v", connPushes, legPushes)
	}
}

// TestSIPPushAdapter: the SIP leg's endpoint as the bridge gets it pushes,
// and its ReadRTP returns rtpbridge.ErrPushStopped after stop.
func TestSIPPushAdapter(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	neg := sdp.Negotiated{Codec: sdp.Codec{Name: sdp.Opus, PayloadType: 107, ClockRate: 48000, Channels: 2},
		Remote: udpAddr(c), RTCPMux: true, Direction: sdp.SendRecv}
	raw, err := rtpendpoint.New(c, nil, neg, rtpendpoint.Options{RTCPInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var ep rtpbridge.Endpoint = sipEndpoint{raw}
	stop := ep.(rtpbridge.Pusher).PushRTP(func([]byte) {})
	errc := make(chan error, 1)
	go func() { _, err := ep.ReadRTP(make([]byte, 1500)); errc <- err }()
	// A ReadRTP that came after stop would read the socket instead.
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("(*Endpoint).waitPush")); {
		if time.Now().After(deadline) {
			t.Fatal("ReadRTP not waiting in the push")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-errc; !errors.Is(err, rtpbridge.ErrPushStopped) {
		t.Fatalf("ReadRTP after stop: %v", err)
	}
}
