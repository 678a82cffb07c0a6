package rtpbridge

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestWatch: Run calls Watch when it starts and again after each close of
// the channel it returned, on its own goroutine; a nil channel ends the
// watching without ending the bridge.
func TestWatch(t *testing.T) {
	sip, tg := newChanEndpoint(), newChanEndpoint()
	cfg, _, _ := transcodingConfig(sip, tg)
	var calls atomic.Int32
	next := make(chan chan struct{}, 4)
	cfg.Watch = func() <-chan struct{} {
		calls.Add(1)
		select {
		case c := <-next:
			return c
		default:
			return nil
		}
	}
	first, second := make(chan struct{}), make(chan struct{})
	next <- first
	next <- second
	_, stop := running(t, cfg)
	wait := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("Watch called %d times, want %d", calls.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(1)
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("Watch called %d times before any change, want 1", n)
	}
	close(first)
	wait(2)
	close(second)
	wait(3) // returns nil: no more watching
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Fatalf("Watch called %d times, want 3", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
