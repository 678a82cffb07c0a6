package tgcall

import "testing"

// TestSignalingBufferedBeforeKeys: signaling for a call whose keys do not
// exist yet is kept (bounded) for when they do, and dropped once the call
// is ending (research/tgcalls.md §1.7: tdlib and tdesktop drop it, and
// only V2 retransmission would recover it).
func TestSignalingBufferedBeforeKeys(t *testing.T) {
	call := &Call{state: stateAccepting}
	for i := 0; i < earlyLimit+5; i++ {
		call.onSignal([]byte{byte(i)})
	}
	if len(call.early) != earlyLimit {
		t.Fatalf("buffered %d packets, want the limit %d", len(call.early), earlyLimit)
	}
	if call.early[0][0] != 0 || call.early[earlyLimit-1][0] != earlyLimit-1 {
		t.Error("buffer does not keep the first packets in order")
	}
	ending := &Call{state: stateEnding}
	ending.onSignal([]byte{1})
	if len(ending.early) != 0 {
		t.Error("signaling buffered for an ending call")
	}
}
