package media

import (
	"testing"
	"time"
)

// sessionsScheduled reports how many sessions t's RTCP scheduler holds and
// whether its goroutine is running.
func sessionsScheduled(t *Transport) (int, bool) {
	t.sched.mu.Lock()
	defer t.sched.mu.Unlock()
	n := 0
	for i := range t.sched.slots {
		n += len(t.sched.slots[i])
	}
	running := false
	if t.sched.done != nil {
		select {
		case <-t.sched.done:
		default:
			running = true
		}
	}
	if n != t.sched.n {
		panic("scheduler count out of sync")
	}
	return n, running
}

// Several pairs on one Transport share one RTCP scheduler: every session is
// registered once, transport-cc feedback and SRs still go out from it and
// are parsed by the peer (pion/rtcp in handleSRTCP), and the scheduler's
// goroutine ends with the last session.
func TestSharedRTCPScheduler(t *testing.T) {
	tr := loopbackTransport()
	cfg := Config{Transport: tr, P2PAllowed: true, RTCPInterval: 300 * time.Millisecond}
	const pairs = 3
	var ss []*Session
	var rs []*reader
	for range pairs {
		a, b := connectedPair(t, cfg, cfg)
		a.SetRTPExtensions(2, 3)
		b.SetRTPExtensions(2, 3)
		ss = append(ss, a, b)
		rs = append(rs, startReader(a), startReader(b))
	}
	if n, running := sessionsScheduled(tr); n != 2*pairs || !running {
		t.Fatalf("scheduler holds %d sessions (running %v), want %d", n, running, 2*pairs)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	seq := uint16(0)
	for {
		done := true
		for _, s := range ss {
			st := s.Stats()
			if st.SenderReportsReceived == 0 || st.TransportCCReceived == 0 || st.TransportCCSent == 0 {
				done = false
			}
		}
		if done {
			break
		}
		select {
		case <-tick.C:
			seq++
			for i, s := range ss {
				if err := s.WriteRTP(rtpPacket(t, uint32(0x100+i), seq, []byte("media"))); err != nil {
					t.Fatal(err)
				}
			}
		case <-deadline:
			for i, s := range ss {
				t.Logf("session %d: %+v", i, s.Stats())
			}
			t.Fatal("not every session got SRs and transport-cc feedback")
		}
	}
	// Closing one pair leaves the others scheduled.
	_ = ss[0].Close()
	_ = ss[1].Close()
	if n, running := sessionsScheduled(tr); n != 2*pairs-2 || !running {
		t.Fatalf("after closing a pair: %d sessions (running %v)", n, running)
	}
	for _, s := range ss[2:] {
		_ = s.Close()
	}
	for _, r := range rs {
		r.wait(t)
	}
	if n, running := sessionsScheduled(tr); n != 0 || running {
		t.Fatalf("after closing all: %d sessions, goroutine running %v", n, running)
	}
}
