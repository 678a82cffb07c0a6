package emu

import (
	"net"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/wire"
)

func readFromReflector(t *testing.T, c *net.UDPConn) wire.ReflectorPacket {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wire.ParseFromReflector(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReflectorForwards speaks the client side with telegram/wire, as the
// call engine does.
func TestReflectorForwards(t *testing.T) {
	n := shnet(t)
	refl := n.Reflectors()[0]
	dial := func() *net.UDPConn {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(refl))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, b := dial(), dial()
	peerTag := []byte("0123456789abcdef")
	tagA, err := wire.NewTag(peerTag, 0x11111111)
	if err != nil {
		t.Fatal(err)
	}
	tagB, _ := wire.NewTag(peerTag, 0x22222222)

	for _, x := range []struct {
		c   *net.UDPConn
		tag wire.Tag
	}{{a, tagA}, {b, tagB}} {
		if _, err := x.c.Write(wire.AppendHello(nil, x.tag)); err != nil {
			t.Fatal(err)
		}
		if p := readFromReflector(t, x.c); !p.Service || !p.Tag.SameCall(x.tag) || p.Tag != x.tag {
			t.Fatalf("hello reply %+v, want a service packet to %x", p, x.tag)
		}
	}

	if _, err := a.Write(wire.AppendReflectorData(nil, tagA, tagB.Random(), tagA.Random(), []byte("media!"))); err != nil {
		t.Fatal(err)
	}
	if p := readFromReflector(t, b); p.Service || p.Tag != tagB || p.SenderRandom != tagA.Random() || string(p.Data) != "media!" {
		t.Errorf("b got %+v", p)
	}
	// b answers; a is known from its data packet as well as its hello.
	if _, err := b.Write(wire.AppendReflectorData(nil, tagB, tagA.Random(), tagB.Random(), []byte("back"))); err != nil {
		t.Fatal(err)
	}
	if p := readFromReflector(t, a); p.Tag != tagA || p.SenderRandom != tagB.Random() || string(p.Data) != "back" {
		t.Errorf("a got %+v", p)
	}
}
