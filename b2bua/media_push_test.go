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
)

// TestTelegramPushAdapter: the Telegram leg's endpoint as the bridge gets
// it pushes (a real call's Conn on the trunk's shared port), and its
// ReadRTP, parked while the Conn pushes, returns rtpbridge.ErrPushStopped
// once the push stops (the Conn's own error is tgcall.ErrPushStopped).
func TestTelegramPushAdapter(t *testing.T) {
	out, _ := connectTG(t, mediaTrunk, mediaUser)
	var ep rtpbridge.Endpoint = NewTelegramEndpoint(out.Conn(), out.Hangup)
	p, ok := ep.(rtpbridge.Pusher)
	if !ok {
		t.Fatal("not a Pusher")
	}
	stop := p.PushRTP(func([]byte) {})
	errc := make(chan error, 1)
	go func() { _, err := ep.ReadRTP(make([]byte, 1500)); errc <- err }()
	time.Sleep(50 * time.Millisecond) // parked in ReadRTP
	stop()
	select {
	case err := <-errc:
		if !errors.Is(err, rtpbridge.ErrPushStopped) {
			t.Fatalf("ReadRTP after stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadRTP still parked after stop")
	}
	if _, ok := ep.(rtpbridge.LossReporter); !ok {
		t.Fatal("the endpoint lost LossReporter")
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
