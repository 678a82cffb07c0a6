//go:build linux

package udpbatch

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// sendAll sends everything queued on c, as the shared port's writer does.
func sendAll(t *testing.T, c *net.UDPConn, o *Out) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for o.Queued() > 0 {
		var e syscall.Errno
		if err := rc.Write(func(fd uintptr) bool { _, e = o.Send(fd); return e != syscall.EAGAIN }); err != nil {
			t.Fatal(err)
		}
		if e != 0 {
			t.Fatalf("sendmmsg: %v", e)
		}
	}
}

func recvString(t *testing.T, c *net.UDPConn) (string, netip.AddrPort) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n]), from
}

// TestOut: one Send takes datagrams to several addresses, each with its
// own bytes (Add copies); a full queue or an oversized datagram is
// refused; on an AF_INET6 socket IPv4 goes IPv4-mapped.
func TestOut(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
			if network == "udp" {
				laddr = &net.UDPAddr{} // dual stack, AF_INET6
			}
			tx, err := net.ListenUDP(network, laddr)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			var rx [2]*net.UDPConn
			for i := range rx {
				if rx[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
				defer rx[i].Close()
			}
			o := NewOut(3, 8, network == "udp")
			buf := []byte("a0")
			if !o.Add(buf, rx[0].LocalAddr().(*net.UDPAddr).AddrPort()) {
				t.Fatal("Add refused the first datagram")
			}
			buf[0] = 'b' // Add copied: the queued datagram stays "a0"
			if !o.Add([]byte("b1"), rx[1].LocalAddr().(*net.UDPAddr).AddrPort()) ||
				!o.Add([]byte("c0"), rx[0].LocalAddr().(*net.UDPAddr).AddrPort()) {
				t.Fatal("Add refused a datagram")
			}
			if o.Add([]byte("d"), rx[0].LocalAddr().(*net.UDPAddr).AddrPort()) {
				t.Fatal("Add took a datagram beyond Len")
			}
			if o.Queued() != 3 {
				t.Fatalf("Queued = %d, want 3", o.Queued())
			}
			sendAll(t, tx, o)
			if o.Queued() != 0 {
				t.Fatalf("Queued = %d after Send", o.Queued())
			}
			if o.Add(make([]byte, 9), rx[0].LocalAddr().(*net.UDPAddr).AddrPort()) {
				t.Fatal("Add took a datagram larger than the queue's buffers")
			}
			want := tx.LocalAddr().(*net.UDPAddr).Port
			for _, w := range []struct {
				rx   int
				data string
			}{{0, "a0"}, {0, "c0"}, {1, "b1"}} {
				got, from := recvString(t, rx[w.rx])
				if got != w.data || int(from.Port()) != want {
					t.Fatalf("receiver %d got %q from %v, want %q from port %d", w.rx, got, from, w.data, want)
				}
			}
		})
	}
}

// TestOutSkip: a datagram the kernel refuses (to port 0: EINVAL) can be
// skipped and the rest still go.
func TestOutSkip(t *testing.T) {
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	o := NewOut(4, 8, false)
	o.Add([]byte("bad"), netip.MustParseAddrPort("127.0.0.1:0"))
	o.Add([]byte("good"), rx.LocalAddr().(*net.UDPAddr).AddrPort())
	rc, _ := tx.SyscallConn()
	var n int
	var e syscall.Errno
	_ = rc.Write(func(fd uintptr) bool { n, e = o.Send(fd); return true })
	if e == 0 || n != 0 || o.Queued() != 2 {
		t.Fatalf("Send = %d, %v, queued %d; want a failure of the first datagram", n, e, o.Queued())
	}
	o.Skip()
	sendAll(t, tx, o)
	if got, _ := recvString(t, rx); got != "good" {
		t.Fatalf("got %q", got)
	}
}
