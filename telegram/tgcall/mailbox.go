package tgcall

import "sync"

// mailbox is an unbounded FIFO of events for one call's loop. Update handlers
// run on gotd's goroutines and must never block (research/emulator.md §2), so
// they post here; the loop drains it in order. It is bounded in practice by
// the protocol: a few updates and signaling packets per second.
type mailbox struct {
	mu     sync.Mutex
	items  []any
	notify chan struct{}
}

func newMailbox() *mailbox { return &mailbox{notify: make(chan struct{}, 1)} }

func (m *mailbox) post(ev any) {
	m.mu.Lock()
	m.items = append(m.items, ev)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// take returns every queued event and empties the queue.
func (m *mailbox) take() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}
