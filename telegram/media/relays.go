package media

import (
	"time"

	"github.com/pion/ice/v4"
)

// Releasing the relays a connected call does not use
// (Transport.ReleaseUnusedRelays).
//
// tgcalls keeps every port for the whole call: NativeNetworkingImpl
// configures its BasicPortAllocator with webrtc::NO_PRUNE and gathers with
// GATHER_CONTINUALLY (tgcalls/v2/NativeNetworkingImpl.cpp,
// resetDtlsSrtpTransport), and libwebrtc's BasicPortAllocatorSession marks
// every ready port KeepAliveUntilPruned (p2p/client/basic_port_allocator.cc,
// OnCandidateReady); what libwebrtc prunes once a connection is selected
// are connections (BasicIceController::PruneConnections stops pinging
// them), not ports. The reflector and TURN ports therefore stay open with
// their hellos and refreshes, and a call whose direct path breaks can move
// to a relay. That is the default here too.
//
// With ReleaseUnusedRelays a session closes its reflector ports and TURN
// allocations once a pair that uses none of them has stayed selected for
// relayReleaseDelay while connected: their reader goroutines, timers and
// buffers (about 110 KiB of a call end with two reflectors and a TURN
// server listed) go, and so does that fallback. The candidates stay known
// to the agent (pion has no way to remove one); writes to them fail and
// are dropped, and their sockets no longer exist to be read.

// relayReleaseDelay is how long the selected pair must stay off the relays
// before they are released: long enough for the controlling peer to finish
// nominating (tgcalls renominates as pairs become writable) and for the
// DTLS handshake, short against a call.
var relayReleaseDelay = 10 * time.Second // a variable for tests

// noteSelectedPair arms or disarms the release of unused relays; it runs
// on pion's selected-pair callback (handleSelectedPair).
func (s *Session) noteSelectedPair(local ice.Candidate) {
	if !s.t.ReleaseUnusedRelays {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relaysReleased || s.ctx.Err() != nil {
		return
	}
	if s.usesOwnRelay(local) {
		if s.releaseTimer != nil {
			s.releaseTimer.Stop()
			s.releaseTimer = nil
		}
		return
	}
	if s.releaseTimer == nil {
		s.releaseTimer = time.AfterFunc(relayReleaseDelay, s.releaseRelays)
	}
}

// usesOwnRelay reports whether local is one of our reflector or TURN
// candidates.
func (s *Session) usesOwnRelay(local ice.Candidate) bool {
	rc, ok := local.(*ice.CandidateRelay)
	if !ok {
		return false
	}
	for _, p := range s.ports {
		if p.cand.Load() == rc {
			return true
		}
	}
	for _, p := range s.turns { // under mu
		if p.cand.Load() == rc {
			return true
		}
	}
	return false
}

// releaseRelays closes the reflector ports and TURN allocations if the
// session is connected and its selected pair still uses none of them.
func (s *Session) releaseRelays() {
	if s.keys.Load() == nil || s.ended.Load() {
		s.mu.Lock()
		s.releaseTimer = nil // not connected yet: the next selection re-arms
		s.mu.Unlock()
		return
	}
	pair, err := s.agent.GetSelectedCandidatePair()
	s.mu.Lock()
	s.releaseTimer = nil
	if err != nil || pair == nil || s.usesOwnRelay(pair.Local) || s.relaysReleased || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.relaysReleased = true
	turns := s.turns
	s.mu.Unlock()
	s.log.Debug("releasing unused relays", "reflectors", len(s.ports), "turn", len(turns), "local", pair.Local.String())
	for _, p := range s.ports {
		_ = p.Close() // its hello loop and pion's reader end on the closed socket
	}
	for _, p := range turns {
		p.close()
	}
}

// stopReleaseTimer stops a pending release (teardown).
func (s *Session) stopReleaseTimer() {
	s.mu.Lock()
	if s.releaseTimer != nil {
		s.releaseTimer.Stop()
		s.releaseTimer = nil
	}
	s.mu.Unlock()
}
