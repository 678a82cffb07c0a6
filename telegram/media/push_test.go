package media

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pushSetup builds a connected pair whose receiver b is on a host socket of
// its own, a reflector port, or the shared port.
func pushSetup(t *testing.T, mode string) (a, b *Session) {
	t.Helper()
	ca, cb := Config{P2PAllowed: true}, Config{P2PAllowed: true}
	switch mode {
	case "shared-port":
		mux, closer, err := NewSharedPort("127.0.0.1:0", testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = closer.Close() })
		cb.Transport = loopbackTransport()
		cb.Transport.UDPMux = mux
	case "reflector":
		ref := newTestReflector(t)
		refl := []Reflector{{ServerID: 1, Addr: ref.addr, PeerTag: randomTag(t)}}
		ca, cb = Config{Reflectors: refl}, Config{Reflectors: refl}
	}
	return connectedPair(t, ca, cb)
}

// parkedRead is a ReadRTP call made while a push is active, as the bridge
// keeps one to learn of the end.
func parkedRead(s *Session) <-chan error {
	ch := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		_, err := s.ReadRTP(buf)
		ch <- err
	}()
	return ch
}

// PushRTP delivers exactly what ReadRTP would return, in order, on the
// receiving goroutine; stop ends delivery and releases the parked ReadRTP
// with ErrPushStopped; ReadRTP reads again afterwards, and a second push
// works too.
func TestPushRTP(t *testing.T) {
	for _, mode := range []string{"host", "reflector", "shared-port"} {
		t.Run(mode, func(t *testing.T) {
			a, b := pushSetup(t, mode)
			var (
				mu      sync.Mutex
				got     [][]byte
				stopped atomic.Bool
				late    atomic.Int32
			)
			stop := b.PushRTP(func(p []byte) {
				if stopped.Load() {
					late.Add(1)
				}
				mu.Lock()
				got = append(got, append([]byte(nil), p...))
				mu.Unlock()
			})
			parked := parkedRead(b)

			const total = 300
			sent := make([][]byte, 0, total)
			tick := time.NewTicker(time.Millisecond)
			for seq := 1; seq <= total; seq++ {
				<-tick.C
				p := rtpPacket(t, 0x4242, uint16(seq), append([]byte("push"), byte(seq>>8), byte(seq), byte(seq*7)))
				if err := a.WriteRTP(p); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, p)
			}
			tick.Stop()
			deadline := time.Now().Add(testTimeout)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n >= total {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d packets pushed (stats %+v)", n, total, b.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case err := <-parked:
				t.Fatalf("ReadRTP returned while pushing: %v", err)
			default:
			}
			stop()
			stopped.Store(true)
			mu.Lock()
			if len(got) != total {
				t.Errorf("%d packets pushed, want %d", len(got), total)
			}
			for i := range min(len(got), total) {
				if !bytes.Equal(got[i], sent[i]) {
					t.Fatalf("packet %d: pushed %x, sent %x", i, got[i], sent[i])
				}
			}
			mu.Unlock()
			select {
			case err := <-parked:
				if !errors.Is(err, ErrPushStopped) {
					t.Fatalf("parked ReadRTP: %v, want ErrPushStopped", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("parked ReadRTP not released by stop")
			}
			stop() // idempotent

			// ReadRTP after stop reads the same path again.
			rb := startReader(b)
			if len(flow(t, a, rb, 0x4242, "after", 20)) != 20 {
				t.Fatal("ReadRTP after stop")
			}
			if n := late.Load(); n != 0 {
				t.Fatalf("%d deliveries after stop returned", n)
			}

			// A second push takes over from ReadRTP (which is then parked
			// and released by its stop).
			var n2 atomic.Int32
			stop2 := b.PushRTP(func(p []byte) {
				if bytes.Contains(p, []byte("again")) {
					n2.Add(1)
				}
			})
			deadline = time.Now().Add(testTimeout)
			for seq := uint16(1); n2.Load() < 20; seq++ {
				if time.Now().After(deadline) {
					t.Fatalf("second push: %d packets", n2.Load())
				}
				if err := a.WriteRTP(rtpPacket(t, 0x4242, 1000+seq, []byte("again"))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			stop2()
			if mode == "shared-port" {
				if _, ok := b.route.Load().conn.(*muxConn); !ok {
					t.Fatalf("route through %T, not the shared port", b.route.Load().conn)
				}
			}
			_ = a.Close()
			_ = b.Close()
			rb.wait(t)
		})
	}
}

// The end of the session reaches a ReadRTP parked behind a push with the
// session's error; the push loop exits (goleak) and stop still returns.
func TestPushRTPEnd(t *testing.T) {
	for _, mode := range []string{"host", "shared-port"} {
		t.Run(mode, func(t *testing.T) {
			a, b := pushSetup(t, mode)
			var n atomic.Int32
			stop := b.PushRTP(func([]byte) { n.Add(1) })
			parked := parkedRead(b)
			for seq := uint16(1); n.Load() < 5; seq++ {
				if err := a.WriteRTP(rtpPacket(t, 1, seq, []byte("x"))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			_ = b.Close()
			select {
			case err := <-parked:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("parked ReadRTP: %v, want ErrClosed", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("parked ReadRTP not released by the end")
			}
			stop()
			// After the end: ReadRTP returns the end error, PushRTP is a
			// no-op whose stop returns.
			if _, err := b.ReadRTP(make([]byte, 1500)); !errors.Is(err, ErrClosed) {
				t.Fatalf("ReadRTP after the end: %v", err)
			}
			b.PushRTP(func([]byte) { t.Error("delivery after the end") })()
			_ = a.Close()
		})
	}
}

// A push started before the session connects delivers once it is.
func TestPushRTPBeforeConnected(t *testing.T) {
	a, b := newSession(t, Config{Outgoing: true, P2PAllowed: true}), newSession(t, Config{P2PAllowed: true})
	var n atomic.Int32
	stop := b.PushRTP(func([]byte) { n.Add(1) })
	defer stop()
	link(t, a, b)
	handshake(t, a, b)
	waitConnected(t, a, b)
	deadline := time.Now().Add(testTimeout)
	for seq := uint16(1); n.Load() < 10; seq++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets pushed", n.Load())
		}
		if err := a.WriteRTP(rtpPacket(t, 1, seq, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}
