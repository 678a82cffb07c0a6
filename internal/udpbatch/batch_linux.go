//go:build linux

package udpbatch

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr (linux/socket.h).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// Batch holds the headers, source addresses and buffers of one recvmmsg
// call. It is not safe for concurrent use: one reading goroutine owns it.
type Batch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
}

// New makes a batch of n datagrams of up to size bytes each.
func New(n, size int) *Batch {
	b := &Batch{
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
	}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	return b
}

// Len is how many datagrams one Recv takes at most.
func (b *Batch) Len() int { return len(b.hdrs) }

// Recv takes up to Len() datagrams queued on the socket fd without
// waiting (MSG_DONTWAIT) and returns how many it took and the errno of the
// call (EAGAIN when nothing was queued). It is meant to run inside a
// syscall.RawConn's Read callback. recvmmsg with MSG_DONTWAIT never
// blocks, so it is a raw system call (no scheduler hand-off).
func (b *Batch) Recv(fd uintptr) (int, syscall.Errno) {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].hdr.Flags = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Packet returns datagram i of the last Recv and its source address; the
// address is invalid when the source is neither IPv4 nor IPv6. The bytes
// are overwritten by the next Recv.
func (b *Batch) Packet(i int) ([]byte, netip.AddrPort) {
	name := unsafe.Slice((*byte)(unsafe.Pointer(&b.names[i])), b.hdrs[i].hdr.Namelen)
	return b.bufs[i][:b.hdrs[i].n], AddrPort(name)
}

// AddrPort reads a sockaddr_in or sockaddr_in6 (port in network byte
// order), unmapping IPv4-mapped IPv6 addresses; anything else gives an
// invalid AddrPort.
func AddrPort(sa []byte) netip.AddrPort {
	if len(sa) < 8 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		if len(sa) < 24 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}
