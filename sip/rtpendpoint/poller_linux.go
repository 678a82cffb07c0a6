//go:build linux

package rtpendpoint

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/tgsip/tgsip/internal/udpbatch"
)

// pollBatch is how many datagrams one recvmmsg(2) takes from one socket
// at most; pollEvents how many ready sockets one epoll_wait(2) returns.
const (
	pollBatch  = 8
	pollEvents = 128
)

// epollET is EPOLLET as the unsigned events field takes it (syscall's
// constant is a negative int).
const epollET = 1 << 31

// Poller: see poller.go.
type Poller struct {
	epfd int
	file *os.File // the epoll descriptor in Go's netpoller
	rc   syscall.RawConn
	done chan struct{}

	mu    sync.Mutex
	slots []*pollSlot // by the id in the epoll event; nil: free
	free  []int32
	byEP  map[*Endpoint]int32

	// Owned by the Poller's goroutine.
	events [pollEvents]syscall.EpollEvent
	batch  [pollEvents]*pollSlot
	waitFn func(uintptr) bool
	readFn func(uintptr) bool
	before func()
	after  func()
	rx     *udpbatch.Batch
	got    int
	errno  syscall.Errno
}

// pollSlot is one registered endpoint.
type pollSlot struct {
	e  *Endpoint
	p  *push
	rc syscall.RawConn // of e.rtpConn: reads hold its descriptor open
}

// NewPoller starts a Poller (one goroutine). Close it after its endpoints.
func NewPoller(opt PollerOptions) (*Poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rtpendpoint: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("rtpendpoint: epoll: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rtpendpoint-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rtpendpoint: epoll: %w", err)
	}
	p := &Poller{epfd: fd, file: f, rc: rc, done: make(chan struct{}), byEP: map[*Endpoint]int32{}, rx: udpbatch.New(pollBatch, bufSize)}
	p.waitFn, p.readFn = p.wait, p.recv
	p.before, p.after = opt.BeforeBatch, opt.AfterBatch
	go p.run()
	return p, nil
}

// Close stops the Poller's goroutine and waits for it; endpoints still
// registered deliver nothing more (their ReadRTP waits for Close).
func (p *Poller) Close() {
	p.mu.Lock()
	f := p.file
	p.file = nil
	p.mu.Unlock()
	if f == nil {
		<-p.done
		return
	}
	f.Close() // wakes the goroutine: its read of the epoll descriptor fails
	<-p.done
}

// add registers e, pushing to p, for readability of its RTP socket.
func (p *Poller) add(e *Endpoint, ps *push) error {
	rc, err := e.rtpConn.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.file == nil {
		return fmt.Errorf("rtpendpoint: poller closed")
	}
	if _, ok := p.byEP[e]; ok {
		return fmt.Errorf("rtpendpoint: endpoint already polled")
	}
	var id int32
	if n := len(p.free); n > 0 {
		id, p.free = p.free[n-1], p.free[:n-1]
	} else {
		id = int32(len(p.slots))
		p.slots = append(p.slots, nil)
	}
	// Edge-triggered: level-triggered sockets go back on the epoll
	// descriptor's ready list after every epoll_wait that reports them,
	// which wakes its waiter (Go's netpoller) once more for nothing.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: id}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.free = append(p.free, id)
		return fmt.Errorf("rtpendpoint: epoll_ctl: %w", err)
	}
	p.slots[id] = &pollSlot{e: e, p: ps, rc: rc}
	p.byEP[e] = id
	return nil
}

// remove unregisters e (if it is registered). The Poller may still be
// inside e's handling when it returns: the caller waits on e.rxMu.
func (p *Poller) remove(e *Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.byEP[e]
	if !ok {
		return
	}
	s := p.slots[id]
	delete(p.byEP, e)
	p.slots[id] = nil
	p.free = append(p.free, id)
	if p.file == nil {
		return
	}
	// The socket may be closed already (epoll then dropped it itself).
	_ = s.rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (p *Poller) run() {
	defer close(p.done)
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		// The descriptor is closed by Close; nothing is registered any more.
		clear(p.byEP)
	}()
	// One read of the epoll descriptor for the Poller's life: wait handles
	// what is ready and returns false, and Go's netpoller parks the
	// goroutine until the next edge (or returns at once if one came while
	// wait ran), so a wake-up costs one epoll_wait and a recvmmsg per ready
	// socket. It returns when Close closes the descriptor.
	_ = p.rc.Read(p.waitFn)
}

// wait takes the ready sockets without blocking and handles them; it
// returns false to be parked until the epoll descriptor's next edge. The
// sockets are registered edge-triggered, so a socket reported once stays
// off the ready list until new data arrives: handle empties it, and a full
// event array means more may be ready.
func (p *Poller) wait(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, fd, uintptr(unsafe.Pointer(&p.events[0])), pollEvents, 0, 0, 0)
		if e != 0 || n == 0 {
			return false
		}
		p.mu.Lock()
		k := 0
		for i := range int(n) {
			if id := p.events[i].Fd; id >= 0 && int(id) < len(p.slots) && p.slots[id] != nil {
				p.batch[k] = p.slots[id]
				k++
			}
		}
		p.mu.Unlock()
		now := time.Now()
		if k > 0 && p.before != nil {
			p.before()
		}
		for i := range k {
			p.handle(p.batch[i], now)
			p.batch[i] = nil
		}
		if k > 0 && p.after != nil {
			p.after()
		}
		if n < pollEvents {
			return false
		}
	}
}

// recv reads up to pollBatch datagrams from one socket; it never waits.
func (p *Poller) recv(fd uintptr) bool {
	n, e := p.rx.Recv(fd)
	p.got, p.errno = 0, 0
	switch e {
	case 0:
		p.got = n
	case syscall.EAGAIN, syscall.EINTR:
	default:
		p.errno = e
	}
	return true
}

// handle reads one ready endpoint's socket and runs its packets through
// the receive path to deliver, under the endpoint's rxMu (which stop and
// Close take to wait for it).
func (p *Poller) handle(s *pollSlot, now time.Time) {
	e := s.e
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	if s.p.stopping.Load() || e.closed.Load() || e.push.Load() != s.p {
		return
	}
	out := e.pushBuf
	// Edge-triggered: read until a batch comes back short (recvmmsg with
	// MSG_DONTWAIT returns what is queued, so the socket is then empty).
	for full := true; full; {
		err := s.rc.Read(p.readFn)
		if err == nil && p.errno != 0 {
			err = p.errno
		}
		if err != nil {
			if isClosedConn(err) && e.closed.Load() {
				return // Close ends the push
			}
			p.remove(e)
			s.p.end(fmt.Errorf("rtpendpoint: read RTP: %w", err))
			return
		}
		full = p.got == pollBatch
		for i := range p.got {
			pkt, src := p.rx.Packet(i)
			if !src.IsValid() {
				continue
			}
			if m, _ := e.receive(pkt, src, out, now); m > 0 {
				s.p.deliver(out[:m])
			}
			if s.p.stopping.Load() {
				return
			}
		}
	}
}
