//go:build linux

package media

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// muxBatch is how many datagrams one recvmmsg(2) returns at most.
const muxBatch = 32

// mmsghdr is struct mmsghdr (linux/socket.h).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batchReader reads the shared socket with recvmmsg(2): one system call
// (and at most one wake-up) for up to muxBatch datagrams. Nothing is
// allocated per read: headers, buffers and the read function are kept.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  [muxBatch]mmsghdr
	iovs  [muxBatch]unix.Iovec
	names [muxBatch]unix.RawSockaddrInet6
	bufs  [muxBatch][]byte
	got   int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newBatchReader(rc syscall.RawConn) *batchReader {
	r := &batchReader{rc: rc}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, receiveMTU)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(receiveMTU)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	r.fn = r.recv
	return r
}

func (r *batchReader) recv(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].hdr.Flags = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), muxBatch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false // wait until readable
	}
	if e == unix.EINTR {
		return false
	}
	r.got, r.errno = int(n), e
	return true
}

// read fills the batch; it returns how many datagrams arrived.
func (r *batchReader) read() (int, error) {
	r.got, r.errno = 0, 0
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.got, nil
}

func (r *batchReader) packet(i int) ([]byte, netip.AddrPort) {
	name := unsafe.Slice((*byte)(unsafe.Pointer(&r.names[i])), r.hdrs[i].hdr.Namelen)
	return r.bufs[i][:r.hdrs[i].n], sockaddrToAddrPort(name)
}

// readLoop reads the shared socket until it is closed.
func (m *sharedMux) readLoop() {
	defer close(m.done)
	rc, err := m.conn.SyscallConn()
	if err != nil {
		m.log.Warn("shared port", "err", err)
		return
	}
	r := newBatchReader(rc)
	for {
		n, err := r.read()
		if err != nil {
			if !isClosed(err) {
				m.log.Warn("shared port read", "err", err)
			}
			return
		}
		for i := range n {
			b, from := r.packet(i)
			if from.IsValid() {
				m.route(b, from)
			}
		}
	}
}

// sockaddrToAddrPort reads a sockaddr_in/sockaddr_in6 (network byte order
// port) into an AddrPort.
func sockaddrToAddrPort(sa []byte) netip.AddrPort {
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
