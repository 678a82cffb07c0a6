//go:build unix

package media

import (
	"math"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsip/tgsip/internal/cputime"
)

// TestLoadPairs is the load measurement of docs/media-performance.md: N
// connected pairs over loopback, every session sending 172-byte packets at
// 50 pps (20 ms) to its peer, slotted over 20 one-millisecond slots; it
// reports the process CPU time (getrusage) per packet over a fixed window.
// One packet is one WriteRTP plus one ReadRTP (MEDIA_LOAD_PUSH=1: one
// delivery by PushRTP, with a ReadRTP parked beside it as the bridge keeps
// one). It runs only when MEDIA_LOAD_PAIRS is set:
//
//	MEDIA_LOAD_PAIRS=200 MEDIA_LOAD_TWCC=1 MEDIA_LOAD_SHARED=0|1|2 MEDIA_LOAD_PUSH=0 \
//	  taskset -c 1 go test -run TestLoadPairs -count=1 -v ./telegram/media/
func TestLoadPairs(t *testing.T) {
	pairs, _ := strconv.Atoi(os.Getenv("MEDIA_LOAD_PAIRS"))
	if pairs <= 0 {
		t.Skip("set MEDIA_LOAD_PAIRS to run the load measurement")
	}
	twcc := os.Getenv("MEDIA_LOAD_TWCC") != "0"
	push := os.Getenv("MEDIA_LOAD_PUSH") == "1"
	window := 10 * time.Second
	if s, err := time.ParseDuration(os.Getenv("MEDIA_LOAD_WINDOW")); err == nil && s > 0 {
		window = s
	}
	// MEDIA_LOAD_SHARED=1 puts the callers on one shared UDP port (the
	// callees keep a socket per session). MEDIA_LOAD_SHARED=2 puts both
	// ends of every pair on shared ports: a shared port tells its calls
	// apart by the remote address (mux.go), so two ports can carry only
	// one pair between them, and the pairs are spread over a grid of
	// k×k ports, k = ceil(sqrt(pairs)): pair i joins caller port i mod k
	// to callee port i div k (15 ports a side at 200 pairs), each port
	// with the Transport (and RTCP timer) of its own.
	shared := os.Getenv("MEDIA_LOAD_SHARED")
	tas, tbs := []*Transport{loopbackTransport()}, []*Transport{loopbackTransport()}
	if shared == "2" {
		k := int(math.Ceil(math.Sqrt(float64(pairs))))
		tas, tbs = nil, nil
		for range k {
			tas, tbs = append(tas, loopbackTransport()), append(tbs, loopbackTransport())
		}
	}
	transports := append(append([]*Transport(nil), tas...), tbs...)
	for _, tr := range transports {
		if shared != "1" && shared != "2" || shared == "1" && tr == tbs[0] {
			continue
		}
		mux, closer, err := NewSharedPort("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = closer.Close() })
		tr.UDPMux = mux
	}
	pairTransports := func(i int) (*Transport, *Transport) {
		if len(tas) == 1 {
			return tas[0], tbs[0]
		}
		return tas[i%len(tas)], tbs[i/len(tas)]
	}
	// MEDIA_LOAD_IDLE=1 sends no media: the CPU left is the timers' (RTCP,
	// ICE keepalives) of the connected pairs.
	idle := os.Getenv("MEDIA_LOAD_IDLE") == "1"
	// MEDIA_LOAD_ONEWAY=1: only the callees send, so every packet is
	// received by a caller (on the shared port with MEDIA_LOAD_SHARED=1):
	// the receive path of the shared port alone, ReadRTP against PushRTP.
	oneway := os.Getenv("MEDIA_LOAD_ONEWAY") == "1"

	// Connect in small parallel batches.
	sessions := make([]*Session, 2*pairs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ta, tb := pairTransports(i)
			a, b := connectedPair(t, Config{Transport: ta, P2PAllowed: true}, Config{Transport: tb, P2PAllowed: true})
			if twcc {
				a.SetRTPExtensions(2, 3)
				b.SetRTPExtensions(2, 3)
			}
			sessions[2*i], sessions[2*i+1] = a, b
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	var received, sent atomic.Uint64
	var readers sync.WaitGroup
	var stops []func()
	for _, s := range sessions {
		readers.Add(1)
		if push {
			stops = append(stops, s.PushRTP(func([]byte) { received.Add(1) }))
			go func() { // parked until the end, as the bridge keeps it
				defer readers.Done()
				for {
					if _, err := s.ReadRTP(make([]byte, 1500)); err != nil && s.Err() != nil {
						return
					}
				}
			}()
			continue
		}
		go func() {
			defer readers.Done()
			buf := make([]byte, 1500)
			for {
				if _, err := s.ReadRTP(buf); err != nil {
					if s.Err() != nil {
						return
					}
					continue
				}
				received.Add(1)
			}
		}()
	}

	// One sender goroutine: every millisecond, the sessions of that slot
	// send one packet each (50 pps per session).
	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		pkts := make([][]byte, len(sessions))
		for i := range sessions {
			pkts[i] = rtpPacket(t, uint32(1000+i), 0, make([]byte, 160))
		}
		// MEDIA_LOAD_HOLD=1: the writes of one slot are held and go in
		// one sendmmsg per shared port (Transport.HoldWrites), as a bridge
		// writes the packets of one batch read from its other leg.
		hold := os.Getenv("MEDIA_LOAD_HOLD") == "1"
		sendSlot := func(slot int) {
			if hold {
				for _, tr := range transports {
					tr.HoldWrites()
				}
				defer func() {
					for _, tr := range transports {
						tr.ReleaseWrites()
					}
				}()
			}
			for i := slot; i < len(sessions); i += 20 {
				if oneway && i%2 == 0 {
					continue
				}
				p := pkts[i]
				seq := uint16(p[2])<<8 | uint16(p[3]) + 1
				p[2], p[3] = byte(seq>>8), byte(seq)
				ts := uint32(seq) * 960
				p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				if sessions[i].WriteRTP(p) == nil {
					sent.Add(1)
				}
			}
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		// Slots follow the clock, not the tick count: a late tick sends
		// every slot due since the last one (the machine may be loaded).
		start, done := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			due := int(time.Since(start) / time.Millisecond)
			for ; done < due && !idle; done++ {
				sendSlot(done % 20)
			}
		}
	}()

	time.Sleep(2 * time.Second) // warm-up: a fixed measurement schedule, not a wait for an event
	// MEDIA_LOAD_CPUPROFILE=file: a CPU profile of the window only
	// (-test.cpuprofile also covers the set-up: certificates, handshakes).
	if f := os.Getenv("MEDIA_LOAD_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = out.Close() }()
		if err := pprof.StartCPUProfile(out); err != nil {
			t.Fatal(err)
		}
	}
	n0, s0, c0, w0 := received.Load(), sent.Load(), cputime.Process(), time.Now()
	time.Sleep(window)
	n1, s1, c1, w1 := received.Load(), sent.Load(), cputime.Process(), time.Now()
	pprof.StopCPUProfile()
	close(stop)
	<-senderDone

	pkts := n1 - n0
	wall := w1.Sub(w0)
	if idle {
		t.Logf("pairs=%d twcc=%v shared=%s push=%v idle window=%v cpu=%v: %.2f ms CPU per second",
			pairs, twcc, sharedName(tas[0], tbs[0]), push, wall.Round(time.Millisecond), (c1 - c0).Round(time.Millisecond),
			float64(c1-c0)/float64(time.Millisecond)/wall.Seconds())
	} else {
		if pkts == 0 {
			t.Fatal("no packets received in the window")
		}
		expected := float64(len(sessions)) * 50 * wall.Seconds()
		if oneway {
			expected /= 2
		}
		perPkt := time.Duration(float64(c1-c0) / float64(pkts))
		t.Logf("pairs=%d twcc=%v shared=%s push=%v window=%v packets=%d (sent %d, %.1f%% of the %0.f due) cpu=%v (%.1f%% of one core) cpu/packet=%v",
			pairs, twcc, sharedName(tas[0], tbs[0]), push, wall.Round(time.Millisecond), pkts, s1-s0, 100*float64(pkts)/expected, expected,
			(c1 - c0).Round(time.Millisecond), 100*float64(c1-c0)/float64(wall), perPkt)
	}

	var ports int
	var unrouted, dropped uint64
	for _, tr := range transports {
		m, ok := tr.UDPMux.(*sharedMux)
		if !ok {
			continue
		}
		ports++
		unrouted += m.unrouted.Load()
		m.mu.RLock()
		for _, c := range m.byUfrag {
			dropped += c.dropped.Load()
		}
		m.mu.RUnlock()
	}
	if ports > 0 {
		t.Logf("%d shared ports: %d datagrams of no call, %d dropped on full call queues", ports, unrouted, dropped)
	}
	for _, stop := range stops {
		stop()
	}
	for _, s := range sessions {
		_ = s.Close()
	}
	readers.Wait()
}

// sharedName says which ends of the pairs use a shared port: "false"
// (none), "callers" or "both" (printed as shared=…).
func sharedName(ta, tb *Transport) string {
	switch {
	case ta.UDPMux != nil && tb.UDPMux != nil:
		return "both"
	case ta.UDPMux != nil:
		return "callers"
	}
	return "false"
}
