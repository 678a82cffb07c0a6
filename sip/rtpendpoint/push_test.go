package rtpendpoint

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/tgsip/tgsip/sip/sdp"
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
	for _, suite := range allSuites {
		t.Run(string(suite), func(t *testing.T) {
			pr := newPair(t, newKeys(t, suite, false), true, Options{}, nil)
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
}

// TestPushRTPStopWaitsForDeliver: stop returns only once the deliver call
// in progress has returned, and none starts after it.
func TestPushRTPStopWaitsForDeliver(t *testing.T) {
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{}, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var inside, after atomic.Bool
	var stopped atomic.Bool
	stop := pr.ep.PushRTP(func([]byte) {
		if stopped.Load() {
			after.Store(true)
		}
		inside.Store(true)
		select {
		case entered <- struct{}{}:
			<-release
		default:
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
}

// TestPushRTPEnd: Close (and an owner closing the socket) ends the push
// goroutine and makes the blocked ReadRTP return the end error as it
// would have, not ErrPushStopped; stop afterwards returns at once, and
// PushRTP after Close starts nothing. goleak (TestMain) checks that no
// goroutine is left.
func TestPushRTPEnd(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		pr := newPair(t, nil, true, Options{}, nil)
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
	pr := newPair(t, nil, true, Options{}, nil)
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
}

// TestPushRTPNoAllocs: the push path (recvfrom, SRTP unprotect, stats,
// deliver) allocates nothing per packet.
func TestPushRTPNoAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count")
	}
	pr := newPair(t, newKeys(t, sdp.AESCM128HMACSHA180, false), true, Options{}, nil)
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
}
