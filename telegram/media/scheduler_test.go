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

// On the 250 ms wheel, with visits up to 30 ms late, a 1 s report interval
// gives one report per second (tgcalls/libwebrtc send compound reports
// about once a second for audio), never two in one turn, and a stalled
// scheduler sends one report, not a burst, when it wakes.
func TestReportCadence(t *testing.T) {
	s := &Session{cfg: Config{RTCPInterval: time.Second}}
	t0 := time.Unix(1_000_000, 0)
	s.nextReport = t0.Add(time.Second)
	var sent []time.Time
	for k := 1; k <= int(10*time.Second/twccInterval); k++ {
		late := time.Duration(k*7%31) * time.Millisecond
		now := t0.Add(time.Duration(k)*twccInterval + late)
		if s.reportDue(now) {
			sent = append(sent, now)
		}
	}
	if len(sent) != 10 {
		t.Fatalf("%d reports in 10 s, want 10: %v", len(sent), sent)
	}
	for i := 1; i < len(sent); i++ {
		if d := sent[i].Sub(sent[i-1]); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("report %d came %v after the previous one", i, d)
		}
	}
	// A 5 s stall: one report on waking, the next a second later.
	now := sent[len(sent)-1].Add(5 * time.Second)
	if !s.reportDue(now) {
		t.Fatal("no report after a stall")
	}
	if s.reportDue(now.Add(twccInterval)) {
		t.Fatal("a second report right after a stall")
	}
	if !s.reportDue(now.Add(time.Second)) {
		t.Fatal("no report a second after the stall")
	}
}
