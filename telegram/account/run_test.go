package account

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
)

// TestReconnectAndCall: a client that fails as a whole is replaced after
// the back-off; the account's engine, behind gotd's updates manager, places
// a call, and the account reports it as in a call until it ends.
func TestReconnectAndCall(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Trunk")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	// The first run fails when the updates manager asks for its state.
	network.Faults().FailNext("updates.getState", tgerr.New(500, "INTERNAL_SERVER_ERROR"))
	acc, err := New(cfg, Options{Logger: testLogger(), ReconnectMin: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- acc.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		_ = acc.Close()
	}()
	waitState(t, acc, StateOnline)
	if s := acc.Status(); s.Restarts != 1 {
		t.Errorf("restarts %d, want 1 (the failed first run)", s.Restarts)
	}

	peer, err := acc.Resolve(ctx, "@callee")
	if err != nil {
		t.Fatal(err)
	}
	call, err := acc.Engine().Dial(ctx, peer.Input())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if s := acc.Status(); !s.InCall || s.String() != "in call" || !errors.Is(acc.Available(), ErrInCall) {
		t.Errorf("during the call: %v, available %v", s, acc.Available())
	}
	call.Hangup()
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("call did not end")
	}
	if s := acc.Status(); s.InCall || acc.Available() != nil {
		t.Errorf("after the call: %v, available %v", s, acc.Available())
	}
}
