package tgcall_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/tgcall"

	"github.com/tgsip/tgsip/internal/stacks"
)

// signalingGoroutines counts goroutines running code of signaling.go (the
// signaling sender).
func signalingGoroutines() int {
	count := 0
	for _, g := range strings.Split(string(stacks.All()), "\n\n") {
		if strings.Contains(g, "telegram/tgcall/signaling.go") {
			count++
		}
	}
	return count
}

// TestIdleCallHasNoSignalingSender: once a connected call's signaling has
// gone quiet, no goroutine waits to send signaling (the sender runs only
// while packets are queued); a connected call keeps just its loop. Every
// goroutine costs at least 8 KiB of stack for the call's whole life.
func TestIdleCallHasNoSignalingSender(t *testing.T) {
	out, in := connect(t, alice, bob)
	toneTrip(t, out, in)
	deadline := time.Now().Add(5 * time.Second)
	n := signalingGoroutines()
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = signalingGoroutines()
	}
	if n != 0 {
		t.Errorf("%d signaling goroutines left while both ends of a connected call are idle, want 0", n)
	}
	out.Hangup()
	ended(t, out, tgcall.CauseHangup, tgcall.DiscardHangup, false)
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
}
