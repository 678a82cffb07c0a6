package media

import (
	"net"
	"testing"
)

// TestReflectorWriteAllocationFree: wrapping a datagram for the reflector
// takes a buffer from the shared pool and gives it back: no allocation per
// write, and no buffer kept by the port.
func TestReflectorWriteAllocationFree(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := newReflectorPort(Reflector{ServerID: 1, Addr: sink.LocalAddr().(*net.UDPAddr).AddrPort()}, conn)
	defer p.Close()
	p.remoteTag.Store(7)
	pkt := make([]byte, 200)
	if _, err := p.WriteToAddrPort(pkt, p.addr); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := p.WriteToAddrPort(pkt, p.addr); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per reflector write, want 0", n)
	}
	buf := make([]byte, 2048)
	n, err := sink.Read(buf)
	// tag, sender random, length, then the datagram (200 needs no padding)
	if want := 16 + 4 + 4 + len(pkt); err != nil || n != want {
		t.Errorf("reflector got %d bytes (%v), want %d", n, err, want)
	}
}
