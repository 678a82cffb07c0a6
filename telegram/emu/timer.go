package emu

import "time"

// timer is a time.AfterFunc counted in Network.wg so that Close waits for
// callbacks that are already running.
type timer struct{ t *time.Timer }

// afterLocked runs f after d on its own goroutine. It returns nil once the
// Network is closed. Caller holds n.mu.
func (n *Network) afterLocked(d time.Duration, f func()) *timer {
	if n.closed || !n.started {
		return nil
	}
	n.wg.Add(1)
	return &timer{t: time.AfterFunc(d, func() {
		defer n.wg.Done()
		f()
	})}
}

// stopLocked cancels t if it has not fired yet.
func (n *Network) stopLocked(t *timer) {
	if t != nil && t.t.Stop() {
		n.wg.Done()
	}
}
