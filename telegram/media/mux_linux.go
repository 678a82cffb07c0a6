//go:build linux

package media

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tgsip/tgsip/internal/udpbatch"
)

// muxBatch is how many datagrams one recvmmsg(2) returns at most.
const muxBatch = 32

// batchReader reads the shared socket with recvmmsg(2) (udpbatch): one
// system call (and at most one wake-up) for up to muxBatch datagrams.
// Nothing is allocated per read: the batch and the read function are kept.
//
// The datagrams are handled inside the RawConn's read callback. A batch of
// fewer than muxBatch datagrams took everything queued, so after handling
// it the callback asks the netpoller to wait until the socket is readable
// instead of making the recvmmsg call that would only return EAGAIN: one
// system call per wake-up instead of two. This is safe only inside one
// RawConn.Read call: the netpoller's registration is edge-triggered and
// every datagram that arrives raises an edge, which a wait started from
// within the same Read sees even when it came while the batch was handled
// (a new Read call would first discard it). A wake-up for datagrams the
// short batch already took costs the one EAGAIN call it saved.
type batchReader struct {
	rc     syscall.RawConn
	b      *udpbatch.Batch
	handle func(n int) // datagrams 0..n-1 of the batch (packet)
	errno  syscall.Errno
	calls  atomic.Int64 // recvmmsg calls made (tests)
	fn     func(fd uintptr) bool
}

func newBatchReader(rc syscall.RawConn, handle func(n int)) *batchReader {
	r := &batchReader{rc: rc, b: udpbatch.New(muxBatch, receiveMTU), handle: handle}
	r.fn = r.recv
	return r
}

// recv is the read callback: false waits until the socket is readable.
func (r *batchReader) recv(fd uintptr) bool {
	r.calls.Add(1)
	n, e := r.b.Recv(fd)
	switch {
	case e == unix.EAGAIN || e == unix.EWOULDBLOCK || e == unix.EINTR:
		return false
	case e != 0:
		r.errno = e
		return true
	}
	r.handle(n)
	// A full batch may have left datagrams queued: Read returns and run
	// calls it again, which reads at once.
	return n == r.b.Len()
}

// run reads and handles batches until the socket fails or is closed.
func (r *batchReader) run() error {
	for {
		r.errno = 0
		if err := r.rc.Read(r.fn); err != nil {
			return err
		}
		if r.errno != 0 {
			return r.errno
		}
	}
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
	var r *batchReader
	r = newBatchReader(rc, func(n int) {
		// What the batch's handlers (a push's deliver function) and other
		// goroutines write to this port meanwhile goes in one sendmmsg at
		// the end of the batch.
		m.w.hold()
		for i := range n {
			b, from := r.packet(i)
			if from.IsValid() {
				m.route(b, from)
			}
		}
		m.w.release()
	})
	if err := r.run(); !isClosed(err) {
		m.log.Warn("shared port read", "err", err)
	}
}

// muxWriter batches the shared port's writes: while at least one holder
// holds them (hold, release), datagrams are queued and sent with one
// sendmmsg(2) when the last holder releases them or the queue is full.
// Outside a hold every write is a sendto of its own, as before. A write
// made during someone else's hold waits at most until that holder releases
// (a reader batch, one RTCP timer visit: well under a millisecond) or 32
// datagrams are queued.
type muxWriter struct {
	mu    sync.Mutex
	holds atomic.Int32 // changed under mu; read without it by write
	out   *udpbatch.Out
	rc    syscall.RawConn
	errno syscall.Errno
	fn    func(fd uintptr) bool

	failed atomic.Uint64 // queued datagrams the kernel refused
}

// init prepares batched writes on conn; without it (no raw access) every
// write is sent on its own.
func (w *muxWriter) init(conn *net.UDPConn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	domain, serr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || serr != nil {
		return
	}
	w.rc = rc
	w.out = udpbatch.NewOut(muxBatch, maxDatagram, domain == unix.AF_INET6)
	w.fn = w.send
}

func (w *muxWriter) hold() {
	if w.out == nil {
		return
	}
	w.mu.Lock()
	w.holds.Add(1)
	w.mu.Unlock()
}

func (w *muxWriter) release() {
	if w.out == nil {
		return
	}
	w.mu.Lock()
	if w.holds.Add(-1) == 0 {
		w.flushLocked()
	}
	w.mu.Unlock()
}

// write queues b for to while writes are held; false: nothing is held (or
// b does not fit the queue), the caller sends b itself.
func (w *muxWriter) write(b []byte, to netip.AddrPort) bool {
	if w.holds.Load() == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holds.Load() == 0 {
		return false // released meanwhile
	}
	if !w.out.Add(b, to) {
		w.flushLocked() // full: send what is queued, then queue b
		if !w.out.Add(b, to) {
			return false
		}
	}
	return true
}

// flushLocked sends everything queued; a datagram the kernel refuses is
// counted and skipped. Called under mu.
func (w *muxWriter) flushLocked() {
	for w.out.Queued() > 0 {
		w.errno = 0
		if err := w.rc.Write(w.fn); err != nil {
			w.failed.Add(uint64(w.out.Queued())) // the socket is closed
			w.out.Reset()
			return
		}
		if w.errno != 0 {
			w.failed.Add(1)
			w.out.Skip()
		}
	}
}

// send is the raw write callback: false waits until the socket is writable.
func (w *muxWriter) send(fd uintptr) bool {
	_, e := w.out.Send(fd)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	w.errno = e
	return true
}
