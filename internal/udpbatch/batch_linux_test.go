//go:build linux

package udpbatch

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecv: one Recv takes every queued datagram with its source; an empty
// socket gives EAGAIN, not a wait.
func TestRecv(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, s := range []string{"one", "two", "three"} {
		if _, err := tx.WriteToUDP([]byte(s), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := New(2, 64)
	var got []string
	for len(got) < 3 {
		var n int
		var e syscall.Errno
		if err := rc.Read(func(fd uintptr) bool { n, e = b.Recv(fd); return true }); err != nil {
			t.Fatal(err)
		}
		if e != 0 || n == 0 || n > b.Len() {
			t.Fatalf("Recv = %d, %v after %q", n, e, got)
		}
		for i := range n {
			p, from := b.Packet(i)
			if from != tx.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("datagram from %v, want %v", from, tx.LocalAddr())
			}
			got = append(got, string(p))
		}
	}
	if got[0] != "one" || got[1] != "two" || got[2] != "three" {
		t.Fatalf("datagrams %q", got)
	}
	var e syscall.Errno
	if err := rc.Read(func(fd uintptr) bool { _, e = b.Recv(fd); return true }); err != nil {
		t.Fatal(err)
	}
	if e != unix.EAGAIN {
		t.Fatalf("Recv on an empty socket: errno %v, want EAGAIN", e)
	}
}

func TestAddrPort(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 5004)
	copy(v4[4:], []byte{127, 0, 0, 1})
	v6 := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 5006)
	copy(v6[8:], netip.MustParseAddr("::1").AsSlice())
	mapped := append([]byte(nil), v6...)
	copy(mapped[8:], netip.MustParseAddr("::ffff:10.0.0.1").AsSlice())
	unix6 := append([]byte(nil), v4...)
	binary.NativeEndian.PutUint16(unix6, unix.AF_UNIX)
	for _, c := range []struct {
		name string
		sa   []byte
		want netip.AddrPort
	}{
		{"ipv4", v4, netip.MustParseAddrPort("127.0.0.1:5004")},
		{"ipv6", v6, netip.MustParseAddrPort("[::1]:5006")},
		{"ipv4-mapped", mapped, netip.MustParseAddrPort("10.0.0.1:5006")},
		{"short", v4[:7], netip.AddrPort{}},
		{"short ipv6", v6[:20], netip.AddrPort{}},
		{"other family", unix6, netip.AddrPort{}},
	} {
		if got := AddrPort(c.sa); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
