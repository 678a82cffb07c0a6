package account

import (
	"testing"

	"github.com/gotd/td/tgerr"
)

// TestResolveCached: a username (in any case) or number resolved once is
// not asked of Telegram again within resolvedTTL: with the emulator
// failing the next lookups, the second resolution still finds the same
// user; an entry older than resolvedTTL asks again.
func TestResolveCached(t *testing.T) {
	ctx := slowCtx(t)
	cfg := testConfig(t, "Cacher")
	if _, err := Login(ctx, cfg, LoginCode, &script{codes: []string{"12345"}}, LoginOptions{Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	acc := start(t, cfg)
	callee := users["Callee"]
	first, err := acc.Resolve(ctx, "@callee")
	if err != nil {
		t.Fatal(err)
	}
	byPhone, err := acc.Resolve(ctx, "+"+callee.Phone)
	if err != nil {
		t.Fatal(err)
	}
	network.Faults().FailNext("contacts.resolveUsername", tgerr.New(420, "FLOOD_WAIT_60"))
	network.Faults().FailNext("contacts.resolvePhone", tgerr.New(420, "FLOOD_WAIT_60"))
	for _, target := range []string{"@callee", "@CALLEE", "+" + callee.Phone} {
		p, err := acc.Resolve(ctx, target)
		if err != nil {
			t.Fatalf("%s again: %v (asked Telegram)", target, err)
		}
		if p.ID != first.ID || p.ID != byPhone.ID || p.AccessHash != first.AccessHash {
			t.Errorf("%s again: %+v, want %+v", target, p, first)
		}
	}
	// Expired: the next resolution asks Telegram, which (by the fault
	// still queued) fails.
	acc.peers.mu.Lock()
	for k, r := range acc.peers.names {
		r.at = r.at.Add(-resolvedTTL)
		acc.peers.names[k] = r
	}
	acc.peers.mu.Unlock()
	if _, err := acc.Resolve(ctx, "@callee"); err == nil {
		t.Error("an expired entry did not ask Telegram")
	}
	if _, err := acc.Resolve(ctx, "+"+callee.Phone); err == nil {
		t.Error("an expired number did not ask Telegram")
	}
}
