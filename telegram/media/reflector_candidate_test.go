package media

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestReflectorCandidateKnownAnswer: foundation and priority of a reflector
// candidate as libwebrtc computes them for tgcalls' ReflectorPort
// (Port::ComputeFoundation, Candidate::GetPriority; see
// reflector_candidate.go). The foundations are zlib.crc32 of
// "relay" + ip + "udp" + "udp" computed independently in Python; the
// priority is (2 << 24) | (127 << 8) << 8 | 255.
func TestReflectorCandidateKnownAnswer(t *testing.T) {
	for ip, want := range map[string]string{
		"149.154.167.51":       "903370457",
		"127.0.0.1":            "213309110",
		"2001:67c:4e8:f004::9": "3946215325",
	} {
		if got := reflectorFoundation(netip.MustParseAddr(ip)); got != want {
			t.Errorf("foundation(%s) = %s, want %s", ip, got, want)
		}
	}
	if reflectorPriority != 41877759 {
		t.Errorf("priority %d, want 41877759", reflectorPriority)
	}

	// The candidate a session announces carries them.
	ref := newTestReflector(t)
	s := newSession(t, Config{Reflectors: []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}})
	got := make(chan string, 16)
	s.OnCandidate(func(c string) { got <- c })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(testTimeout)
	for {
		select {
		case c := <-got:
			p, err := parseCandidate(c)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Address, "reflector-1-") {
				continue
			}
			if p.Foundation != "213309110" || p.Priority != 41877759 || p.Type != "relay" {
				t.Fatalf("reflector candidate %q", c)
			}
			return
		case <-deadline:
			t.Fatal("no reflector candidate")
		}
	}
}
