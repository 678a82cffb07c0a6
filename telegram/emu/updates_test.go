package emu

import (
	"context"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestDeviceLogTrimAndDifference(t *testing.T) {
	n, err := New(Options{Reflectors: -1, PrivateKey: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	u, err := n.AddUser(User{Phone: "1"})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.deviceLocked([8]byte{1})
	d.userID = u.ID
	push := func(i int) {
		n.pushLocked(d, &tg.UpdatePhoneCallSignalingData{PhoneCallID: int64(i)}, u.ID)
	}
	for i := range maxLog + 10 {
		push(i)
	}
	if len(d.log) != maxLog+10 {
		t.Fatalf("undelivered entries trimmed: %d", len(d.log))
	}
	diff, ok := n.differenceLocked(d, 0).(*tg.UpdatesDifference)
	if !ok || len(diff.OtherUpdates) != maxLog+10 || diff.State.Seq != maxLog+10 || len(diff.Users) != 1 {
		t.Fatalf("first difference %T", diff)
	}
	push(-1)
	if len(d.log) != maxLog || d.lastSeq() != maxLog+11 {
		t.Fatalf("after trim: len %d last %d", len(d.log), d.lastSeq())
	}
	diff, ok = n.differenceLocked(d, 0).(*tg.UpdatesDifference)
	if !ok || len(diff.OtherUpdates) != 1 || diff.OtherUpdates[0].(*tg.UpdatePhoneCallSignalingData).PhoneCallID != -1 {
		t.Fatalf("second difference %+v", diff)
	}
	if e, ok := n.differenceLocked(d, int(time.Now().Add(time.Hour).Unix())).(*tg.UpdatesDifferenceEmpty); !ok || e.Seq != maxLog+11 {
		t.Fatalf("third difference %+v", e)
	}

	// A device that never reads keeps at most 2*maxLog entries.
	gone := n.deviceLocked([8]byte{2})
	gone.userID = u.ID
	for i := range 2*maxLog + 1 {
		n.pushLocked(gone, &tg.UpdatePhoneCallSignalingData{PhoneCallID: int64(i)})
	}
	if len(gone.log) != maxLog || gone.lastSeq() != 2*maxLog+1 || gone.delivered != gone.base {
		t.Fatalf("abandoned device: len %d last %d delivered %d base %d", len(gone.log), gone.lastSeq(), gone.delivered, gone.base)
	}
}

// TestVanish: a peer that loses its network mid-call hears nothing more and
// its requests go unanswered; the other party's requests still work.
func TestVanish(t *testing.T) {
	n := shnet(t)
	alice := loggedIn(t, "alice")
	victor, err := startClient(n.ClientOptions(), "victor")
	if err != nil {
		t.Fatal(err)
	}
	defer victor.close()
	vu := user(t, "victor")
	if err := n.Login(ctxSlow(t), victor.client, vu.Phone, ""); err != nil {
		t.Fatal(err)
	}
	if err := victor.runUpdates(ctxSlow(t)); err != nil {
		t.Fatal(err)
	}
	in := activeCall(t, alice, victor)

	n.Faults().Vanish(vu.ID)
	// Victor may have devices from earlier runs (-count): watch them all.
	logged := func() (sum int) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, d := range n.devicesOfLocked(vu.ID) {
			sum += d.lastSeq()
		}
		return sum
	}
	before := logged()
	ctx := ctxT(t)
	if _, err := alice.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: []byte("lost")}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	// No answer: the request times out, or fails on the connection that
	// Vanish dropped (gotd may not have noticed the drop yet). Any answer
	// from the server, a result or an RPC error, is wrong.
	_, err = victor.api.HelpGetConfig(short)
	if _, rpc := tgerr.As(err); err == nil || rpc {
		t.Errorf("vanished user got an answer: %v", err)
	}
	if after := logged(); after != before {
		t.Errorf("pushes to a vanished user were logged: seqs %d → %d", before, after)
	}
	// The switch does not end the call for the vanished party.
	if info, _ := n.Call(in.ID); info.State != CallActive {
		t.Errorf("state %v", info.State)
	}
	hangup(t, alice, in)
	n.Faults().Restore(vu.ID)
}
