package sip

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip/rtpendpoint"
	"github.com/tgsip/tgsip/sip/sdp"
)

// TestUsePollers: the calls' endpoints get the server's pollers in turn,
// and the server's Close closes them (an endpoint pushing through one
// then ends instead of waiting).
func TestUsePollers(t *testing.T) {
	s := newTestServer(t, nil)
	var ps []*rtpendpoint.Poller
	for range 2 {
		p, err := rtpendpoint.NewPoller(rtpendpoint.PollerOptions{})
		if err != nil {
			t.Skip(err)
		}
		ps = append(ps, p)
	}
	s.UsePollers(ps...)
	port, err := s.Ports().Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer port.Release()
	for i := range 4 {
		e := s.defaultEngine(port, s.cfg.Media.SRTP, false).(*sdpEngine)
		if e.opts.Poller != ps[i%2] {
			t.Fatalf("call %d: poller %p, want %p", i, e.opts.Poller, ps[i%2])
		}
	}
	s.Close()

	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	neg := sdp.Negotiated{Codec: sdp.Codec{Name: "PCMU", ClockRate: 8000, Channels: 1},
		Remote: netip.MustParseAddrPort("127.0.0.1:9"), RTCPMux: true, Direction: sdp.SendRecv, PTime: 20}
	ep, err := rtpendpoint.New(conn, nil, neg, rtpendpoint.Options{Poller: ps[0], RTCPInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	stop := ep.PushRTP(func([]byte) {})
	defer stop()
	got := make(chan error, 1)
	go func() {
		_, err := ep.ReadRTP(make([]byte, 1500))
		got <- err
	}()
	select {
	case err := <-got:
		if err == nil || errors.Is(err, rtpendpoint.ErrPushStopped) {
			t.Fatalf("push through a closed poller: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's Close left its poller open")
	}
}
