package account

import (
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
)

// TestFloodWait: FLOOD_WAIT and PEER_FLOOD answers reach the caller as
// *FloodWaitError, keep the account out of the picker, and survive a
// restart through the state file.
func TestFloodWait(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Limited")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	acc := start(t, cfg)
	network.Faults().FailNext("contacts.resolveUsername", tgerr.New(420, "FLOOD_WAIT_60"))
	began := time.Now()
	_, err := acc.Resolve(ctx, "@callee")
	var fw *FloodWaitError
	if !errors.As(err, &fw) || fw.PeerFlood || fw.Wait != time.Minute {
		t.Fatalf("resolve under flood wait: %v", err)
	}
	if d := fw.RetryAfter(began); d < 59*time.Second || d > 61*time.Second {
		t.Errorf("retry after %v", d)
	}
	if !errors.As(acc.Available(), &fw) || fw.PeerFlood {
		t.Errorf("available during flood wait: %v", acc.Available())
	}
	s := acc.Status()
	if s.FloodWaitUntil.Before(began.Add(59*time.Second)) || s.State != StateOnline {
		t.Errorf("status %+v", s)
	}

	network.Faults().FailNext("contacts.resolvePhone", tgerr.New(400, "PEER_FLOOD"))
	if _, err := acc.Resolve(ctx, "+15550203"); !errors.As(err, &fw) || !fw.PeerFlood || fw.Wait != 24*time.Hour {
		t.Fatalf("resolve under PEER_FLOOD: %v", err)
	}
	if !errors.As(acc.Available(), &fw) || !fw.PeerFlood {
		t.Errorf("available after PEER_FLOOD: %v", acc.Available())
	}

	// A restart remembers both limits.
	again, err := New(cfg, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s2 := again.Status()
	if !s2.FloodWaitUntil.Equal(s.FloodWaitUntil) || s2.PeerFloodUntil.Before(began.Add(23*time.Hour)) {
		t.Errorf("after restart %+v", s2)
	}
	lim, err := ReadStateFile(cfg.SessionFile + ".state")
	if err != nil || lim.PeerFloodUntil.IsZero() {
		t.Errorf("state file %+v %v", lim, err)
	}

	// The connection drops (the phone loses its network) and comes back:
	// gotd reconnects by itself and the account is online again.
	id := users["Limited"].ID
	network.Faults().Vanish(id)
	waitState(t, acc.Account, StateConnecting)
	network.Faults().Restore(id)
	waitState(t, acc.Account, StateOnline)
	if _, err := acc.Resolve(ctx, "@callee"); err != nil {
		t.Errorf("resolve after the reconnect: %v", err)
	}
}
