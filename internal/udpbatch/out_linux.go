//go:build linux

package udpbatch

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Out is a queue of datagrams sent by one sendmmsg(2) call: one system call
// for up to Len() datagrams, each to an address of its own. Add copies the
// datagram, so the caller may reuse its buffer at once. It is not safe for
// concurrent use: its owner serialises Add and Send.
type Out struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	v6    bool // the socket is AF_INET6: IPv4 goes as IPv4-mapped
	n     int  // queued
	sent  int  // of the queued, sent by Send
}

// NewOut makes a queue of n datagrams of up to size bytes each for a
// socket of family AF_INET (v6 false) or AF_INET6 (v6 true).
func NewOut(n, size int, v6 bool) *Out {
	o := &Out{
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
		v6:    v6,
	}
	for i := range o.bufs {
		o.bufs[i] = make([]byte, size)
		o.iovs[i].Base = &o.bufs[i][0]
		o.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&o.names[i]))
		o.hdrs[i].hdr.Iov = &o.iovs[i]
		o.hdrs[i].hdr.SetIovlen(1)
	}
	return o
}

// Len is how many datagrams the queue holds at most.
func (o *Out) Len() int { return len(o.hdrs) }

// Queued is how many datagrams are queued and not sent yet.
func (o *Out) Queued() int { return o.n - o.sent }

// Add queues a copy of b for addr. It returns false, queueing nothing, when
// the queue is full, b is larger than the queue's datagrams, or addr does
// not fit the socket's family (IPv6 on an AF_INET socket).
func (o *Out) Add(b []byte, addr netip.AddrPort) bool {
	if o.n == len(o.hdrs) || len(b) > len(o.bufs[o.n]) || len(b) == 0 || !addr.IsValid() || addr.Addr().Zone() != "" {
		return false // a zone (link-local) is not used for media
	}
	i := o.n
	name := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&o.names[i]))
	ip := addr.Addr()
	switch {
	case !o.v6 && ip.Unmap().Is4():
		sa := name[:unix.SizeofSockaddrInet4]
		clear(sa)
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET)
		binary.BigEndian.PutUint16(sa[2:4], addr.Port())
		a4 := ip.Unmap().As4()
		copy(sa[4:8], a4[:])
		o.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	case o.v6:
		sa := name[:]
		clear(sa)
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET6)
		binary.BigEndian.PutUint16(sa[2:4], addr.Port())
		a16 := ip.As16() // an IPv4 address becomes IPv4-mapped
		copy(sa[8:24], a16[:])
		o.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	default:
		return false
	}
	copy(o.bufs[i], b)
	o.iovs[i].SetLen(len(b))
	o.hdrs[i].hdr.Flags = 0
	o.n++
	return true
}

// Send sends what is queued and not sent yet with one sendmmsg call
// (MSG_DONTWAIT) on the socket fd and returns how many went and the errno
// (EAGAIN: the socket buffer is full, try again when writable). When the
// first datagram fails the kernel sends none; the caller may Skip it. Once
// everything is sent the queue is empty again. It is meant to run inside a
// syscall.RawConn's Write callback.
func (o *Out) Send(fd uintptr) (int, syscall.Errno) {
	if o.Queued() == 0 {
		return 0, 0
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&o.hdrs[o.sent])), uintptr(o.n-o.sent), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	o.sent += int(n)
	if o.sent == o.n {
		o.n, o.sent = 0, 0
	}
	return int(n), 0
}

// Skip drops the first unsent datagram (it failed).
func (o *Out) Skip() {
	if o.Queued() == 0 {
		return
	}
	o.sent++
	if o.sent == o.n {
		o.n, o.sent = 0, 0
	}
}

// Reset drops everything queued.
func (o *Out) Reset() { o.n, o.sent = 0, 0 }
