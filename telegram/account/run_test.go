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
	// Watch the states: connecting with the failure, then online.
	sawFailure := false
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		ch := acc.Changed()
		s := acc.Status()
		if s.State == StateConnecting && s.Err != nil {
			sawFailure = true
		}
		if s.State == StateOnline {
			break
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("not online: %+v", s)
		}
	}
	if !sawFailure {
		t.Error("the failed first run was not reported")
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
