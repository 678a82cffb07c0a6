package rtpbridge

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/audiotest"
)

// udpEndpoint is an Endpoint over a real loopback UDP socket that sends to
// a fixed peer; its SetReadDeadline is how the bridge stops reading it.
type udpEndpoint struct {
	conn *net.UDPConn
	peer *net.UDPAddr
}

func (e udpEndpoint) ReadRTP(b []byte) (int, error) {
	n, _, err := e.conn.ReadFromUDP(b)
	return n, err
}

func (e udpEndpoint) WriteRTP(b []byte) error {
	_, err := e.conn.WriteToUDP(b, e.peer)
	return err
}

func (e udpEndpoint) SetReadDeadline(t time.Time) error { return e.conn.SetReadDeadline(t) }

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addr(c *net.UDPConn) *net.UDPAddr { return c.LocalAddr().(*net.UDPAddr) }

// TestPassthroughUDPTones sends real Opus tones through a passthrough
// bridge over loopback sockets, both ways, and checks them by frequency;
// stopping the bridge ends its reads through SetReadDeadline (the sockets
// stay open for their owner).
func TestPassthroughUDPTones(t *testing.T) {
	bSIP, bTG, peerSIP, peerTG := listenUDP(t), listenUDP(t), listenUDP(t), listenUDP(t)
	sipF, tgF := opusFormats()
	tgF.RemotePayloadType = 111
	b, err := New(Config{
		SIP:      Leg{Endpoint: udpEndpoint{bSIP, addr(peerSIP)}, Format: sipF},
		Telegram: Leg{Endpoint: udpEndpoint{bTG, addr(peerTG)}, Format: tgF},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()

	for _, tc := range []struct {
		name     string
		from, to *net.UDPConn
		via      *net.UDPConn
		pt       uint8
		freq     float64
	}{
		{"telegram to sip", peerTG, peerSIP, bTG, 111, 1000},
		{"sip to telegram", peerSIP, peerTG, bSIP, 107, 440},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sendCtx, stopSend := context.WithCancel(ctx)
			sent := make(chan error, 1)
			go func() {
				sent <- audiotest.SendOpusTone(sendCtx, udpEndpoint{tc.from, addr(tc.via)}, 0x77, tc.pt, tc.freq, 100, 5*time.Millisecond)
			}()
			tc.to.SetReadDeadline(time.Now().Add(10 * time.Second))
			pcm, err := audiotest.ReceiveOpus(udpEndpoint{conn: tc.to}, 48000/2, 5)
			stopSend()
			<-sent
			if err != nil {
				t.Fatal(err)
			}
			if f, prom := audiotest.DominantFrequency(pcm, 48000, 200, 3000, 5); f < tc.freq*0.98 || f > tc.freq*1.02 || prom < 10 {
				t.Fatalf("got %.0f Hz (prominence %.1f), want %.0f Hz", f, prom, tc.freq)
			}
		})
	}
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop: SetReadDeadline did not unblock the reads")
	}
	if st := b.Stats(); st.TelegramToSIP.Discarded != 0 || st.SIPToTelegram.Discarded != 0 {
		t.Fatalf("discarded: %+v", st)
	}
}
