package tgcall_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsip/tgsip/telegram/emu"
	"github.com/tgsip/tgsip/telegram/tgcall"
)

// preparedPair is two accounts with Options.PrepareKeys, started on first
// use.
var preparedPair = sync.OnceValues(func() ([]*account, error) {
	var pair []*account
	for i, name := range []string{"Ivan", "Judy"} {
		u, err := network.AddUser(emu.User{Phone: "+1555002" + string(rune('0'+i)), FirstName: name})
		if err != nil {
			return nil, err
		}
		pair = append(pair, &account{user: u, prepareKeys: true})
	}
	err := startAccounts(runCtx, &runWG, pair)
	extraAccounts = append(extraAccounts, pair...)
	return pair, err
})

// keyReady waits until a's engine holds a prepared key pair (made in the
// background after Start and after each call).
func keyReady(t *testing.T, a *account) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !a.engine.KeyReady() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no prepared key within 10 s", a.user.FirstName)
		}
		time.Sleep(5 * time.Millisecond) // no event for it: the key is made off the call path
	}
}

// TestPreparedKeysSkipGetDhConfig: with prepared keys, placing and
// answering a call need no messages.getDhConfig: with the emulator
// failing the next two, the call still connects and carries audio both
// ways (the key both sides derived from the prepared halves matches).
// Without PrepareKeys the caller's Dial fails on the injected error.
// The two failures go to the refills each side starts when its call
// ends, so the next call finds no key, fetches the config itself as
// before, and each side prepares again after it.
func TestPreparedKeysSkipGetDhConfig(t *testing.T) {
	pair, err := preparedPair()
	if err != nil {
		t.Fatal(err)
	}
	caller, callee := pair[0], pair[1]
	keyReady(t, caller)
	keyReady(t, callee)
	for range 2 {
		network.Faults().FailNext("messages.getDhConfig", tgerr.New(500, "DH_TEST_FAILURE"))
	}
	out, in := connect(t, caller, callee)
	toneTrip(t, out, in)
	out.Hangup()
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
	// Both engines must have released the call (the caller's may still be
	// sending its discardCall: "account busy") and both refills must have
	// taken their failure before the next call, or that call's own
	// getDhConfig would.
	released(t, caller)
	released(t, callee)
	deadline := time.Now().Add(10 * time.Second)
	for network.Faults().PendingFails("messages.getDhConfig") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refills after the call never asked for the DH config")
		}
		time.Sleep(5 * time.Millisecond)
	}

	out, in = connect(t, caller, callee)
	out.Hangup()
	ended(t, in, tgcall.CauseHangup, tgcall.DiscardHangup, true)
	keyReady(t, caller)
	keyReady(t, callee)
}
