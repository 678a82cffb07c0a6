package media

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// RTCP timing. The slot wheel turns once per twccInterval: every connected
// session sits in one slot and is visited once per turn, so one timer serves
// every session of a Transport (about 1/schedSlotWidth wake-ups a second in
// all instead of one 100 ms ticker and one report ticker per session) and
// the sessions' RTCP is spread evenly over the turn.
const (
	schedSlots     = 25
	schedSlotWidth = twccInterval / schedSlots // 10 ms
)

// rtcpScheduler sends the transport-cc feedback and the RTCP reports of all
// connected sessions of one Transport from one goroutine and one ticker.
// The goroutine runs while at least one session is registered: it starts
// with the first and stops with the last, so a Transport needs no Close.
// The zero value is ready to use.
type rtcpScheduler struct {
	mu    sync.Mutex
	slots [schedSlots][]*Session
	n     int
	stop  chan struct{}
	done  chan struct{}
	// mux is the Transport's shared port, if any: the RTCP of one visit
	// goes out in one batch there (muxWriter).
	mux *sharedMux
}

// add registers a connected session in the least populated slot.
func (sc *rtcpScheduler) add(s *Session) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if m, ok := s.t.UDPMux.(*sharedMux); ok {
		sc.mux = m // the same for every session of the Transport
	}
	if sc.n == 0 {
		sc.stop, sc.done = make(chan struct{}), make(chan struct{})
		go sc.run(sc.stop, sc.done)
	}
	best := 0
	for i := range sc.slots {
		if len(sc.slots[i]) < len(sc.slots[best]) {
			best = i
		}
	}
	sc.slots[best] = append(sc.slots[best], s)
	sc.n++
}

// remove unregisters s. Once it returns the scheduler is not inside s.tick
// and will not call it again; after the last session its goroutine has
// exited.
func (sc *rtcpScheduler) remove(s *Session) {
	sc.mu.Lock()
	found := false
	for i := range sc.slots {
		slot := sc.slots[i]
		for j, x := range slot {
			if x == s {
				last := len(slot) - 1
				slot[j], slot[last] = slot[last], nil
				sc.slots[i] = slot[:last]
				found = true
				break
			}
		}
	}
	var wait chan struct{}
	if found {
		sc.n--
		if sc.n == 0 {
			close(sc.stop)
			wait = sc.done
		}
	}
	sc.mu.Unlock()
	if wait != nil {
		<-wait
	}
}

// run visits one slot per schedSlotWidth. Slots follow the clock: when a
// wake-up is late (loaded machine), the slots it missed are visited too.
func (sc *rtcpScheduler) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(schedSlotWidth)
	defer t.Stop()
	start, visited := time.Now(), 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		due := int(now.Sub(start) / schedSlotWidth)
		if due-visited > schedSlots {
			visited = due - schedSlots // more than a turn behind: one visit each
		}
		sc.mu.Lock()
		if sc.mux != nil {
			sc.mux.w.hold()
		}
		for ; visited < due; visited++ {
			for _, s := range sc.slots[visited%schedSlots] {
				s.rtcpTick(now)
			}
		}
		if sc.mux != nil {
			sc.mux.w.release()
		}
		sc.mu.Unlock()
	}
}

// rtcpTick is one scheduler visit (every twccInterval): transport-cc
// feedback while the extension is on, and the SR/RR once RTCPInterval has
// passed since the last. When both are due they go in one compound packet
// (RFC 3550 §6.1: the report first). Called with the scheduler's lock held.
func (s *Session) rtcpTick(now time.Time) {
	var pkts []rtcp.Packet
	if s.reportDue(now) {
		pkts = append(pkts, s.st.reports(now))
	}
	if s.extTransportCC.Load() != 0 {
		if fb := s.st.feedback(); len(fb) > 0 {
			s.st.twccOut.Add(uint64(len(fb)))
			pkts = append(pkts, fb...)
		}
	}
	if len(pkts) > 0 {
		s.sendRTCP(pkts)
	}
}

// reportDue says whether the SR/RR is due at this visit and then schedules
// the next one RTCPInterval later. Reports may go half a visit early so
// that a 1 s interval keeps its phase on the wheel; after a stall
// the schedule restarts from now instead of sending a burst.
func (s *Session) reportDue(now time.Time) bool {
	if now.Add(twccInterval / 2).Before(s.nextReport) {
		return false
	}
	s.nextReport = s.nextReport.Add(s.cfg.RTCPInterval)
	if s.nextReport.Before(now) {
		s.nextReport = now.Add(s.cfg.RTCPInterval)
	}
	return true
}
