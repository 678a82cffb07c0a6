package media

import (
	"testing"
)

// TestNoSupervisorGoroutine: a connected session keeps no goroutine that
// only waits for its end (the connect timeout is a runtime timer, the
// teardown a context.AfterFunc); Close still releases everything (goleak
// in TestMain) and closes Done.
func TestNoSupervisorGoroutine(t *testing.T) {
	a, b := connectedPair(t, Config{P2PAllowed: true}, Config{P2PAllowed: true})
	rb := startReader(b)
	flow(t, a, rb, 0x1234, "up", 5)
	for _, fn := range []string{"media.(*Session).supervise", "media.(*Session).teardown"} {
		if n := goroutinesIn(fn); n != 0 {
			t.Errorf("%d goroutines in %s while connected", n, fn)
		}
	}
	_ = a.Close()
	_ = b.Close()
	rb.wait(t)
	for _, s := range []*Session{a, b} {
		select {
		case <-s.Done():
		default:
			t.Error("Done not closed after Close")
		}
	}
}
