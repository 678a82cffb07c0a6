//go:build linux

package media

import (
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tgsip/tgsip/internal/udpbatch"
)

// muxBatch is how many datagrams one recvmmsg(2) returns at most.
const muxBatch = 32

// batchReader reads the shared socket with recvmmsg(2) (udpbatch): one
// system call (and at most one wake-up) for up to muxBatch datagrams.
// Nothing is allocated per read: the batch and the read function are kept.
type batchReader struct {
	rc    syscall.RawConn
	b     *udpbatch.Batch
	got   int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newBatchReader(rc syscall.RawConn) *batchReader {
	r := &batchReader{rc: rc, b: udpbatch.New(muxBatch, receiveMTU)}
	r.fn = r.recv
	return r
}

func (r *batchReader) recv(fd uintptr) bool {
	n, e := r.b.Recv(fd)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK || e == unix.EINTR {
		return false // wait until readable
	}
	r.got, r.errno = n, e
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

func (r *batchReader) packet(i int) ([]byte, netip.AddrPort) { return r.b.Packet(i) }

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
