package rtpendpoint

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrPushStopped is what a ReadRTP blocked while pushing returns once
// PushRTP's stop was called.
var ErrPushStopped = errors.New("rtpendpoint: push stopped")

// push is one PushRTP: the goroutine that reads the socket and hands each
// RTP packet to deliver, and what a ReadRTP blocked meanwhile waits for.
type push struct {
	deliver  func([]byte)
	stopping atomic.Bool
	stopped  chan struct{} // closed by stop
	ended    chan struct{} // closed when the endpoint ended (err set before)
	exited   chan struct{} // closed when the reading goroutine returned
	err      error
}

// PushRTP makes the endpoint read its RTP socket on a goroutine of its own
// and call deliver with every RTP packet it accepts, authenticated and
// decrypted: exactly what ReadRTP would have returned, in a buffer of the
// endpoint that deliver may modify but must not keep. That goroutine is
// the whole receive path, run to completion per packet (read, checks,
// SRTP unprotect, statistics, deliver), with RTCP muxed on the port
// handled inline as ReadRTP does. It is rtpbridge.Pusher's method.
//
// While pushing, ReadRTP blocks until stop is called (it then returns
// ErrPushStopped) or the endpoint ends: after Close it returns ErrClosed,
// after its owner closed the socket the read error, as it would have.
// stop returns once no deliver call is running and none will start; it
// must not be called from deliver. After stop, ReadRTP reads the socket
// again. Call PushRTP before any ReadRTP that would read the socket; a
// second PushRTP stops the first. After Close it starts nothing.
func (e *Endpoint) PushRTP(deliver func(b []byte)) (stop func()) {
	if old := e.push.Load(); old != nil {
		e.stopPush(old)
	}
	p := &push{deliver: deliver, stopped: make(chan struct{}), ended: make(chan struct{}), exited: make(chan struct{})}
	e.updMu.Lock()
	if e.closed.Load() {
		e.updMu.Unlock()
		p.err = ErrClosed
		close(p.ended)
		close(p.exited)
		return func() {}
	}
	e.push.Store(p)
	e.wg.Add(1)
	e.updMu.Unlock()
	go e.pushLoop(p)
	return func() { e.stopPush(p) }
}

// stopPush ends p: it wakes the reading goroutine with a past read
// deadline, waits for it and clears the deadline again unless the
// endpoint was closed meanwhile (Close sets its own past deadline after
// marking the endpoint closed, under the same lock).
func (e *Endpoint) stopPush(p *push) {
	if p.stopping.Swap(true) {
		<-p.exited
		return
	}
	close(p.stopped)
	_ = e.rtpConn.SetReadDeadline(time.Unix(1, 0)) // a closed socket has woken the reader already
	<-p.exited
	e.updMu.Lock()
	if !e.closed.Load() {
		_ = e.rtpConn.SetReadDeadline(time.Time{})
	}
	e.push.CompareAndSwap(p, nil)
	e.updMu.Unlock()
}

// waitPush is ReadRTP while p pushes.
func (e *Endpoint) waitPush(p *push) (int, error) {
	select {
	case <-p.stopped:
		return 0, ErrPushStopped
	case <-p.ended:
		return 0, p.err
	}
}

// pushLoop is p's reading goroutine.
func (e *Endpoint) pushLoop(p *push) {
	defer e.wg.Done()
	defer close(p.exited)
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	if e.pushBuf == nil {
		e.pushBuf = make([]byte, bufSize)
	}
	out := e.pushBuf
	for {
		n, src, err := e.rtpConn.ReadFromUDPAddrPort(e.rxBuf)
		if p.stopping.Load() {
			return
		}
		if err != nil {
			if e.closed.Load() {
				p.err = ErrClosed
			} else {
				p.err = fmt.Errorf("rtpendpoint: read RTP: %w", err)
			}
			close(p.ended)
			return
		}
		// Only a buffer too small fails receive, and out is as large as
		// the datagrams read.
		m, _ := e.receive(e.rxBuf[:n], unmap(src), out, time.Now())
		if m > 0 {
			p.deliver(out[:m])
		}
	}
}
