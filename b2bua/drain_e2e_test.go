package b2bua

import (
	"context"
	"testing"
	"time"

	"github.com/tgsip/tgsip/sip"
)

// TestTrunkCloseDrains: Close refuses new calls with 503 at once, lets the
// answered call go on for the grace, then hangs both legs up properly (a
// BYE to the PBX, a discard on Telegram).
func TestTrunkCloseDrains(t *testing.T) {
	const grace = 700 * time.Millisecond
	e := newE2E(t, func(o *TrunkOptions) { o.Grace = grace })
	out, user := callUser(t, e, true)
	waitClosed(t, out.Answered(), "200")

	closed := make(chan error, 1)
	began := time.Now()
	go func() { closed <- e.trunk.Close(context.Background()) }()
	// A call placed while draining is refused, with a status a load
	// balancer retries elsewhere.
	ce := endOf(t, e.dial(t, "user"))
	if ce.Status != 503 {
		t.Errorf("call during the drain ended with %v, want 503", ce)
	}
	select {
	case <-out.Done():
		t.Fatalf("answered call ended within the grace: %v", out.Err())
	default:
	}
	ce = endOf(t, out)
	if took := time.Since(began); took < grace {
		t.Errorf("call hung up after %v, before the grace of %v", took, grace)
	}
	if ce.Cause != sip.CauseNormal || !ce.Remote {
		t.Errorf("PBX's call ended with %v, want a BYE from the trunk", ce)
	}
	waitClosed(t, user.Done(), "Telegram user's call end")
	if err := user.Err(); err == nil || !err.Remote {
		t.Errorf("Telegram user's call ended with %v, want a discard by the trunk", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
