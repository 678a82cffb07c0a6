package rtpendpoint

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/tgsip/tgsip/sip/sdp"

	"github.com/tgsip/tgsip/internal/cputime"
)

// pushed collects what PushRTP delivers, copied.
type pushed struct {
	pkts  chan []byte
	calls atomic.Int64
}

func (p *pushed) deliver(b []byte) {
	p.calls.Add(1)
	p.pkts <- append([]byte(nil), b...)
}

func (p *pushed) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-p.pkts:
		return b
	case <-time.After(waitFor):
		t.Fatal("no packet delivered")
		return nil
	}
}

// forPushModes runs a test with endpoints that push from a goroutine of
// their own and with endpoints on a shared Poller (Linux).
func forPushModes(t *testing.T, test func(t *testing.T, opt Options)) {
	t.Run("goroutine", func(t *testing.T) { test(t, Options{}) })
	t.Run("poller", func(t *testing.T) {
		p, err := NewPoller(PollerOptions{})
		if err != nil {
			t.Skip(err)
		}
		t.Cleanup(p.Close) // after the endpoints' Close, registered later
		test(t, Options{Poller: p})
	})
}

// waitingInPush waits until a ReadRTP is blocked in the push wait (a
// ReadRTP that comes after stop reads the socket instead).
func waitingInPush(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	eventually(t, "ReadRTP waiting while pushing", func() bool {
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("(*Endpoint).waitPush"))
	})
}

// readErr runs one ReadRTP in a goroutine and hands over its result.
func readErr(ep *Endpoint) <-chan error {
	c := make(chan error, 1)
	go func() {
		_, err := ep.ReadRTP(make([]byte, 1500))
		c <- err
	}()
	return c
}

// TestPushRTPIdentical: with SRTP (every suite, muxed RTCP arriving in
// between) PushRTP delivers each of the peer's packets byte for byte as
// ReadRTP would, across the sequence wrap, and RTCP is still read inside;
// a ReadRTP meanwhile blocks and returns ErrPushStopped at stop, after
// which ReadRTP reads the socket again.
func TestPushRTPIdentical(t *testing.T) {
	forPushModes(t, func(t *testing.T, opt Options) {
		for _, suite := range allSuites {
			t.Run(string(suite), func(t *testing.T) {
				pr := newPair(t, newKeys(t, suite, false), true, opt, nil)
				got := &pushed{pkts: make(chan []byte, 128)}
				stop := pr.ep.PushRTP(got.deliver)
				blocked := readErr(pr.ep)
				for i := range 40 {
					want := pr.peer.send(bytes.Repeat([]byte{byte(i)}, 100))
					if i == 20 {
						pr.peer.sendRTCP(&rtcp.ReceiverReport{SSRC: pr.peer.ssrc})
					}
					if b := got.next(t); !bytes.Equal(b, want) {
						t.Fatalf("packet %d differs", i)
					}
				}
				eventually(t, "the RTCP read inside", func() bool { return pr.ep.Stats().RTCPReceived == 1 })
				select {
				case err := <-blocked:
					t.Fatalf("ReadRTP returned %v while pushing", err)
				default:
				}
				waitingInPush(t)
				stop()
				select {
				case err := <-blocked:
					if !errors.Is(err, ErrPushStopped) {
						t.Fatalf("ReadRTP after stop: %v", err)
					}
				case <-time.After(waitFor):
					t.Fatal("ReadRTP still blocked after stop")
				}
				n := got.calls.Load()
				want := pr.peer.send([]byte("after"))
				buf := make([]byte, 1500)
				m, err := pr.ep.ReadRTP(buf)
				if err != nil || !bytes.Equal(buf[:m], want) {
					t.Fatalf("ReadRTP after stop: %v", err)
				}
				if got.calls.Load() != n {
					t.Fatal("deliver called after stop returned")
				}
				st := pr.ep.Stats().Received
				if st.Packets != 41 || st.Lost != 0 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	})
}

// TestPushRTPStopWaitsForDeliver: stop returns only once the deliver call
// in progress has returned, and none starts after it.
func TestPushRTPStopWaitsForDeliver(t *testing.T) {
	forPushModes(t, func(t *testing.T, opt Options) {
		pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, opt, nil)
		entered, release := make(chan struct{}), make(chan struct{})
		var inside, after atomic.Bool
		var stopped, first atomic.Bool
		first.Store(true)
		stop := pr.ep.PushRTP(func([]byte) {
			if stopped.Load() {
				after.Store(true)
			}
			inside.Store(true)
			if first.CompareAndSwap(true, false) {
				entered <- struct{}{}
				<-release
			}
			inside.Store(false)
		})
		pr.peer.send([]byte("x"))
		<-entered
		done := make(chan struct{})
		go func() {
			stop()
			stopped.Store(true)
			close(done)
		}()
		select {
		case <-done:
			t.Fatal("stop returned while deliver ran")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		<-done
		if inside.Load() {
			t.Fatal("deliver still running after stop")
		}
		for range 5 {
			pr.peer.send([]byte("y"))
		}
		// The packets are read by nobody now; none may reach deliver.
		time.Sleep(20 * time.Millisecond)
		if after.Load() {
			t.Fatal("deliver called after stop")
		}
		stop() // a second stop is harmless
	})
}

// TestPushRTPEnd: Close (and, without a Poller, an owner closing the
// socket) ends the push goroutine and makes the blocked ReadRTP return the end error as it
// would have, not ErrPushStopped; stop afterwards returns at once, and
// PushRTP after Close starts nothing. goleak (TestMain) checks that no
// goroutine is left.
func TestPushRTPEnd(t *testing.T) {
	forPushModes(t, func(t *testing.T, opt Options) {
		pr := newPair(t, nil, true, opt, nil)
		got := &pushed{pkts: make(chan []byte, 8)}
		stop := pr.ep.PushRTP(got.deliver)
		blocked := readErr(pr.ep)
		pr.peer.send([]byte("a"))
		got.next(t)
		if err := pr.ep.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-blocked; !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadRTP: %v, want ErrClosed", err)
		}
		stop()
		if _, err := pr.ep.ReadRTP(make([]byte, 1500)); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadRTP after: %v", err)
		}
		again := pr.ep.PushRTP(got.deliver)
		again()
	})
	t.Run("owner", func(t *testing.T) {
		pr := newPair(t, nil, true, Options{}, nil)
		stop := pr.ep.PushRTP(func([]byte) {})
		blocked := readErr(pr.ep)
		pr.epRTP.Close()
		err := <-blocked
		if !errors.Is(err, net.ErrClosed) || errors.Is(err, ErrPushStopped) {
			t.Fatalf("ReadRTP: %v", err)
		}
		stop()
	})
}

// TestPushRTPReplaces: a second PushRTP stops the first; packets go to
// the new deliver only.
func TestPushRTPReplaces(t *testing.T) {
	forPushModes(t, func(t *testing.T, opt Options) {
		pr := newPair(t, nil, true, opt, nil)
		first := &pushed{pkts: make(chan []byte, 8)}
		second := &pushed{pkts: make(chan []byte, 8)}
		stop1 := pr.ep.PushRTP(first.deliver)
		stop2 := pr.ep.PushRTP(second.deliver)
		want := pr.peer.send([]byte("b"))
		if b := second.next(t); !bytes.Equal(b, want) {
			t.Fatal("second push got another packet")
		}
		if first.calls.Load() != 0 {
			t.Fatal("first push still delivers")
		}
		stop1()
		stop2()
	})
}

// TestPushRTPNoAllocs: the push path (recvfrom, SRTP unprotect, stats,
// deliver) allocates nothing per packet.
func TestPushRTPNoAllocs(t *testing.T) {
	forPushModes(t, func(t *testing.T, opt Options) {
		if testing.Short() || raceEnabled {
			t.Skip("allocation count")
		}
		pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, opt, nil)
		got := make(chan struct{}, 1)
		stop := pr.ep.PushRTP(func([]byte) { got <- struct{}{} })
		defer stop()
		pkts := make([][]byte, 301)
		for i := range pkts {
			pkts[i] = pr.peer.protect(pr.peer.packet(make([]byte, 100)))
		}
		send := func(i int) {
			pr.peer.sendRaw(pr.peer.conn, pkts[i])
			<-got
		}
		send(0)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 1; i < len(pkts); i++ {
			send(i)
		}
		runtime.ReadMemStats(&after)
		// The test's own sends allocate nothing either (prepared packets);
		// allow a few for the runtime's background work.
		if n := after.Mallocs - before.Mallocs; n > 30 {
			t.Fatalf("%d allocations for 300 packets", n)
		}
	})
}

// TestPollerManyEndpoints: one Poller reads the sockets of many endpoints
// (one goroutine for all, none per endpoint); each delivers its own
// peer's packets, in order, to its own deliver, with packets of all
// interleaved; an endpoint that stops or closes leaves the others going.
func TestPollerManyEndpoints(t *testing.T) {
	poller, err := NewPoller(PollerOptions{})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(poller.Close)
	const n = 20
	before := runtime.NumGoroutine()
	prs := make([]*pair, n)
	got := make([]*pushed, n)
	stops := make([]func(), n)
	for i := range prs {
		prs[i] = newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{Poller: poller}, nil)
		got[i] = &pushed{pkts: make(chan []byte, 64)}
		stops[i] = prs[i].ep.PushRTP(got[i].deliver)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines for %d pushing endpoints", g-before, n)
	}
	for round := range 10 {
		want := make([][]byte, n)
		for i := range prs {
			want[i] = prs[i].peer.send([]byte{byte(i), byte(round)})
		}
		for i := range prs {
			if b := got[i].next(t); !bytes.Equal(b, want[i]) {
				t.Fatalf("endpoint %d round %d: got %x", i, round, b)
			}
		}
	}
	stops[3]()
	prs[4].ep.Close()
	for i := range prs {
		want := prs[i].peer.send([]byte{0xff, byte(i)})
		switch i {
		case 3, 4:
			continue
		}
		if b := got[i].next(t); !bytes.Equal(b, want) {
			t.Fatalf("endpoint %d after others left: %x", i, b)
		}
	}
	buf := make([]byte, 1500)
	if m, err := prs[3].ep.ReadRTP(buf); err != nil || buf[rtpHeaderLen] != 0xff {
		t.Fatalf("stopped endpoint's ReadRTP: %d %v", m, err)
	}
	for _, s := range stops {
		s()
	}
}

// BenchmarkPushReceive is the receive side of many calls at once: 100
// endpoints with AES_CM_128_HMAC_SHA1_80, their peers sending one packet
// each in bursts of 5 (100 calls at 50 packets/s spread over 20 ms), each
// packet read, unprotected and delivered by PushRTP; an op is one packet.
// "goroutine" is a reading goroutine per endpoint blocked in its socket
// (Go's netpoller wakes it per packet), "poller" one Poller for all. The
// peers' protect and sendto are in both; cpu-ns/op is the process's CPU.
func BenchmarkPushReceive(b *testing.B) {
	for _, mode := range []string{"goroutine", "poller"} {
		b.Run(mode, func(b *testing.B) {
			var opt Options
			if mode == "poller" {
				p, err := NewPoller(PollerOptions{})
				if err != nil {
					b.Skip(err)
				}
				b.Cleanup(p.Close)
				opt.Poller = p
			}
			const calls, burst = 100, 5
			got := make(chan struct{}, calls)
			prs := make([]*pair, calls)
			for i := range prs {
				prs[i] = newPair(b, newKeys(b, sdp.AESCM128HMACSHA180, false), true, opt, nil)
				stop := prs[i].ep.PushRTP(func([]byte) { got <- struct{}{} })
				b.Cleanup(stop)
			}
			// Protected ahead, outside the timing (replay protection allows
			// no repeats); sent round robin.
			per := b.N/calls + 1
			pkts := make([][][]byte, calls)
			for i, pr := range prs {
				pkts[i] = make([][]byte, per)
				for j := range pkts[i] {
					pkts[i][j] = pr.peer.protect(pr.peer.packet(make([]byte, 100)))
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for sent := 0; sent < b.N; {
				n := min(burst, b.N-sent)
				for i := sent; i < sent+n; i++ {
					c := i % calls
					prs[c].peer.sendRaw(prs[c].peer.conn, pkts[c][i/calls])
				}
				for range n {
					<-got
				}
				sent += n
			}
			b.StopTimer()
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// TestPollerBurst: packets that queue up in a socket while the Poller is
// busy (here: in the first deliver) all come out after it, though no new
// packet arrives to wake it again (the sockets are edge-triggered, and a
// recvmmsg takes 8 at most).
func TestPollerBurst(t *testing.T) {
	poller, err := NewPoller(PollerOptions{})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(poller.Close)
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{Poller: poller}, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int64
	stop := pr.ep.PushRTP(func([]byte) {
		if n.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	defer stop()
	pr.peer.send([]byte{0})
	<-entered
	const burst = 30
	for i := range burst {
		pr.peer.send([]byte{byte(i + 1)})
	}
	time.Sleep(20 * time.Millisecond) // let them reach the socket
	close(release)
	eventually(t, "the burst delivered", func() bool { return n.Load() == burst+1 })
}

// TestPollerBatchHooks: PollerOptions.BeforeBatch and AfterBatch bracket
// each batch of ready sockets, every deliver runs between them, and the
// packets that reached several sockets while the Poller was busy are
// handled in one batch (what lets the b2bua send them toward Telegram in
// one sendmmsg).
func TestPollerBatchHooks(t *testing.T) {
	var (
		mu                    sync.Mutex
		open                  bool
		batches, befores, bad int
		batchOf               = map[byte]int{}
	)
	poller, err := NewPoller(PollerOptions{
		BeforeBatch: func() {
			mu.Lock()
			defer mu.Unlock()
			if open {
				bad++
			}
			open = true
			befores++
			batches++
		},
		AfterBatch: func() {
			mu.Lock()
			defer mu.Unlock()
			if !open {
				bad++
			}
			open = false
		},
	})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(poller.Close)
	const n = 5
	entered, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	var delivered atomic.Int64
	prs := make([]*pair, n)
	for i := range prs {
		prs[i] = newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{Poller: poller}, nil)
		stop := prs[i].ep.PushRTP(func(b []byte) {
			mu.Lock()
			if !open {
				bad++
			}
			batchOf[b[rtpHeaderLen]] = batches
			mu.Unlock()
			first.Do(func() { close(entered); <-release })
			delivered.Add(1)
		})
		defer stop()
	}
	prs[0].peer.send([]byte{0xff})
	<-entered
	for i, pr := range prs {
		pr.peer.send([]byte{byte(i)})
	}
	time.Sleep(20 * time.Millisecond) // let them reach the sockets
	close(release)
	eventually(t, "all delivered", func() bool { return delivered.Load() == n+1 })
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 || open {
		t.Fatalf("%d delivers or hooks out of order (open after: %v)", bad, open)
	}
	if befores != 2 {
		t.Errorf("%d batches, want 2 (the first packet, then the %d that came meanwhile)", befores, n)
	}
	for i := range n {
		if batchOf[byte(i)] != batchOf[0] || batchOf[0] == batchOf[0xff] {
			t.Fatalf("packets by batch: %v", batchOf)
		}
	}
}
