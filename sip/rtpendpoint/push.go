package rtpendpoint

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrPushStopped is what a ReadRTP blocked while pushing returns once
// PushRTP's stop was called.
var ErrPushStopped = errors.New("rtpendpoint: push stopped")

// push is one PushRTP: who reads the socket and hands each RTP packet to
// deliver (a goroutine of the endpoint's own, or the shared Poller), and
// what a ReadRTP blocked meanwhile waits for.
type push struct {
	deliver  func([]byte)
	polled   bool // read by the endpoint's Poller, not a goroutine
	stopping atomic.Bool
	stopped  chan struct{} // closed by stop
	ended    chan struct{} // closed when the endpoint ended (err set before)
	endOnce  sync.Once
	exited   chan struct{} // goroutine mode: closed when the reader returned
	err      error
}

// end records that the endpoint ended with err (once).
func (p *push) end(err error) {
	p.endOnce.Do(func() {
		p.err = err
		close(p.ended)
	})
}

// PushRTP makes the endpoint hand every RTP packet it accepts to
// deliver, authenticated and decrypted: exactly what ReadRTP would have
// returned, in a buffer of the endpoint that deliver may modify but must
// not keep. The receive path runs to completion per packet (read, checks,
// SRTP unprotect, statistics, deliver) with RTCP muxed on the port
// handled inline as ReadRTP does, on a goroutine of the endpoint's own or,
// with Options.Poller, on the Poller's goroutine shared by many endpoints.
// It is rtpbridge.Pusher's method; deliver must not block.
//
// While pushing, ReadRTP blocks until stop is called (it then returns
// ErrPushStopped) or the endpoint ends: after Close it returns ErrClosed,
// and without a Poller, after its owner closed the socket, the read error
// as it would have (with a Poller the owner must Close the endpoint
// before it closes the socket, as package sip does). stop returns once no
// deliver call is running and none will start; it must not be called from
// deliver. After stop, ReadRTP reads the socket again. Call PushRTP before
// any ReadRTP that would read the socket; a second PushRTP stops the
// first. After Close it starts nothing.
func (e *Endpoint) PushRTP(deliver func(b []byte)) (stop func()) {
	if old := e.push.Load(); old != nil {
		e.stopPush(old)
	}
	p := &push{deliver: deliver, polled: e.poller != nil,
		stopped: make(chan struct{}), ended: make(chan struct{}), exited: make(chan struct{})}
	e.updMu.Lock()
	if e.closed.Load() {
		e.updMu.Unlock()
		p.end(ErrClosed)
		close(p.exited)
		return func() {}
	}
	if e.pushBuf == nil {
		e.pushBuf = make([]byte, bufSize)
	}
	e.push.Store(p)
	if p.polled {
		close(p.exited)
		if err := e.poller.add(e, p); err != nil {
			e.log.Warn("rtp endpoint: poller", "err", err)
			p.end(fmt.Errorf("rtpendpoint: poller: %w", err))
		}
		e.updMu.Unlock()
	} else {
		e.wg.Add(1)
		e.updMu.Unlock()
		go e.pushLoop(p)
	}
	return func() { e.stopPush(p) }
}

// stopPush ends p. A reading goroutine is woken with a past read deadline
// and waited for, and the deadline cleared again unless the endpoint was
// closed meanwhile (Close sets its own past deadline after marking the
// endpoint closed, under the same lock). A polled endpoint leaves the
// Poller, and rxMu, which the Poller holds while it handles the endpoint,
// tells when it is out of deliver.
func (e *Endpoint) stopPush(p *push) {
	if p.stopping.Swap(true) {
		<-p.exited
		return
	}
	close(p.stopped)
	if p.polled {
		e.poller.remove(e)
		e.rxMu.Lock()
		//lint:ignore SA2001 an empty critical section: waiting for the Poller to leave the endpoint
		e.rxMu.Unlock()
		e.push.CompareAndSwap(p, nil)
		return
	}
	_ = e.rtpConn.SetReadDeadline(time.Unix(1, 0)) // a closed socket has woken the reader already
	<-p.exited
	e.updMu.Lock()
	if !e.closed.Load() {
		_ = e.rtpConn.SetReadDeadline(time.Time{})
	}
	e.push.CompareAndSwap(p, nil)
	e.updMu.Unlock()
}

// closePush ends a polled push at Close (a reading goroutine ends by
// itself on the deadline Close sets).
func (e *Endpoint) closePush() {
	p := e.push.Load()
	if p == nil || !p.polled {
		return
	}
	e.poller.remove(e)
	e.rxMu.Lock()
	p.end(ErrClosed)
	e.rxMu.Unlock()
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

// pushLoop is p's reading goroutine (no Poller).
func (e *Endpoint) pushLoop(p *push) {
	defer e.wg.Done()
	defer close(p.exited)
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	out := e.pushBuf
	for {
		n, src, err := e.rtpConn.ReadFromUDPAddrPort(e.rxBuf)
		if p.stopping.Load() {
			return
		}
		if err != nil {
			if e.closed.Load() {
				p.end(ErrClosed)
			} else {
				p.end(fmt.Errorf("rtpendpoint: read RTP: %w", err))
			}
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
