package rtpendpoint

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/tgsip/tgsip/sip/sdp"
)

// TestRTCPStats checks both directions' statistics against a peer that
// speaks pion/rtcp: loss and jitter of the peer's stream as our RR reports
// them, LSR/DLSR echoed for the peer's RTT, our SR's counts and CNAME, and
// the peer's view of our stream (loss, jitter) plus the RTT we compute from
// its report block. With and without rtcp-mux, with SRTCP.
func TestRTCPStats(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), mux, Options{CNAME: "ep@test"}, nil)
			r := startReader(t, pr.ep)
			p := pr.peer
			first := p.seq + 1

			// 100 sequence numbers, 10 of them never sent, back to back:
			// arrivals ~0 apart with timestamps 160 apart make the A.8
			// jitter converge on 160 units (20 ms at 8 kHz).
			lost := map[int]bool{10: true, 20: true, 30: true, 31: true, 32: true, 50: true, 70: true, 80: true, 90: true, 98: true}
			for i := range 100 {
				raw := p.packet(make([]byte, 40))
				if !lost[i] {
					p.sendRaw(p.conn, p.protect(raw))
				}
			}
			for i := range 90 {
				if _, err := r.next(waitFor); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			srAt := time.Now()
			srNTP := ntpTime(srAt)
			p.sendRTCP(&rtcp.SenderReport{SSRC: p.ssrc, NTPTime: srNTP, RTPTime: p.ts, PacketCount: 90, OctetCount: 3600})
			eventually(t, "SR read", func() bool { return pr.ep.Stats().RTCPReceived == 1 })

			// Our stream, so that we send an SR.
			for i := range 5 {
				if err := pr.ep.WriteRTP(rtpPacket(t, 0x55, uint16(i), uint32(i*160), make([]byte, 100))); err != nil {
					t.Fatal(err)
				}
			}
			pr.ep.sendReport(time.Now(), false)
			pkts := recvReport(t, p)
			sr, ok := pkts[0].(*rtcp.SenderReport)
			if !ok {
				t.Fatalf("first packet %T, want SR", pkts[0])
			}
			if sr.SSRC != 0x55 || sr.PacketCount != 5 || sr.OctetCount != 500 {
				t.Fatalf("SR %+v", sr)
			}
			if len(sr.Reports) != 1 {
				t.Fatalf("%d report blocks", len(sr.Reports))
			}
			rb := sr.Reports[0]
			if rb.SSRC != p.ssrc || rb.TotalLost != 10 || rb.FractionLost != 10*256/100 {
				t.Fatalf("block %+v", rb)
			}
			if want := uint32(1)<<16 | uint32(first+99); rb.LastSequenceNumber != want {
				t.Fatalf("extended highest seq %#x, want %#x", rb.LastSequenceNumber, want)
			}
			// Loose bounds: gaps in the sequence add, a sender slowed by
			// load subtracts; TestJitterA8 pins the arithmetic exactly.
			if rb.Jitter < 100 || rb.Jitter > 260 {
				t.Fatalf("jitter %d units, want ~160", rb.Jitter)
			}
			if rb.LastSenderReport != uint32(srNTP>>16) {
				t.Fatalf("LSR %#x, want %#x", rb.LastSenderReport, uint32(srNTP>>16))
			}
			// The peer's RTT: A - LSR - DLSR, small on loopback.
			rtt := time.Duration(int64(ntpMiddle(time.Now())-rb.LastSenderReport-rb.Delay) * int64(time.Second) / 65536)
			if rtt < 0 || rtt > time.Second || rb.Delay > uint32(time.Since(srAt).Seconds()*65536)+1 {
				t.Fatalf("peer RTT %v (DLSR %d)", rtt, rb.Delay)
			}
			if !hasCNAME(pkts, "ep@test") {
				t.Fatalf("no CNAME in %v", pkts)
			}
			rs := pr.ep.Stats().Received
			if rs.Lost != 10 || rs.FractionLost != float64(25)/256 || rs.Packets != 90 || rs.Bytes != 3600 {
				t.Fatalf("received stats %+v", rs)
			}
			// Stats shows the same jitter as the report, unrounded.
			if d := rs.Jitter - rtpDuration(float64(rb.Jitter), 8000); d < 0 || d >= 125*time.Microsecond {
				t.Fatalf("jitter %v", rs.Jitter)
			}

			// The peer reports on our stream, pretending our SR left 150 ms
			// before it really did: our RTT must come out >= 150 ms.
			offset := uint32(150 * 65536 / 1000)
			p.sendRTCP(&rtcp.ReceiverReport{SSRC: p.ssrc, Reports: []rtcp.ReceptionReport{{
				SSRC: 0x55, FractionLost: 64, TotalLost: 3, LastSequenceNumber: 4, Jitter: 80,
				LastSenderReport: uint32(sr.NTPTime>>16) - offset, Delay: 0,
			}}})
			eventually(t, "RR read", func() bool { return pr.ep.Stats().Sent.ReportsReceived == 1 })
			ss := pr.ep.Stats().Sent
			if ss.RemoteLost != 3 || ss.RemoteFractionLost != 0.25 || ss.RemoteJitter != 10*time.Millisecond {
				t.Fatalf("sent stats %+v", ss)
			}
			if ss.RTT < 150*time.Millisecond || ss.RTT > 150*time.Millisecond+time.Second {
				t.Fatalf("RTT %v", ss.RTT)
			}
			if ss.Packets != 5 || ss.Bytes != 500 {
				t.Fatalf("sent stats %+v", ss)
			}
		})
	}
}

func recvReport(t *testing.T, p *peer) []rtcp.Packet {
	t.Helper()
	pkts, err := p.recvRTCP(waitFor)
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

func hasCNAME(pkts []rtcp.Packet, cname string) bool {
	for _, pk := range pkts {
		if sd, ok := pk.(*rtcp.SourceDescription); ok {
			for _, c := range sd.Chunks {
				for _, it := range c.Items {
					if it.Type == rtcp.SDESCNAME && it.Text == cname {
						return true
					}
				}
			}
		}
	}
	return false
}

// TestReportsScheduled: endpoints on one shared Scheduler and one with its
// own each send reports on their own (RR before any RTP is sent), and
// Close sends a BYE (RFC 3550 §6.3.7).
func TestReportsScheduled(t *testing.T) {
	sched := NewScheduler(10 * time.Millisecond)
	defer sched.Close()
	var pairs []*pair
	for i := range 4 {
		opt := Options{RTCPInterval: 60 * time.Millisecond, Scheduler: sched}
		if i == 3 {
			opt.Scheduler = nil // a private scheduler
		}
		pairs = append(pairs, newPair(t, newKeys(t, sdp.AEADAES128GCM, false), i%2 == 0, opt, nil))
	}
	for i, pr := range pairs {
		for range 3 {
			pkts := recvReport(t, pr.peer)
			if _, ok := pkts[0].(*rtcp.ReceiverReport); !ok {
				t.Fatalf("endpoint %d: %T, want RR", i, pkts[0])
			}
		}
		pr.ep.Close()
		// Scheduled reports may be queued before the BYE.
		for {
			pkts := recvReport(t, pr.peer)
			if _, ok := pkts[len(pkts)-1].(*rtcp.Goodbye); ok {
				break
			}
		}
		if n := pr.ep.Stats().RTCPSent; n < 4 {
			t.Fatalf("endpoint %d sent %d reports", i, n)
		}
	}
	sched.mu.Lock()
	left := len(sched.endpoints)
	sched.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d endpoints left on the scheduler", left)
	}
}

// TestSharedSchedulerGoroutines: endpoints with rtcp-mux on a shared
// scheduler start no goroutine of their own.
func TestSharedSchedulerGoroutines(t *testing.T) {
	sched := NewScheduler(0)
	defer sched.Close()
	before := runtime.NumGoroutine()
	var eps []*Endpoint
	for range 50 {
		pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true,
			Options{RTCPInterval: time.Second, Scheduler: sched}, nil)
		eps = append(eps, pr.ep)
	}
	// Other tests' goroutines may still be ending: only a rise counts.
	if n := runtime.NumGoroutine() - before; n > 0 {
		t.Fatalf("%d goroutines for 50 endpoints", n)
	}
	for _, ep := range eps {
		ep.Close()
	}
}

// TestRTCPReaderOnDemand: given both sockets but rtcp-mux negotiated, the
// endpoint starts no goroutine; a re-INVITE without rtcp-mux starts the
// RTCP socket's reader, and RTCP sent there is read.
func TestRTCPReaderOnDemand(t *testing.T) {
	sched := NewScheduler(0)
	defer sched.Close()
	keys := newKeys(t, sdp.AESCM128HMACSHA180, false)
	pr := newPair(t, keys, true, Options{RTCPInterval: time.Hour, Scheduler: sched}, nil)
	pr.ep.Close() // leaves a past read deadline on the RTP socket
	before := runtime.NumGoroutine()
	ep, err := New(pr.epRTP, pr.epRTCP, pr.neg, Options{RTCPInterval: time.Hour, Scheduler: sched})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if n := runtime.NumGoroutine() - before; n > 0 {
		t.Fatalf("%d goroutines with rtcp-mux", n)
	}
	p := pr.peer
	p.rtcp = listen(t)
	neg := pr.neg
	neg.RTCPMux = false
	neg.RemoteRTCP = addrOf(p.rtcp)
	if err := ep.Update(neg); err != nil {
		t.Fatal(err)
	}
	ep.updMu.Lock()
	reading := ep.rtcpReading
	ep.updMu.Unlock()
	if !reading {
		t.Fatal("no RTCP reader without rtcp-mux")
	}
	// The sockets served a closed endpoint before: New cleared the
	// deadline its Close left, so RTP flows too.
	p.send([]byte("rtp"))
	if _, err := ep.ReadRTP(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	p.sendRTCP(&rtcp.ReceiverReport{SSRC: p.ssrc})
	eventually(t, "RTCP read on its own socket", func() bool { return ep.Stats().RTCPReceived == 1 })
}
