package emu

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

var (
	protoA = tg.PhoneCallProtocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92,
		LibraryVersions: []string{"9.0.0", "8.0.0", "11.0.0"}}
	protoB = tg.PhoneCallProtocol{UDPP2P: true, UDPReflector: true, MinLayer: 65, MaxLayer: 92,
		LibraryVersions: []string{"8.0.0", "9.0.0", "11.0.0", "13.0.0"}}
)

func random256(t *testing.T) []byte {
	b := make([]byte, 256)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// inputUser resolves a username from c's point of view.
func inputUser(t *testing.T, c *tclient, username string) *tg.InputUser {
	t.Helper()
	res, err := c.api.ContactsResolveUsername(ctxT(t), &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		t.Fatalf("resolve @%s: %v", username, err)
	}
	u := res.Users[0].(*tg.User)
	return &tg.InputUser{UserID: u.ID, AccessHash: u.AccessHash}
}

// requestCall places a call from a to the user named callee and returns the
// caller's phoneCallWaiting and g_a.
func requestCall(t *testing.T, a *tclient, callee string) (*tg.PhoneCallWaiting, []byte, error) {
	t.Helper()
	ga := random256(t)
	h := sha256.Sum256(ga)
	res, err := a.api.PhoneRequestCall(ctxT(t), &tg.PhoneRequestCallRequest{
		UserID: inputUser(t, a, callee), RandomID: 1, GAHash: h[:], Protocol: protoA,
	})
	if err != nil {
		return nil, nil, err
	}
	w, ok := res.PhoneCall.(*tg.PhoneCallWaiting)
	if !ok {
		t.Fatalf("requestCall answered %T, want phoneCallWaiting", res.PhoneCall)
	}
	return w, ga, nil
}

// activeCall runs a call from a to b up to CallActive.
func activeCall(t *testing.T, a, b *tclient) tg.InputPhoneCall {
	t.Helper()
	pc := confirmedCall(t, a, b)
	return tg.InputPhoneCall{ID: pc.ID, AccessHash: pc.AccessHash}
}

func hangup(t *testing.T, c *tclient, in tg.InputPhoneCall) {
	t.Helper()
	if _, err := c.api.PhoneDiscardCall(ctxT(t), &tg.PhoneDiscardCallRequest{
		Peer: in, Reason: &tg.PhoneCallDiscardReasonHangup{},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCallSwitch(t *testing.T) {
	n := shnet(t)
	alice, bob := loggedIn(t, "alice"), loggedIn(t, "bobby")
	ctx := ctxT(t)

	w, ga, err := requestCall(t, alice, "bobby")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.GetReceiveDate(); ok {
		t.Error("caller's first phoneCallWaiting has receive_date")
	}
	if w.AdminID != alice.self.ID || w.ParticipantID != bob.self.ID || w.Date == 0 || w.AccessHash == 0 {
		t.Errorf("phoneCallWaiting fields: %+v", w)
	}
	in := tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}

	req := waitCall[*tg.PhoneCallRequested](t, bob, w.ID)
	h := sha256.Sum256(ga)
	if req.AccessHash != w.AccessHash || req.AdminID != alice.self.ID || req.ParticipantID != bob.self.ID ||
		!bytes.Equal(req.GAHash, h[:]) || req.Date != w.Date {
		t.Errorf("phoneCallRequested fields: %+v", req)
	}
	if !slices.Equal(req.Protocol.LibraryVersions, protoA.LibraryVersions) {
		t.Errorf("requested protocol %v", req.Protocol.LibraryVersions)
	}
	if info, _ := n.Call(w.ID); info.State != CallWaiting {
		t.Errorf("state %v, want waiting", info.State)
	}

	// Only the callee may acknowledge.
	if _, err := alice.api.PhoneReceivedCall(ctx, in); !tgerr.Is(err, "CALL_PEER_INVALID") {
		t.Errorf("caller receivedCall: %v", err)
	}
	if _, err := bob.api.PhoneReceivedCall(ctx, in); err != nil {
		t.Fatal(err)
	}
	ringing := waitCall[*tg.PhoneCallWaiting](t, alice, w.ID)
	if rd, ok := ringing.GetReceiveDate(); !ok || rd == 0 {
		t.Error("caller's phoneCallWaiting after receivedCall lacks receive_date")
	}
	if info, _ := n.Call(w.ID); info.State != CallRinging || info.ReceiveDate.IsZero() {
		t.Errorf("after receivedCall: %+v", info)
	}

	gb := random256(t)
	acc, err := bob.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: gb, Protocol: protoB})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := acc.PhoneCall.(*tg.PhoneCallWaiting); !ok {
		t.Errorf("acceptCall answered %T, want phoneCallWaiting", acc.PhoneCall)
	}
	if _, err := bob.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: gb, Protocol: protoB}); !tgerr.Is(err, "CALL_ALREADY_ACCEPTED") {
		t.Errorf("second acceptCall: %v", err)
	}
	accepted := waitCall[*tg.PhoneCallAccepted](t, alice, w.ID)
	if !bytes.Equal(accepted.GB, gb) {
		t.Error("phoneCallAccepted g_b differs")
	}
	if want := []string{"9.0.0", "8.0.0", "11.0.0"}; !slices.Equal(accepted.Protocol.LibraryVersions, want) {
		t.Errorf("accepted versions %v, want %v", accepted.Protocol.LibraryVersions, want)
	}

	// The g_a commitment is checked.
	if _, err := alice.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{Peer: in, GA: random256(t), KeyFingerprint: 1, Protocol: protoA}); !tgerr.Is(err, "G_A_HASH_INVALID") {
		t.Errorf("confirm with wrong g_a: %v", err)
	}
	const fp = int64(0x1122334455667788)
	conf, err := alice.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{Peer: in, GA: ga, KeyFingerprint: fp, Protocol: protoA})
	if err != nil {
		t.Fatal(err)
	}
	pcA, ok := conf.PhoneCall.(*tg.PhoneCall)
	if !ok {
		t.Fatalf("confirmCall answered %T", conf.PhoneCall)
	}
	pcB := waitCall[*tg.PhoneCall](t, bob, w.ID)
	if !bytes.Equal(pcA.GAOrB, gb) || !bytes.Equal(pcB.GAOrB, ga) {
		t.Error("g_a_or_b: caller must get g_b, callee g_a")
	}
	if pcA.KeyFingerprint != fp || pcB.KeyFingerprint != fp {
		t.Errorf("fingerprints %x %x", pcA.KeyFingerprint, pcB.KeyFingerprint)
	}
	if !slices.Equal(pcA.Protocol.LibraryVersions, []string{"11.0.0"}) || !slices.Equal(pcB.Protocol.LibraryVersions, []string{"11.0.0"}) {
		t.Errorf("chosen version %v / %v, want the highest common one", pcA.Protocol.LibraryVersions, pcB.Protocol.LibraryVersions)
	}
	if pcA.P2PAllowed || pcB.P2PAllowed {
		t.Error("p2p_allowed although bob's P2P privacy is nobody")
	}
	// Two reflectors, then the TURN server's phoneConnectionWebrtc.
	if len(pcA.Connections) != 3 || len(pcB.Connections) != 3 {
		t.Fatalf("connections %d/%d, want 2 reflectors and a TURN server", len(pcA.Connections), len(pcB.Connections))
	}
	refl := n.Reflectors()
	for i := range refl {
		ca, cb := pcA.Connections[i].(*tg.PhoneConnection), pcB.Connections[i].(*tg.PhoneConnection)
		if ca.ID != cb.ID || ca.IP != "127.0.0.1" || ca.Port != int(refl[i].Port()) || len(ca.PeerTag) != 16 || !bytes.Equal(ca.PeerTag, cb.PeerTag) {
			t.Errorf("connection %d: %+v vs %+v", i, ca, cb)
		}
	}
	if pcA.StartDate == 0 || pcA.AccessHash != w.AccessHash || pcB.AdminID != alice.self.ID {
		t.Errorf("phoneCall fields: %+v", pcA)
	}

	// Signaling both ways.
	for _, dir := range []struct {
		from, to *tclient
		data     string
	}{{alice, bob, "from alice"}, {bob, alice, "from bob"}} {
		if _, err := dir.from.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: []byte(dir.data)}); err != nil {
			t.Fatal(err)
		}
		dir.to.waitUpdate(t, "signaling "+dir.data, func(u tg.UpdateClass) bool {
			s, ok := u.(*tg.UpdatePhoneCallSignalingData)
			return ok && s.PhoneCallID == w.ID && string(s.Data) == dir.data
		})
	}

	res, err := alice.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
		Peer: in, Duration: 42, Reason: &tg.PhoneCallDiscardReasonHangup{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := res.(*tg.Updates); !ok || len(u.Updates) != 1 {
		t.Errorf("discardCall answered %#v", res)
	}
	d := waitCall[*tg.PhoneCallDiscarded](t, bob, w.ID)
	if d.Duration != 42 {
		t.Errorf("duration %d, want 42", d.Duration)
	}
	if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonHangup); !ok {
		t.Errorf("reason %T", d.Reason)
	}
	if _, err := bob.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: []byte("late")}); !tgerr.Is(err, "CALL_NOT_ACTIVE") {
		t.Errorf("signaling after discard: %v", err)
	}
	info, _ := n.Call(w.ID)
	if info.State != CallDiscarded || info.DiscardedBy != alice.self.ID || info.Duration != 42 ||
		info.Version != "11.0.0" || info.KeyFingerprint != fp || info.EndDate.IsZero() || info.StartDate.IsZero() {
		t.Errorf("CallInfo after discard: %+v", info)
	}

	// getDifference replays what was pushed since a date. bob's updates
	// manager may have synced in between (a seq gap under load makes it
	// ask), which would hide older entries: forget that first.
	n.mu.Lock()
	for _, d := range n.devicesOfLocked(bob.self.ID) {
		d.synced = 0
	}
	n.mu.Unlock()
	diff, err := bob.api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: 1, Date: w.Date})
	if err != nil {
		t.Fatal(err)
	}
	full, ok := diff.(*tg.UpdatesDifference)
	if !ok {
		t.Fatalf("difference %T", diff)
	}
	var kinds []string
	for _, u := range full.OtherUpdates {
		if pc, ok := u.(*tg.UpdatePhoneCall); ok && pc.PhoneCall.GetID() == w.ID {
			kinds = append(kinds, fmt.Sprintf("%T", pc.PhoneCall))
		}
	}
	if len(kinds) < 3 || kinds[0] != "*tg.PhoneCallRequested" {
		t.Errorf("replayed call updates %v", kinds)
	}
}

func TestCallErrors(t *testing.T) {
	n := shnet(t)
	alice := loggedIn(t, "alice")
	for _, tc := range []struct {
		callee, err string
	}{
		{"david", "USER_PRIVACY_RESTRICTED"},  // contacts only
		{"nobody", "USER_PRIVACY_RESTRICTED"}, // nobody
		{"erica", "USER_IS_BLOCKED"},
		{"frank", "PARTICIPANT_VERSION_OUTDATED"},
	} {
		if _, _, err := requestCall(t, alice, tc.callee); !tgerr.Is(err, tc.err) {
			t.Errorf("call %s: %v, want %s", tc.callee, err, tc.err)
		}
	}

	ctx := ctxT(t)
	h := sha256.Sum256([]byte("x"))
	bad := protoA
	bad.MaxLayer = 91
	if _, err := alice.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
		UserID: inputUser(t, alice, "ghost"), RandomID: 2, GAHash: h[:], Protocol: bad,
	}); !tgerr.Is(err, "CALL_PROTOCOL_LAYER_INVALID") {
		t.Errorf("max_layer 91: %v", err)
	}
	bad = protoA
	bad.UDPP2P, bad.UDPReflector = false, false
	if _, err := alice.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
		UserID: inputUser(t, alice, "ghost"), RandomID: 3, GAHash: h[:], Protocol: bad,
	}); !tgerr.Is(err, "CALL_PROTOCOL_FLAGS_INVALID") {
		t.Errorf("no udp flags: %v", err)
	}
	if _, err := alice.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
		UserID: inputUser(t, alice, "ghost"), RandomID: 4, GAHash: h[:8], Protocol: protoA,
	}); !tgerr.Is(err, "G_A_HASH_INVALID") {
		t.Errorf("short g_a_hash: %v", err)
	}
	ghost := inputUser(t, alice, "ghost")
	ghost.AccessHash++
	if _, err := alice.api.PhoneRequestCall(ctx, &tg.PhoneRequestCallRequest{
		UserID: ghost, RandomID: 5, GAHash: h[:], Protocol: protoA,
	}); !tgerr.Is(err, "USER_ID_INVALID") {
		t.Errorf("wrong access hash: %v", err)
	}

	// A one-shot injected error, then normal service.
	n.Faults().FailNext("phone.requestCall", tgerr.New(420, "FLOOD_WAIT_5"))
	_, _, err := requestCall(t, alice, "ghost")
	if d, ok := tgerr.AsFloodWait(err); !ok || d.Seconds() != 5 {
		t.Errorf("FailNext: %v", err)
	}
	w, _, err := requestCall(t, alice, "ghost")
	if err != nil {
		t.Fatalf("after FailNext: %v", err)
	}
	hangup(t, alice, tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash})
}

func TestCallVersionMismatch(t *testing.T) {
	alice, bob := loggedIn(t, "alice"), loggedIn(t, "bobby")
	w, _, err := requestCall(t, alice, "bobby")
	if err != nil {
		t.Fatal(err)
	}
	in := tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}
	waitCall[*tg.PhoneCallRequested](t, bob, w.ID)
	p := protoB
	p.LibraryVersions = []string{"2.4.4"}
	_, err = bob.api.PhoneAcceptCall(ctxT(t), &tg.PhoneAcceptCallRequest{Peer: in, GB: random256(t), Protocol: p})
	if !tgerr.Is(err, "CALL_PROTOCOL_COMPAT_LAYER_INVALID") {
		t.Errorf("accept with no common version: %v", err)
	}
	if e, ok := tgerr.As(err); ok && e.Code != 406 {
		t.Errorf("code %d, want 406", e.Code)
	}
	// The callee declines: the caller is told.
	if _, err := bob.api.PhoneDiscardCall(ctxT(t), &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonBusy{}}); err != nil {
		t.Fatal(err)
	}
	d := waitCall[*tg.PhoneCallDiscarded](t, alice, w.ID)
	if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonBusy); !ok {
		t.Errorf("reason %T, want busy", d.Reason)
	}
	if _, err := bob.api.PhoneAcceptCall(ctxT(t), &tg.PhoneAcceptCallRequest{Peer: in, GB: random256(t), Protocol: protoB}); !tgerr.Is(err, "CALL_ALREADY_DECLINED") {
		t.Errorf("accept after discard: %v", err)
	}
}

func TestCallReceiveTimeout(t *testing.T) {
	n := shnet(t)
	alice := loggedIn(t, "alice")
	// ghost has no device: nobody acknowledges, the switch gives up.
	w, _, err := requestCall(t, alice, "ghost")
	if err != nil {
		t.Fatal(err)
	}
	d := waitCall[*tg.PhoneCallDiscarded](t, alice, w.ID)
	if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonMissed); !ok {
		t.Errorf("reason %T, want missed", d.Reason)
	}
	info, _ := n.Call(w.ID)
	if info.State != CallDiscarded || info.DiscardedBy != 0 {
		t.Errorf("CallInfo %+v", info)
	}
}

func TestCallRingTimeout(t *testing.T) {
	alice, bob := loggedIn(t, "alice"), loggedIn(t, "bobby")
	w, _, err := requestCall(t, alice, "bobby")
	if err != nil {
		t.Fatal(err)
	}
	in := tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}
	waitCall[*tg.PhoneCallRequested](t, bob, w.ID)
	if _, err := bob.api.PhoneReceivedCall(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*tclient{alice, bob} {
		d := waitCall[*tg.PhoneCallDiscarded](t, c, w.ID)
		if _, ok := d.Reason.(*tg.PhoneCallDiscardReasonMissed); !ok {
			t.Errorf("%s: reason %T, want missed", c.name, d.Reason)
		}
	}
}

// signalingRun sends count numbered packets over an active call with the
// given faults and returns the packet numbers bob's handler saw, in order,
// up to a final "end" packet, sent without faults unless keep is set.
func signalingRun(t *testing.T, f SignalingFaults, count int, keep bool) []string {
	t.Helper()
	n := shnet(t)
	alice, bob := loggedIn(t, "alice"), loggedIn(t, "bobby")
	in := activeCall(t, alice, bob)
	defer hangup(t, alice, in)
	ctx := ctxT(t)
	n.Faults().SetSignaling(f)
	for i := range count {
		if _, err := alice.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: fmt.Appendf(nil, "p%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !keep {
		n.Faults().SetSignaling(SignalingFaults{})
	}
	defer n.Faults().SetSignaling(SignalingFaults{})
	if _, err := alice.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: []byte("end")}); err != nil {
		t.Fatal(err)
	}
	isSig := func(u tg.UpdateClass) bool {
		s, ok := u.(*tg.UpdatePhoneCallSignalingData)
		return ok && s.PhoneCallID == in.ID
	}
	var got []string
	for {
		s := bob.waitUpdate(t, "signaling", isSig).(*tg.UpdatePhoneCallSignalingData)
		if string(s.Data) == "end" {
			return got
		}
		got = append(got, string(s.Data))
	}
}

func TestSignalingFaults(t *testing.T) {
	const count = 40
	lossy := SignalingFaults{Loss: 0.5, Seed: 7}
	first := signalingRun(t, lossy, count, false)
	if len(first) == 0 || len(first) == count {
		t.Fatalf("with 50%% loss %d of %d packets arrived", len(first), count)
	}
	if !slices.IsSorted(first) {
		t.Errorf("loss alone reordered packets: %v", first)
	}
	second := signalingRun(t, lossy, count, false)
	if !slices.Equal(first, second) {
		t.Errorf("same seed, different fate:\n%v\n%v", first, second)
	}

	dup := signalingRun(t, SignalingFaults{Duplicate: 1, Seed: 1}, 5, false)
	if want := []string{"p00", "p00", "p01", "p01", "p02", "p02", "p03", "p03", "p04", "p04"}; !slices.Equal(dup, want) {
		t.Errorf("duplicate: %v", dup)
	}

	delayed := signalingRun(t, SignalingFaults{Delay: 5 * time.Millisecond}, 3, true)
	if want := []string{"p00", "p01", "p02"}; !slices.Equal(delayed, want) {
		t.Errorf("delay: %v", delayed)
	}

	re := signalingRun(t, SignalingFaults{Reorder: 1, Seed: 1}, 4, false)
	if want := []string{"p01", "p00", "p03", "p02"}; !slices.Equal(re, want) {
		t.Errorf("reorder: %v, want %v", re, want)
	}
}

// TestCallOtherDevice: every device of the callee rings; when one accepts,
// the others are told the call is gone and may no longer act on it.
func TestCallOtherDevice(t *testing.T) {
	n := shnet(t)
	alice, bob := loggedIn(t, "alice"), loggedIn(t, "bobby")
	bob2, err := startClient(n.ClientOptions(), "bob2")
	if err != nil {
		t.Fatal(err)
	}
	defer bob2.close()
	if err := n.Login(ctxSlow(t), bob2.client, user(t, "bobby").Phone, ""); err != nil {
		t.Fatal(err)
	}
	if err := bob2.runUpdates(ctxSlow(t)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	w, ga, err := requestCall(t, alice, "bobby")
	if err != nil {
		t.Fatal(err)
	}
	in := tg.InputPhoneCall{ID: w.ID, AccessHash: w.AccessHash}
	waitCall[*tg.PhoneCallRequested](t, bob, w.ID)
	waitCall[*tg.PhoneCallRequested](t, bob2, w.ID)
	if _, err := bob2.api.PhoneReceivedCall(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.api.PhoneReceivedCall(ctx, in); err != nil {
		t.Fatalf("second device's receivedCall: %v", err)
	}
	if _, err := bob.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: random256(t), Protocol: protoB}); err != nil {
		t.Fatal(err)
	}
	gone := waitCall[*tg.PhoneCallDiscarded](t, bob2, w.ID)
	if gone.Reason != nil {
		t.Errorf("other device's discard reason %T, want none", gone.Reason)
	}
	if _, err := bob2.api.PhoneAcceptCall(ctx, &tg.PhoneAcceptCallRequest{Peer: in, GB: random256(t), Protocol: protoB}); !tgerr.Is(err, "CALL_ALREADY_ACCEPTED") {
		t.Errorf("other device accepts: %v", err)
	}
	if _, err := bob2.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonBusy{}}); !tgerr.Is(err, "CALL_ALREADY_ACCEPTED") {
		t.Errorf("other device discards: %v", err)
	}
	waitCall[*tg.PhoneCallAccepted](t, alice, w.ID)
	if _, err := alice.api.PhoneConfirmCall(ctx, &tg.PhoneConfirmCallRequest{Peer: in, GA: ga, KeyFingerprint: 3, Protocol: protoA}); err != nil {
		t.Fatal(err)
	}
	waitCall[*tg.PhoneCall](t, bob, w.ID)
	if _, err := bob2.api.PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: in, Data: []byte("x")}); !tgerr.Is(err, "CALL_PEER_INVALID") {
		t.Errorf("signaling from the other device: %v", err)
	}
	// The callee hangs up: only the caller is told; bob2 already knows.
	hangup(t, bob, in)
	if d := waitCall[*tg.PhoneCallDiscarded](t, alice, w.ID); d.Duration != 0 {
		t.Errorf("duration %d", d.Duration)
	}
	if info, _ := n.Call(w.ID); info.DiscardedBy != user(t, "bobby").ID {
		t.Errorf("discarded by %d", info.DiscardedBy)
	}
}
