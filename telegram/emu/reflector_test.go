package emu

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func helloPacket(tag []byte) []byte {
	b := append([]byte{}, tag...)
	b = append(b, bytes.Repeat([]byte{0xFF}, 12)...)
	b = append(b, 0xFE, 0xFF, 0xFF, 0xFF)
	return binary.BigEndian.AppendUint64(b, 123)
}

func dataPacket(peerTag []byte, to, from uint32, data []byte) []byte {
	b := append([]byte{}, peerTag[:12]...)
	b = binary.LittleEndian.AppendUint32(b, to)
	b = binary.LittleEndian.AppendUint32(b, from)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func readUDP(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

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
	const ra, rb = 0x11111111, 0x22222222
	tagA := binary.LittleEndian.AppendUint32(append([]byte{}, peerTag[:12]...), ra)
	tagB := binary.LittleEndian.AppendUint32(append([]byte{}, peerTag[:12]...), rb)

	for _, x := range []struct {
		c   *net.UDPConn
		tag []byte
	}{{a, tagA}, {b, tagB}} {
		if _, err := x.c.Write(helloPacket(x.tag)); err != nil {
			t.Fatal(err)
		}
		if got := readUDP(t, x.c); !bytes.HasPrefix(got, x.tag) {
			t.Fatalf("hello reply %x does not start with own tag %x", got, x.tag)
		}
	}

	if _, err := a.Write(dataPacket(peerTag, rb, ra, []byte("media!"))); err != nil {
		t.Fatal(err)
	}
	got := readUDP(t, b)
	want := append(append([]byte{}, tagB...), 0x11, 0x11, 0x11, 0x11, 0, 0, 0, 6)
	want = append(want, "media!\x00\x00"...)
	if !bytes.Equal(got, want) {
		t.Errorf("forwarded\n%x\nwant\n%x", got, want)
	}

	// b answers without a hello of a's: a is known from its data packet.
	if _, err := b.Write(dataPacket(peerTag, ra, rb, []byte("back"))); err != nil {
		t.Fatal(err)
	}
	got = readUDP(t, a)
	if len(got) != 28 || !bytes.Equal(got[:16], tagA) || binary.LittleEndian.Uint32(got[16:]) != rb || string(got[24:28]) != "back" {
		t.Errorf("reply %x", got)
	}
}

func TestParseToReflector(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 27), dataPacket(make([]byte, 16), 1, 2, nil)[:23]} {
		if _, err := parseToReflector(b); err == nil {
			t.Errorf("%x parsed", b)
		}
	}
	long := dataPacket(make([]byte, 16), 1, 2, []byte("abc"))
	binary.BigEndian.PutUint32(long[20:], 100)
	if _, err := parseToReflector(long); err == nil {
		t.Error("length beyond packet accepted")
	}
}

func FuzzParseToReflector(f *testing.F) {
	f.Add(helloPacket(make([]byte, 16)))
	f.Add(dataPacket(make([]byte, 16), 1, 2, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseToReflector(b)
		if err != nil || p.hello {
			return
		}
		out := appendToClient(nil, p.tag, p.src, p.payload)
		if len(out)%4 != 0 || !bytes.Equal(out[24:24+len(p.payload)], p.payload) {
			t.Fatalf("round trip %x", out)
		}
	})
}
