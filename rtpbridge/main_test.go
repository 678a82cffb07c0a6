package rtpbridge

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chanEndpoint is an in-memory Endpoint: the test feeds what the bridge
// reads through rx and receives what it writes on tx.
type chanEndpoint struct {
	// reads gets, each time ReadRTP is entered, how many packets it
	// returned before (dropped when nobody listens).
	reads chan int
	n     int
	rx    chan []byte
	tx    chan []byte
	done  chan struct{}
	once  sync.Once
}

func newChanEndpoint() *chanEndpoint {
	return &chanEndpoint{reads: make(chan int, 1), rx: make(chan []byte, 1024), tx: make(chan []byte, 8192), done: make(chan struct{})}
}

func (e *chanEndpoint) ReadRTP(b []byte) (int, error) {
	select {
	case <-e.reads:
	default:
	}
	e.reads <- e.n
	select {
	case p := <-e.rx:
		e.n++
		return copy(b, p), nil
	case <-e.done:
		return 0, net.ErrClosed
	}
}

func (e *chanEndpoint) WriteRTP(b []byte) error {
	select {
	case e.tx <- append([]byte(nil), b...):
		return nil
	case <-e.done:
		return net.ErrClosed
	}
}

func (e *chanEndpoint) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

// waitReads waits until the bridge has read n packets and asks for more.
func (e *chanEndpoint) waitReads(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-e.reads:
			if got >= n {
				return
			}
		case <-deadline:
			t.Fatalf("the bridge did not read %d packets", n)
		}
	}
}

// recv waits for the next packet the bridge wrote, parsed.
func (e *chanEndpoint) recv(t testing.TB) (header, []byte) {
	t.Helper()
	select {
	case p := <-e.tx:
		var h header
		if err := parseRTP(p, &h); err != nil {
			t.Fatalf("bridge wrote bad rtp: %v", err)
		}
		return h, p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet from the bridge within 5 s")
	}
	panic("unreachable")
}

// pkt builds an RTP packet.
func pkt(pt PayloadType, seq uint16, ts uint32, ssrc SSRC, marker bool, payload []byte) []byte {
	b := make([]byte, rtpHeaderLen+len(payload))
	putHeader(b, marker, pt, seq, ts, ssrc, false)
	copy(b[rtpHeaderLen:], payload)
	return b
}

// pktExt builds an RTP packet with a one-byte-header extension block
// holding elems (id, value pairs).
func pktExt(pt PayloadType, seq uint16, ts uint32, ssrc SSRC, payload []byte, elems ...[]byte) []byte {
	var ext []byte
	for _, e := range elems {
		ext = append(ext, e[0]<<4|byte(len(e)-2))
		ext = append(ext, e[1:]...)
	}
	for len(ext)%4 != 0 {
		ext = append(ext, 0)
	}
	b := make([]byte, rtpHeaderLen+4, rtpHeaderLen+4+len(ext)+len(payload))
	putHeader(b, false, pt, seq, ts, ssrc, true)
	binary.BigEndian.PutUint16(b[12:], extProfileOneByte)
	binary.BigEndian.PutUint16(b[14:], uint16(len(ext)/4))
	b = append(b, ext...)
	return append(b, payload...)
}

// running starts a Bridge and returns a stop function that ends it and
// returns Run's error.
func running(t *testing.T, cfg Config) (*Bridge, func() error) {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-errc
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return b, stop
}
