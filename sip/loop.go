package sip

import (
	"sync"
	"time"
)

// One event loop per call.
//
// Every call, inbound or outbound, runs one goroutine (leg.run) that owns
// the call's state: the INVITE and where it is in its life, the ACK we
// wait for or the one we sent, the session timer, the CSeqs, the route
// set and remote target (the dialog), the SDP session, reliable
// provisional responses and PRACK. Nothing else touches that state, so it
// has no locks. Everything that happens to the call is an event posted to
// the loop's mailbox and run there in order:
//   - sipgo's handlers: in-dialog requests (handleInDialog waits until the
//     loop has answered, so sipgo's transaction sees its response), ACKs,
//     CANCEL, 2xx retransmissions to our INVITE, our INVITE's responses
//     (read by a forwarder goroutine per client transaction);
//   - timers (time.AfterFunc posts): the session timer, the retransmitter
//     of our 2xx and reliable 18x, the 64·T1 after our CANCEL;
//   - the b2bua's requests: Ringing, Progress, Answer, Reject, Hangup,
//     Reoffer post their work and wait for its outcome on a reply channel;
//   - the results of our own requests. A send that waits for a peer (BYE,
//     CANCEL, PRACK, re-INVITE, UPDATE, the INVITE and its dial or TLS
//     handshake, an ACK that may need a connection) runs off the loop on a
//     tracked goroutine and posts its outcome back. Responses to requests
//     we serve are written from the loop: that is a write to a socket
//     sipgo already holds, never a wait for a peer.
//
// The loop ends with the call (finish, the one end of both directions):
// what was posted before the end still runs and sees the call ended, and a
// post after it is refused, so a late sipgo handler answers 481 itself and
// a late result is dropped.

// mailbox is an unbounded FIFO of events for one call's loop. Posting never
// blocks: sipgo's handlers, timers and the b2bua post from their own
// goroutines.
type mailbox struct {
	mu     sync.Mutex
	items  []func()
	closed bool
	notify chan struct{}
}

func newMailbox() *mailbox { return &mailbox{notify: make(chan struct{}, 1)} }

// post queues f; false when the loop has ended.
func (m *mailbox) post(f func()) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.items = append(m.items, f)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued event and empties the queue.
func (m *mailbox) take() []func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}

// close refuses later posts and returns what is still queued.
func (m *mailbox) close() []func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	items := m.items
	m.items = nil
	return items
}

// startLoop runs the call's loop on a tracked goroutine. A server that has
// closed its tracker takes no new loop: the call ends at once.
func (l *leg) startLoop() {
	if !l.s.goTracked(l.run) {
		l.finish(&CallError{Status: 503, Cause: CauseShutdown, Reason: shutdownReason, Err: errServerClosed})
		for _, f := range l.box.close() {
			f()
		}
		close(l.exited)
	}
}

// run is the call's loop: it runs events until the call has ended, then
// the ones posted before the end.
func (l *leg) run() {
	for !l.over {
		<-l.box.notify
		for _, f := range l.box.take() {
			f()
		}
	}
	for _, f := range l.box.close() {
		f()
	}
	close(l.exited)
}

// post queues f on the loop; false when the loop has ended.
func (l *leg) post(f func()) bool { return l.box.post(f) }

// call runs f on the loop and waits for it; false when the loop has
// ended and f did not run.
func (l *leg) call(f func()) bool {
	done := make(chan struct{})
	if !l.post(func() { defer close(done); f() }) {
		return false
	}
	<-done
	return true
}

// await waits for the reply to an event posted to the loop; gone is the
// answer when the loop ended without replying (a send whose result came
// after the call's end).
func await[T any](l *leg, reply <-chan T, gone T) T {
	select {
	case v := <-reply:
		return v
	case <-l.exited:
		select {
		case v := <-reply:
			return v
		default:
			return gone
		}
	}
}

// retransmitter resends a response until stopped: our 2xx to an INVITE
// until its ACK (RFC 3261 §13.3.1.4) and our reliable provisional
// responses until their PRACK (RFC 3262 §3), at T1, 2·T1 … capped at T2
// over UDP and not at all over TCP/TLS, giving up after 64·T1 either way.
// Its timers post to the loop, which owns it.
type retransmitter struct {
	l       *leg
	resend  func()
	giveUp  func()
	i       int
	t, g    *time.Timer
	stopped bool
}

// retransmit starts a retransmitter; resend and giveUp run on the loop.
func (l *leg) retransmit(resend, giveUp func()) *retransmitter {
	r := &retransmitter{l: l, resend: resend, giveUp: giveUp}
	t1 := l.s.cfg.T1
	if l.transport == UDP {
		r.arm(t1)
	}
	r.g = time.AfterFunc(64*t1, func() {
		l.post(func() {
			if !r.stopped {
				r.stop()
				r.giveUp()
			}
		})
	})
	return r
}

func (r *retransmitter) arm(d time.Duration) {
	r.t = time.AfterFunc(d, func() { r.l.post(r.fire) })
}

func (r *retransmitter) fire() {
	if r.stopped {
		return
	}
	r.i++
	r.resend()
	if !r.stopped {
		r.arm(timerBackoff(r.l.s.cfg.T1, r.i))
	}
}

// stop ends the retransmissions (the ACK or PRACK came, or the call
// ended); a timer that fires later posts an event that does nothing.
func (r *retransmitter) stop() {
	if r == nil || r.stopped {
		return
	}
	r.stopped = true
	if r.t != nil {
		r.t.Stop()
	}
	r.g.Stop()
}
