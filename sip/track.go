// Goroutine tracking: every goroutine the server starts is counted so
// Close can wait for them, and waits for peers end when Close halts.

package sip

import (
	"context"
	"errors"
	"sync"
)

// untilHalt is ctx, also cancelled when Close stops waiting for peers:
// a dial or TLS handshake to a PBX that never completes it must not hold
// Close up.
func (s *Server) untilHalt(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.haltCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// addCall enters a call in the registry. A call registered after Close
// took its list of calls (the INVITE or Dial passed the closing check just
// before Close began) is ended here as Close ends the others, or Close
// would wait for it forever: its loop is a tracked goroutine. Close closes
// s.closing before it reads the registry, so either it sees the call or
// the call sees s.closing.
func (s *Server) addCall(k dialogKey, o dialogOwner) (closing bool) {
	if s.beforeRegister != nil {
		s.beforeRegister()
	}
	s.dialogs.add(k, o)
	select {
	case <-s.closing:
		o.shutdown()
		return true
	default:
		return false
	}
}

// errHalted ends a transaction that Close stopped waiting for.
var errHalted = errors.New("sip: server closed before the peer answered")

// goTracked runs f on a goroutine the server waits for at Close. Once
// Close has seen all such goroutines finish, f is dropped and goTracked
// reports false.
func (s *Server) goTracked(f func()) bool {
	if !s.work.start() {
		s.log.Debug("work dropped: server closed")
		return false
	}
	go func() {
		defer s.work.finish()
		f()
	}()
	return true
}

// tracker counts running goroutines. Unlike a WaitGroup it may gain new
// goroutines while Close waits (a BYE started by an ACK timeout during
// shutdown), and refuses them once it has been idle and closed.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   sync.Cond
}

func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		t.idle.Broadcast()
	}
}

// closeWhenIdle waits until nothing runs, then refuses new work.
func (t *tracker) closeWhenIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 {
		t.idle.Wait()
	}
	t.closed = true
}
