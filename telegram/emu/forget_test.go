package emu

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tgsip/tgsip/telegram/wire"
)

// TestEndedCallsForgotten: the switch keeps the last KeepEndedCalls ended
// calls and every call in progress; older ended calls are forgotten, so a
// long-running emulator does not grow with every call it switched.
func TestEndedCallsForgotten(t *testing.T) {
	n, err := New(Options{KeepEndedCalls: 2})
	if err != nil {
		t.Fatal(err)
	}
	add := func(id int64) *call {
		c := &call{info: CallInfo{ID: id}}
		n.calls[id] = c
		n.callOrder = append(n.callOrder, id)
		return c
	}
	c1, c2, _, c3 := add(1), add(2), add(3), add(4) // 3 stays in progress
	n.mu.Lock()
	for _, c := range []*call{c1, c2, c3, c3} { // c3 twice: counted once
		n.forgetOldLocked(c)
	}
	n.mu.Unlock()
	var ids []int64
	for _, c := range n.Calls() {
		ids = append(ids, c.ID)
	}
	if len(ids) != 3 || ids[0] != 2 || ids[1] != 3 || ids[2] != 4 {
		t.Errorf("calls kept %v, want [2 3 4]: the two last ended and the live one, in request order", ids)
	}
	if _, ok := n.Call(1); ok {
		t.Error("the oldest ended call is still reported")
	}

	all, err := New(Options{KeepEndedCalls: -1})
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 5; id++ {
		c := &call{info: CallInfo{ID: id}}
		all.calls[id] = c
		all.callOrder = append(all.callOrder, id)
		all.mu.Lock()
		all.forgetOldLocked(c)
		all.mu.Unlock()
	}
	if got := len(all.Calls()); got != 5 {
		t.Errorf("KeepEndedCalls -1 kept %d of 5 calls", got)
	}
}

// TestReflectorForgetsIdleTags: a reflector forgets a tag nobody spoke for
// in reflectorIdle, and sweeps at most every reflectorIdle/4.
func TestReflectorForgetsIdleTags(t *testing.T) {
	r := &reflector{peers: map[wire.Tag]reflectorPeer{}}
	addr := netip.MustParseAddrPort("127.0.0.1:4000")
	var old, fresh wire.Tag
	old[0], fresh[0] = 1, 2
	t0 := time.Now()
	r.learnAt(old, addr, t0)
	r.learnAt(fresh, addr, t0.Add(reflectorIdle+time.Second))
	if _, ok := r.peers[old]; ok {
		t.Error("a tag idle for longer than reflectorIdle is still known")
	}
	if _, ok := r.peers[fresh]; !ok {
		t.Error("the tag just heard from is gone")
	}
	// Within a quarter of reflectorIdle of the last sweep, nothing is swept.
	r.learnAt(old, addr, t0.Add(reflectorIdle+2*time.Second))
	r.learnAt(fresh, addr, t0.Add(2*reflectorIdle+3*time.Second))
	if len(r.peers) != 1 {
		t.Errorf("%d tags after a second sweep, want only the fresh one", len(r.peers))
	}
}
