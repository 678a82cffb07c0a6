//go:build linux

package sip

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestUDPListenerReadBuffer: the SIP UDP listener asks for a receive
// buffer of udpReadBuffer, so a burst of requests queues instead of being
// dropped (udpbuf.go).
func TestUDPListenerReadBuffer(t *testing.T) {
	sysctl := func(name string) int {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			t.Skip(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Skip(err)
		}
		return n
	}
	// Linux reports twice the size set (socket(7)) and caps it at rmem_max.
	want := 2 * min(udpReadBuffer, sysctl("rmem_max"))
	def := 2 * sysctl("rmem_default")
	if want <= def {
		t.Skipf("net.core.rmem_max allows no more than the default %d", def/2)
	}
	s := newTestServer(t, nil)
	start(t, s)
	ap, _ := s.Addr(UDP)
	c := s.udpListener(ap)
	if c == nil {
		t.Fatal("no UDP listener")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if got < want {
		t.Fatalf("SO_RCVBUF %d, want %d (default %d)", got, want, def)
	}
}
